"""Settings of the relayer (fee payer and sponsorship rules; DESIGN.md "Fee sponsorship").

Each is a Django setting or, when absent there, the environment variable of the same name.
Checked by :mod:`relayer.checks`.
"""

from __future__ import annotations

from numpay.core.app_settings import setting


class RelayerSettings:
    """Typed, live view of the ``RELAYER_*`` settings."""

    @property
    def FEE_PAYER_KEYPAIR(self) -> str:  # noqa: N802
        """The fee payer keypair inline: a JSON array of 64 bytes (solana-keygen format). Wins over the path."""
        return setting("RELAYER_FEE_PAYER_KEYPAIR", "")

    @property
    def FEE_PAYER_KEYPAIR_PATH(self) -> str:  # noqa: N802
        """Path of the fee payer's solana-keygen JSON file (default ``var/relayer-fee-payer.json``)."""
        from django.conf import settings

        return setting("RELAYER_FEE_PAYER_KEYPAIR_PATH", str(settings.VAR_DIR / "relayer-fee-payer.json"))

    @property
    def SIGNER_CLASS(self) -> str:  # noqa: N802
        """Dotted path of a zero-argument ``relayer.signer.FeePayerSigner`` class (KMS/Vault); wins over keys."""
        return setting("RELAYER_SIGNER_CLASS", "")

    @property
    def MAX_LAMPORTS_PER_TX(self) -> int:  # noqa: N802
        """Most lamports the fee payer may lose in one transaction (fees + sponsored rent)."""
        return setting("RELAYER_MAX_LAMPORTS_PER_TX", 3_000_000, cast=int)

    @property
    def DAILY_BUDGET_LAMPORTS(self) -> int:  # noqa: N802
        """Sponsorship (fees + rent) per user per UTC day, in lamports."""
        return setting("RELAYER_DAILY_BUDGET_LAMPORTS", 100_000_000, cast=int)

    @property
    def SPONSOR_ATA_RENT(self) -> bool:  # noqa: N802
        """Whether the fee payer may fund the rent of new associated token accounts."""
        return setting("RELAYER_SPONSOR_ATA_RENT", True, cast=bool)

    @property
    def SPONSOR_WALLET_CONFIG_RENT(self) -> bool:  # noqa: N802
        """Whether the fee payer funds the rent of a smart wallet's config account (about 0.0167 SOL, once
        per wallet, with its first payment; allowed on top of ``RELAYER_MAX_LAMPORTS_PER_TX`` and counted
        in the daily budget). ``RELAYER_SPONSOR_WALLET_CONFIG_RENT``, default on."""
        return setting("RELAYER_SPONSOR_WALLET_CONFIG_RENT", True, cast=bool)

    @property
    def FEE_PAYER_ALERT_LAMPORTS(self) -> int:  # noqa: N802
        """Below this fee payer balance (lamports) the balance watch logs an error."""
        return setting("RELAYER_FEE_PAYER_ALERT_LAMPORTS", 1_000_000_000, cast=int)

    @property
    def ATA_RENT_LAMPORTS(self) -> int:  # noqa: N802
        """ATA rent priced into the cap/budget: 0 = ask the chain once per process; > 0 pins it."""
        return setting("RELAYER_ATA_RENT_LAMPORTS", 0, cast=int)


app_settings = RelayerSettings()
