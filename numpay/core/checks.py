"""System checks for settings that must agree (run by ``manage.py check`` and at server start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register  # noqa: A004


@register(Tags.security, deploy=False)
def custody_and_relayer_configured(app_configs: Any, **kwargs: Any) -> list[Error | Warning]:
    """The KEK provider loads and the relayer has a fee payer (DESIGN.md "Key custody", "Fee sponsorship")."""
    from django.core.exceptions import ImproperlyConfigured

    from relayer.signer import get_fee_payer
    from wallets.custody import CustodyError, get_kek_provider

    problems: list[Error | Warning] = []
    try:
        get_kek_provider()
    except (CustodyError, ImportError) as exc:
        problems.append(Error(f"Key custody is misconfigured: {exc}", id="numpay.E001",
                              hint="Set NUMPAY_KEKS='id:base64(32 bytes)' and NUMPAY_KEK_CURRENT_ID=id."))
    try:
        get_fee_payer()
    except (ImproperlyConfigured, ImportError) as exc:
        level = Warning if settings.SOLANA_CLUSTER == "localnet" else Error
        problems.append(level(f"The relayer has no fee payer: {exc}", id="numpay.W002" if level is Warning
                              else "numpay.E002", hint="Set RELAYER_FEE_PAYER_KEYPAIR(_PATH) or RELAYER_SIGNER_CLASS; "
                              "on localnet `manage.py localnet_bootstrap` creates one."))
    return problems
