"""Spending policies, the DB side: which rules apply, the wallet's usage (the reserve -> commit ledger),
and a user's own tighter limits. The decision itself is pure: :mod:`payments.policies`.

The ledger is the payments table (DESIGN.md invariant 1): a payment reserves its amount against the rolling
caps from the moment it is inserted (``created`` / ``awaiting_approval`` / ``approved`` / ``submitted``),
commits it when it is ``confirmed``, and releases it when it ends ``failed`` / ``expired`` / ``rejected``.
:func:`payment_policy_decision` reads that usage inside the payment-creating transaction, after the
sender's wallet row is locked, so concurrent payments of one wallet see each other's reservations.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from numpay.core import rowcache, sql
from numpay.core.errors import ApplicationError
from numpay.core.money import format_amount, parse_amount
from wallets.models import Token, Wallet

from . import policies
from .models import POLICIES_CACHE, Payment, SpendingPolicy

Scope = SpendingPolicy.Scope
#: Statuses whose amount counts against the rolling caps: reserved (open) or committed (confirmed).
COUNTED_STATUSES = (*Payment.OPEN_STATUSES, Payment.Status.CONFIRMED)
#: The limits a user may set on themselves (:func:`own_limits_set`).
OWN_FIELDS = ("per_transaction_cap", "daily_cap", "weekly_cap", "monthly_cap", "passkey_above",
              "max_payments_per_hour")


def _rules(policy: SpendingPolicy) -> policies.Rules:
    label = {Scope.DEFAULT: "default", Scope.GROUP: f"group {policy.group.name}" if policy.group_id else "group",
             Scope.USER: "user", Scope.OWN: "own limits"}[policy.scope]
    return policies.Rules(
        source=f"{label}: {policy.name}" if policy.scope != Scope.OWN else label,
        per_transaction_cap=policy.per_transaction_cap, daily_cap=policy.daily_cap, weekly_cap=policy.weekly_cap,
        monthly_cap=policy.monthly_cap, passkey_above=policy.passkey_above,
        two_passkeys_above=policy.two_passkeys_above, max_payments_per_hour=policy.max_payments_per_hour,
        allowlist=policy.allowlist())


def operator_policies(*, user: Any, token: Token) -> list[SpendingPolicy]:
    """The operator's active policies for ``user`` and ``token``: those of the most specific level that has
    any (the user's own assignment, else their groups', else the defaults)."""
    active = (SpendingPolicy.objects.filter(is_active=True).filter(Q(token=token) | Q(token__isnull=True))
              .select_related("group").order_by("pk"))
    levels = (active.filter(scope=Scope.USER, user=user),
              active.filter(scope=Scope.GROUP, group__in=user.groups.all()),
              active.filter(scope=Scope.DEFAULT))
    for level in levels:
        rows = list(level)
        if rows:
            return rows
    return []


def own_policy(*, user: Any, token: Token) -> SpendingPolicy | None:
    return SpendingPolicy.objects.filter(scope=Scope.OWN, user=user, token=token).first()


def rules_for(*, user: Any, token: Token) -> list[policies.Rules]:
    """Every rule that applies to ``user`` paying in ``token``: the operator's (the most specific level that
    has any, as :func:`operator_policies`), then the user's own (as :func:`own_policy`, when active).

    One query for all levels, and none while the answer is in the shared cache: every payment reads this, and
    any write to a policy, a group or a user's group membership forgets every cached answer at once in every
    process (:data:`POLICIES_CACHE`, :mod:`numpay.core.rowcache`; receivers in ``PaymentsConfig.ready``)."""
    return rowcache.cached(POLICIES_CACHE, f"{user.pk}:{token.pk}", lambda: _rules_for(user=user, token=token))


def _rules_for(*, user: Any, token: Token) -> list[policies.Rules]:
    token_match = Q(token=token) | Q(token__isnull=True)
    candidates = list(SpendingPolicy.objects.filter(
        (Q(is_active=True) & token_match & (Q(scope=Scope.USER, user=user)
                                            | Q(scope=Scope.GROUP, group__in=user.groups.all())
                                            | Q(scope=Scope.DEFAULT)))
        | Q(scope=Scope.OWN, user=user, token=token)).select_related("group").order_by("pk"))
    rows: list[SpendingPolicy] = []
    for scope in (Scope.USER, Scope.GROUP, Scope.DEFAULT):
        rows = [row for row in candidates if row.scope == scope]
        if rows:
            break
    own = min((row for row in candidates if row.scope == Scope.OWN), key=lambda row: row.name, default=None)
    if own is not None and own.is_active:
        rows.append(own)
    return [_rules(row) for row in rows]


def wallet_usage(*, wallet: Wallet, token: Token, now: datetime | None = None) -> policies.Usage:
    """The wallet's reserved + committed amounts per rolling window and its payments in the last hour.
    Read it under the wallet's row lock for an exact answer. Reclaims (money coming back) do not count."""
    now = now or timezone.now()
    hour_ago = now - timedelta(hours=1)
    oldest = min([hour_ago, *(now - timedelta(seconds=seconds) for _, seconds, _ in policies.WINDOWS)])
    # one statement for every window (the index on (wallet, created_at) bounds the rows read), hand-written:
    # every create runs it under the wallet lock (numpay.core.sql)
    params: list[Any] = [sql.moment(hour_ago)]
    for _, seconds, _ in policies.WINDOWS:
        params += [sql.value(Payment, "token", token.pk), *COUNTED_STATUSES, sql.moment(now - timedelta(seconds=seconds))]
    params += [sql.value(Payment, "wallet", wallet.pk), sql.moment(oldest)]
    row = sql.fetchone(_usage_sql(), params)
    spent = {name: int(row[1 + i] or 0) for i, (name, _, _) in enumerate(policies.WINDOWS)}
    return policies.Usage(spent=spent, payments_last_hour=int(row[0]))


