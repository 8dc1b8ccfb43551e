"""System checks of the payments app (run by ``manage.py check --database default`` and by ``migrate``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DatabaseError

from numpay.core.money import format_amount


@register(Tags.database)
def default_policy_fits_the_on_chain_limits(app_configs: Any, databases: Sequence[str] | None = None,
                                            **kwargs: Any) -> list[CheckMessage]:
    """The default spending policies' per-transaction and daily caps are within the custody key's on-chain
    limits (``NUMPAY_WALLET_LIMITS``, written into every smart wallet's config): a policy allowing more than
    the chain would let the server approve payments the program then refuses on-chain (a failed payment
    instead of a clear refusal before signing). Reads the policies, so it runs only when a database is
    checked (``Tags.database``)."""
    if not databases:
        return []
    from wallets.app_settings import app_settings as wallets_settings
    from wallets.smart import limit_base_units

    from .models import SpendingPolicy

    problems: list[CheckMessage] = []
    limits = wallets_settings.WALLET_LIMITS
    try:
        policies = list(SpendingPolicy.objects.filter(scope=SpendingPolicy.Scope.DEFAULT, is_active=True,
                                                      token__isnull=False).select_related("token"))
    except DatabaseError:  # not migrated yet
        return []
    for policy in policies:
        token = policy.token
        if token.symbol.upper() not in limits:
            continue
        per_transaction, daily = (limit_base_units(cap, decimals=token.decimals)
                                  for cap in limits[token.symbol.upper()])
        for field, value, chain in (("per_transaction_cap", policy.per_transaction_cap, per_transaction),
                                    ("daily_cap", policy.daily_cap, daily)):
            if value is not None and value > chain:
                problems.append(Warning(
                    f"The default spending policy {policy.name!r} allows {format_amount(value, decimals=token.decimals)} "
                    f"{token.symbol} ({field}), above the on-chain limit of "
                    f"{format_amount(chain, decimals=token.decimals)} {token.symbol} (NUMPAY_WALLET_LIMITS): such "
                    "payments would fail on-chain instead of being refused first.",
                    obj=policy, id="payments.W001",
                    hint="Lower the policy's cap in the admin, or raise NUMPAY_WALLET_LIMITS for new wallets."))
    return problems
