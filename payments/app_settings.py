"""Settings of the payments app, with their defaults (override in Django settings / the environment)."""

from __future__ import annotations

from django.conf import settings

from numpay.core.app_settings import setting


def approval_ttl_seconds() -> int:
    """Seconds a ``created`` / ``awaiting_approval`` payment may wait for its approval before the sweep
    expires it (``PAYMENTS_APPROVAL_TTL_SECONDS``, default 15 minutes)."""
    return int(getattr(settings, "PAYMENTS_APPROVAL_TTL_SECONDS", 900))


def submission_ttl_seconds() -> int:
    """Seconds after approval during which a payment that never landed gets new attempts; past it, the
    next provably expired attempt ends the payment ``expired`` (``PAYMENTS_SUBMISSION_TTL_SECONDS``,
    default 10 minutes)."""
    return int(getattr(settings, "PAYMENTS_SUBMISSION_TTL_SECONDS", 600))


def blockhash_reuse_seconds() -> float:
    """Seconds a process re-uses the blockhash it fetched last when it signs a payment at creation
    (``PAYMENTS_BLOCKHASH_REUSE_SECONDS``, default 1; 0 = fetch one per payment). A blockhash lives about
    150 blocks, so a payment signed with one a second old still has nearly all of its submission window."""
    return float(getattr(settings, "PAYMENTS_BLOCKHASH_REUSE_SECONDS", 1.0))


def explorer_transaction_url(signature: str) -> str:
    """The page of transaction ``signature`` in a block explorer, or ``""`` when none is configured.

    ``EXPLORER_TX_URL`` (Django setting, else the environment variable of that name) is a template with
    ``{signature}``, e.g. ``https://explorer.solana.com/tx/{signature}?cluster=devnet``; unset = no links
    (localnet has no public explorer).
    """
    template = setting("EXPLORER_TX_URL", "")
    if not template or not signature:
        return ""
    return template.replace("{signature}", signature)


def step_up_ttl_seconds(*, default: int) -> int:
    """Seconds a payment's passkey approval challenge stays usable (``PAYMENTS_STEP_UP_TTL_SECONDS``, else
    ``default``: the passkey ceremonies' challenge timeout)."""
    return int(getattr(settings, "PAYMENTS_STEP_UP_TTL_SECONDS", default))


def protect_on_passkey() -> bool:
    """Whether registering a passkey switches the user's smart wallet to protected mode
    (``PAYMENTS_PROTECT_ON_PASSKEY``, default on; DESIGN.md "Modes")."""
    return bool(setting("PAYMENTS_PROTECT_ON_PASSKEY", True, cast=bool))
