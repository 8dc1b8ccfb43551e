"""Settings of wallets: the balance cache and the localnet faucet.

Each is a Django setting or, when absent there, the environment variable of the same name.
Checked by :mod:`wallets.checks`.
"""

from __future__ import annotations

from numpay.core.app_settings import setting


class WalletsSettings:
    """Typed, live view of the wallets settings."""

    @property
    def BALANCE_CACHE_SECONDS(self) -> int:  # noqa: N802
        """How long a chain balance is cached (``SOLANA_BALANCE_CACHE_SECONDS``, default 2; 0 = off).
        Confirmations invalidate it in every process (the cache is cross-process)."""
        return setting("SOLANA_BALANCE_CACHE_SECONDS", 2, cast=int)

    @property
    def FAUCET_KEYPAIR_PATH(self) -> str:  # noqa: N802
        """The dev faucet's mint-authority keypair file (localnet only; solana-keygen JSON)."""
        from django.conf import settings

        return setting("FAUCET_KEYPAIR_PATH", str(settings.VAR_DIR / "faucet-keypair.json"))

    @property
    def FAUCET_MAX_TOKENS(self) -> int:  # noqa: N802
        """Whole tokens the faucet gives per request (1,000 USDC or SOL)."""
        return setting("FAUCET_MAX_TOKENS", 1000, cast=int)

    @property
    def FAUCET_RATE(self) -> str:  # noqa: N802
        """Faucet requests per user, page and API together (DRF rate syntax, e.g. ``30/min``)."""
        return setting("API_THROTTLE_FAUCET", "30/min")

    @property
    def PRICE_SOURCE(self) -> str:  # noqa: N802
        """Dotted path of a callable ``(symbols: list[str], currency: str) -> {symbol: Decimal}`` giving the price
        of one whole token in ``DISPLAY_CURRENCY`` (``PRICE_SOURCE``); unset = no values are shown, never a guess."""
        return setting("PRICE_SOURCE", "")

    @property
    def DISPLAY_CURRENCY(self) -> str:  # noqa: N802
        """The currency balances are valued in when a price source is set (``DISPLAY_CURRENCY``, default USD)."""
        return setting("DISPLAY_CURRENCY", "USD")


app_settings = WalletsSettings()