@functools.cache
def _usage_sql() -> str:
    """Parameters: the hour's start; per window (token, *COUNTED_STATUSES, its start); wallet, oldest start."""
    created, amount = sql.column(Payment, "created_at"), sql.column(Payment, "amount")
    counted = (f"{sql.column(Payment, 'token')} = %s AND "
               f"{sql.column(Payment, 'status')} IN ({sql.placeholders(COUNTED_STATUSES)})")
    windows = ", ".join(f"SUM({amount}) FILTER (WHERE {counted} AND {created} > %s)" for _ in policies.WINDOWS)
    return (f"SELECT COUNT(*) FILTER (WHERE {created} > %s), {windows} FROM {sql.table(Payment)} "  # noqa: S608 - model names; values are parameters
            f"WHERE {sql.column(Payment, 'wallet')} = %s AND {sql.column(Payment, 'reclaim_of')} IS NULL "
            f"AND {created} > %s")


def payment_policy_decision(*, user: Any, wallet: Wallet, token: Token, amount: int,
                            recipient: str) -> policies.Decision:
    """Evaluate the policies for a payment; call it under ``wallet``'s row lock (payment creation) or
    without (the review step: a preview).

    :raises ApplicationError: ``limit_exceeded``, ``velocity_exceeded``, ``recipient_not_allowed`` (400),
        with ``rule`` / ``limit`` / ``used`` in ``extra``.
    """
    decision = policies.evaluate(rules=rules_for(user=user, token=token), amount=amount, recipient=recipient,
                                 usage=wallet_usage(wallet=wallet, token=token), symbol=token.symbol,
                                 decimals=token.decimals)
    if decision.refusal is not None:
        raise policies.refusal_error(decision)
    return decision


def effective_limits(*, user: Any, token: Token) -> dict[str, int | None]:
    """The tightest operator value of each own-settable limit for ``user`` and ``token`` (``None``: no limit)."""
    result: dict[str, int | None] = {}
    rows = operator_policies(user=user, token=token)
    for name in OWN_FIELDS:
        values = [getattr(row, name) for row in rows if getattr(row, name) is not None]
        result[name] = min(values) if values else None
    return result


def own_limits_set(*, user: Any, token: Token, limits: dict[str, int | None]) -> SpendingPolicy:
    """Set ``user``'s own limits for ``token`` (only the keys given; ``None`` = no own limit). Tighten only:
    a value above the operator's limit, or one that raises or removes an own limit already set, is refused.

    :raises ApplicationError: ``limit_not_tighter`` (400, ``extra.field`` = the limit).
    """
    unknown = set(limits) - set(OWN_FIELDS)
    if unknown:
        raise ValueError(f"not user-settable: {sorted(unknown)}")
    operator = effective_limits(user=user, token=token)
    with transaction.atomic():
        own = (SpendingPolicy.objects.select_for_update().filter(scope=Scope.OWN, user=user, token=token).first()
               or SpendingPolicy(scope=Scope.OWN, user=user, token=token, name=f"Own {token.symbol} limits"))
        for name, value in limits.items():
            if value is not None and value < 0:
                raise ApplicationError("limit_not_tighter", "A limit cannot be negative.", extra={"field": name})
            ceiling = operator[name]
            if value is not None and ceiling is not None and value > ceiling:
                raise ApplicationError("limit_not_tighter", "You can only lower your limits: this one is above the "
                                       "limit set for your account.", extra={"field": name})
            if not policies.tighter_than(current=getattr(own, name), proposed=value):
                raise ApplicationError("limit_not_tighter", "You can only lower your own limits, never raise or "
                                       "remove them.", extra={"field": name})
            setattr(own, name, value)
        own.save()
    return own


def limits_overview(*, user: Any, tokens: list[Token]) -> list[dict[str, Any]]:
    """For each token: the operator's tightest limits and the user's own, as decimal strings in token units
    (``max_payments_per_hour`` as a count; ``None`` = no limit) — the limits page and ``GET /api/v1/wallet/limits``."""
    rows = []
    for token in tokens:
        own = own_policy(user=user, token=token)
        operator = effective_limits(user=user, token=token)

        def show(name: str, value: int | None, token: Token = token) -> str | None:
            if value is None:
                return None
            return str(value) if name == "max_payments_per_hour" else format_amount(value, decimals=token.decimals)

        rows.append({"token": token.symbol,
                     "operator": {name: show(name, operator[name]) for name in OWN_FIELDS},
                     "own": {name: show(name, getattr(own, name) if own else None) for name in OWN_FIELDS}})
    return rows


def own_limits_parse(*, token: Token, values: dict[str, str | None]) -> dict[str, int | None]:
    """Parse user-entered own limits (decimal strings in token units; a count for ``max_payments_per_hour``;
    empty / ``None`` = no own limit) into base units.

    :raises ApplicationError: as :func:`numpay.core.money.parse_amount`, ``invalid_amount`` for a bad count.
    """
    parsed: dict[str, int | None] = {}
    for name in OWN_FIELDS:
        if name not in values:
            continue
        raw = (values[name] or "").strip()
        if not raw:
            parsed[name] = None
        elif name == "max_payments_per_hour":
            if not raw.isdigit() or int(raw) < 1 or int(raw) > 100_000:
                raise ApplicationError("invalid_amount", "Enter a whole number of payments.", extra={"field": name})
            parsed[name] = int(raw)
        else:
            try:
                parsed[name] = parse_amount(raw, decimals=token.decimals)
            except ApplicationError as exc:
                exc.extra["field"] = name
                raise
    return parsed
