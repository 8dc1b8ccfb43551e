"""Settings of wallets: the smart wallet program and its limits, the balance cache, the localnet faucet.

Each is a Django setting or, when absent there, the environment variable of the same name.
Checked by :mod:`wallets.checks`.
"""

from __future__ import annotations

from numpay.core.app_settings import setting

#: The Numpay wallet program's id on localnet: a public address with no key behind it (localnet loads
#: ``programs/wallet/numpay_wallet.so`` there at genesis, so nobody needs to deploy it).
LOCALNET_WALLET_PROGRAM_ID = "65HjAWvqW18Anzr1wbo5ztEZVGZkkiRjx1h6HevXfF8W"
#: The committed program, loaded at genesis by localnet (``make run``, the test fixtures).
WALLET_PROGRAM_SO = "programs/wallet/numpay_wallet.so"


def parse_wallet_limits(text: str) -> dict[str, tuple[str, str]]:
    """``"USDC=1000/5000,SOL=10/50"`` -> ``{"USDC": ("1000", "5000"), "SOL": ("10", "50")}`` (whole-token
    decimal strings: per transaction / per day).

    :raises ValueError: an item is not ``SYMBOL=PER_TRANSACTION/DAILY``.
    """
    limits: dict[str, tuple[str, str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        symbol, _, caps = item.partition("=")
        per_transaction, _, daily = caps.partition("/")
        if not symbol.strip() or not per_transaction.strip() or not daily.strip():
            raise ValueError(f"{item!r} is not SYMBOL=PER_TRANSACTION/DAILY")
        limits[symbol.strip().upper()] = (per_transaction.strip(), daily.strip())
    return limits


class WalletsSettings:
    """Typed, live view of the wallets settings."""

    @property
    def WALLET_PROGRAM_ID(self) -> str:  # noqa: N802
        """The Numpay wallet program's address on this cluster (``NUMPAY_WALLET_PROGRAM_ID``; default: the
        localnet id, :data:`LOCALNET_WALLET_PROGRAM_ID`). On devnet/mainnet: the id ``solana program
        deploy`` printed (README, "A real Solana cluster")."""
        return setting("NUMPAY_WALLET_PROGRAM_ID", LOCALNET_WALLET_PROGRAM_ID)

    @property
    def WALLET_LIMITS(self) -> dict[str, tuple[str, str]]:  # noqa: N802
        """The on-chain limits of the custody key of every new smart wallet (``NUMPAY_WALLET_LIMITS``,
        default ``USDC=1000/5000,SOL=10/50``): per token symbol, whole tokens per transaction / per day
        (a rolling period of 86,400 s). Written in the wallet's config when it is created; a token
        without a limit cannot be sent (the program denies by default)."""
        return parse_wallet_limits(setting("NUMPAY_WALLET_LIMITS", "USDC=1000/5000,SOL=10/50"))

    @property
    def UNCLAIMED_RECLAIM_DAYS(self) -> int:  # noqa: N802
        """Days after which the sender may take back a payment to an email nobody has claimed
        (``NUMPAY_UNCLAIMED_RECLAIM_DAYS``, default 30)."""
        return setting("NUMPAY_UNCLAIMED_RECLAIM_DAYS", 30, cast=int)

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
