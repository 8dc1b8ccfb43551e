"""Spending policies: the pure decision (issue 9 item 2; DESIGN.md "Passkeys, policies, recovery, sessions").

An operator's policy (:class:`payments.models.SpendingPolicy`) and a user's own tighter limits become
:class:`Rules`; :func:`evaluate` checks one payment against every rule that applies (all must pass, so
a stricter rule always wins and a user's own limits can only tighten) and returns a :class:`Decision`:
each check's rule, limit, used and outcome, the refusal if any, and how many distinct passkey approvals
the payment needs. Everything here is pure (no DB, no clock): the usage it is given is read by
:mod:`payments.policy_services` under the wallet lock, from the reserve -> commit ledger (open payments
reserve, confirmed ones are committed, failed / expired / rejected ones release).

Amounts are integers in base units of the payment's token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from numpay.core.errors import ApplicationError
from numpay.core.money import format_amount

#: Rolling windows: ``(rule name, seconds, word for "today" in the refusal sentence)``.
WINDOWS: tuple[tuple[str, int, str], ...] = (
    ("daily_cap", 24 * 3600, "today"),
    ("weekly_cap", 7 * 24 * 3600, "this week"),
    ("monthly_cap", 30 * 24 * 3600, "this month"),
)

PASS, REFUSED, APPROVAL = "pass", "refused", "approval_required"


@dataclass(frozen=True)
class Rules:
    """One policy's rules for one token (``None`` = no such rule).

    :ivar source: who set them, for the decision record, e.g. ``"default: Standard"``, ``"own limits"``.
    :ivar allowlist: when not ``None``, the only recipients allowed (lower-cased emails / addresses as typed).
    """

    source: str
    per_transaction_cap: int | None = None
    daily_cap: int | None = None
    weekly_cap: int | None = None
    monthly_cap: int | None = None
    passkey_above: int | None = None
    two_passkeys_above: int | None = None
    max_payments_per_hour: int | None = None
    allowlist: frozenset[str] | None = None


@dataclass(frozen=True)
class Usage:
    """What the wallet already used, read under its lock.

    :ivar spent: per rolling-cap rule name (``daily_cap`` ...), base units reserved (open) plus committed
        (confirmed) by payments created inside the window.
    :ivar payments_last_hour: payments created in the last hour (any outcome).
    """

    spent: dict[str, int] = field(default_factory=dict)
    payments_last_hour: int = 0


@dataclass(frozen=True)
class Check:
    """One evaluated rule. ``limit`` / ``used`` in base units (a count for velocity, 0/1 for the allowlist)."""

    rule: str
    source: str
    limit: int
    used: int
    outcome: str
    message: str = ""

    def as_json(self) -> dict[str, object]:
        return {"rule": self.rule, "policy": self.source, "limit": str(self.limit), "used": str(self.used),
                "outcome": self.outcome}


@dataclass(frozen=True)
class Decision:
    """The result of :func:`evaluate`: every check in order, the first refusal, the approvals needed (0-2)."""

    checks: tuple[Check, ...]
    approvals_required: int
    refusal: Check | None

    @property
    def outcome(self) -> str:
        if self.refusal is not None:
            return REFUSED
        return APPROVAL if self.approvals_required else PASS

    def as_json(self) -> dict[str, object]:
        """What a payment stores (``Payment.policy_decision``) and the API / admin show."""
        return {"outcome": self.outcome, "approvals_required": self.approvals_required,
                "checks": [check.as_json() for check in self.checks]}


def evaluate(*, rules: list[Rules], amount: int, recipient: str, usage: Usage, symbol: str,
             decimals: int) -> Decision:
    """Check a payment of ``amount`` to ``recipient`` against every rule (pure).

    Order: the rules that depend only on the sender (per-transaction cap, rolling caps, velocity), then the
    recipient allowlist (matched against what the sender typed, so it says nothing about other people),
    then the approval thresholds. The first refused check ends the evaluation.

    :param amount: base units the recipient would receive (> 0).
    :param recipient: what the sender typed (an email or an address), compared case-insensitively.
    :param symbol: the token's symbol, :param decimals: its decimals (for the sentences).
    :returns: the :class:`Decision`; ``refusal`` set when a rule refuses.
    """
    checks: list[Check] = []

    def ui(value: int) -> str:
        return f"{format_amount(max(value, 0), decimals=decimals)} {symbol}"

    def done(check: Check) -> Decision:
        checks.append(check)
        return Decision(checks=tuple(checks), approvals_required=0, refusal=check)

    for r in rules:
        if r.per_transaction_cap is not None:
            ok = amount <= r.per_transaction_cap
            check = Check("per_transaction_cap", r.source, r.per_transaction_cap, amount, PASS if ok else REFUSED,
                          "" if ok else f"You can send at most {ui(r.per_transaction_cap)} in one payment.")
            if not ok:
                return done(check)
            checks.append(check)
    for name, _seconds, period in WINDOWS:
        for r in rules:
            cap = getattr(r, name)
            if cap is None:
                continue
            used = usage.spent.get(name, 0)
            ok = used + amount <= cap
            if ok:
                checks.append(Check(name, r.source, cap, used, PASS))
                continue
            left = cap - used
            message = (f"You can send {format_amount(left, decimals=decimals)} more {symbol} {period}." if left > 0
                       else f"You have reached your limit of {ui(cap)} {period}.")
            return done(Check(name, r.source, cap, used, REFUSED, message))
    for r in rules:
        if r.max_payments_per_hour is not None:
            ok = usage.payments_last_hour < r.max_payments_per_hour
            check = Check("max_payments_per_hour", r.source, r.max_payments_per_hour, usage.payments_last_hour,
                          PASS if ok else REFUSED,
                          "" if ok else f"You can make at most {r.max_payments_per_hour} payments an hour; "
                                        "try again later.")
            if not ok:
                return done(check)
            checks.append(check)
    key = recipient.strip().lower()
    for r in rules:
        if r.allowlist is not None:
            ok = key in r.allowlist
            check = Check("allowlist", r.source, len(r.allowlist), int(ok), PASS if ok else REFUSED,
                          "" if ok else "Your limits allow payments only to approved recipients, and this one "
                                        "is not on the list.")
            if not ok:
                return done(check)
            checks.append(check)
    approvals = 0
    for r in rules:
        for name, threshold, needed in (("passkey_above", r.passkey_above, 1),
                                        ("two_passkeys_above", r.two_passkeys_above, 2)):
            if threshold is None:
                continue
            above = amount > threshold
            checks.append(Check(name, r.source, threshold, amount, APPROVAL if above else PASS))
            if above:
                approvals = max(approvals, needed)
    return Decision(checks=tuple(checks), approvals_required=approvals, refusal=None)


def refusal_error(decision: Decision) -> ApplicationError:
    """The error for a refused decision: its registered code, the plain sentence, and ``rule`` / ``limit`` /
    ``used`` (base units, strings) in ``extra``.

    :raises ValueError: the decision has no refusal.
    """
    check = decision.refusal
    if check is None:
        raise ValueError("the decision refused nothing")
    extra = {"field": "to" if check.rule == "allowlist" else "amount", "rule": check.rule,
             "limit": str(check.limit), "used": str(check.used)}
    if check.rule == "allowlist":
        return ApplicationError("recipient_not_allowed", check.message, extra=extra)
    if check.rule == "max_payments_per_hour":
        return ApplicationError("velocity_exceeded", check.message, extra=extra)
    return ApplicationError("limit_exceeded", check.message, extra=extra)


def approval_reason(decision_json: dict[str, object] | None) -> str | None:
    """Why a payment with this stored decision waits for approval, or ``None`` (pure)."""
    if not decision_json:
        return None
    needed = int(decision_json.get("approvals_required") or 0)
    if needed <= 0:
        return None
    return f"policy: {needed} distinct passkey approval{'s' if needed > 1 else ''} required"


def tighter_than(*, current: int | None, proposed: int | None) -> bool:
    """Whether replacing an own limit ``current`` by ``proposed`` keeps it as tight or tighter (pure):
    ``None`` means no limit, so removing one or raising it loosens."""
    if current is None:
        return True
    return proposed is not None and proposed <= current
