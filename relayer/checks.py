"""System checks of the relayer's settings (run by ``manage.py check`` and at server start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register  # noqa: A004

from .app_settings import app_settings


@register(Tags.security)
def fee_payer_configured(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The relayer has a fee payer (DESIGN.md "Fee sponsorship"): an error outside localnet."""
    from django.core.exceptions import ImproperlyConfigured

    from .signer import get_fee_payer

    try:
        get_fee_payer()
    except (ImproperlyConfigured, ImportError, OSError) as exc:
        level = Warning if settings.SOLANA_CLUSTER == "localnet" else Error
        return [level(f"The relayer has no fee payer: {exc}", id="relayer.W001" if level is Warning else "relayer.E001",
                      hint="Set RELAYER_FEE_PAYER_KEYPAIR(_PATH) or RELAYER_SIGNER_CLASS; "
                           "on localnet `manage.py localnet_bootstrap` creates one.")]
    return []


@register()
def sponsorship_limits_agree(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The per-transaction cap and the daily budget are positive and the cap fits in the budget (else no
    sponsored transaction could ever pass both)."""
    cap, budget = app_settings.MAX_LAMPORTS_PER_TX, app_settings.DAILY_BUDGET_LAMPORTS
    problems: list[CheckMessage] = []
    if cap <= 0 or budget <= 0:
        problems.append(Error("RELAYER_MAX_LAMPORTS_PER_TX and RELAYER_DAILY_BUDGET_LAMPORTS must be positive.",
                              id="relayer.E002"))
    elif cap > budget:
        problems.append(Warning(f"RELAYER_MAX_LAMPORTS_PER_TX ({cap}) is above RELAYER_DAILY_BUDGET_LAMPORTS ({budget}): "
                                "the budget, not the cap, bounds every user's first transaction.", id="relayer.W002"))
    if app_settings.ATA_RENT_LAMPORTS < 0:
        problems.append(Error("RELAYER_ATA_RENT_LAMPORTS cannot be negative (0 = ask the chain).", id="relayer.E003"))
    return problems
