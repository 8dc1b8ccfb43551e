"""The pure spending-policy decision (payments.policies): every rule, its sentence, and properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from payments.policies import (
    APPROVAL,
    PASS,
    REFUSED,
    Rules,
    Usage,
    approval_reason,
    evaluate,
    refusal_error,
    tighter_than,
)

USDC = 1_000_000


def _eval(rules: list[Rules], amount: int, *, spent: dict[str, int] | None = None, last_hour: int = 0,
          to: str = "bob@example.com"):  # noqa: ANN202
    return evaluate(rules=rules, amount=amount, recipient=to, usage=Usage(spent=spent or {}, payments_last_hour=last_hour),
                    symbol="USDC", decimals=6)


def test_no_rules_allow_without_approval() -> None:
    decision = _eval([], 5 * USDC)
    assert decision.outcome == PASS
    assert decision.as_json() == {"outcome": "pass", "approvals_required": 0, "checks": []}


def test_daily_cap_refusal_says_how_much_is_left() -> None:
    decision = _eval([Rules("default: Standard", daily_cap=100 * USDC)], 50 * USDC, spent={"daily_cap": 60 * USDC})
    assert decision.outcome == REFUSED
    error = refusal_error(decision)
    assert error.code == "limit_exceeded"
    assert error.message == "You can send 40 more USDC today."
    assert error.extra == {"field": "amount", "rule": "daily_cap", "limit": "100000000", "used": "60000000"}


def test_daily_cap_exactly_reached_passes_and_records_the_check() -> None:
    decision = _eval([Rules("default: Standard", daily_cap=100 * USDC)], 40 * USDC, spent={"daily_cap": 60 * USDC})
    assert decision.as_json() == {"outcome": "pass", "approvals_required": 0, "checks": [
        {"rule": "daily_cap", "policy": "default: Standard", "limit": "100000000", "used": "60000000",
         "outcome": "pass"}]}


def test_cap_fully_used_says_the_limit() -> None:
    decision = _eval([Rules("x", weekly_cap=100 * USDC)], 1, spent={"weekly_cap": 100 * USDC})
    assert refusal_error(decision).message == "You have reached your limit of 100 USDC this week."


def test_per_transaction_cap() -> None:
    decision = _eval([Rules("x", per_transaction_cap=25 * USDC)], 25 * USDC + 1)
    assert refusal_error(decision).message == "You can send at most 25 USDC in one payment."
    assert decision.refusal.rule == "per_transaction_cap"


def test_monthly_cap_counts_what_is_used() -> None:
    decision = _eval([Rules("x", monthly_cap=10 * USDC)], 2 * USDC, spent={"monthly_cap": 9 * USDC})
    assert refusal_error(decision).message == "You can send 1 more USDC this month."


def test_velocity() -> None:
    decision = _eval([Rules("x", max_payments_per_hour=3)], 1, last_hour=3)
    error = refusal_error(decision)
    assert (error.code, error.message) == ("velocity_exceeded",
                                           "You can make at most 3 payments an hour; try again later.")
    assert _eval([Rules("x", max_payments_per_hour=3)], 1, last_hour=2).outcome == PASS


def test_allowlist_matches_what_was_typed_case_insensitively() -> None:
    rules = [Rules("x", allowlist=frozenset({"bob@example.com"}))]
    assert _eval(rules, 1, to=" Bob@Example.com ").outcome == PASS
    decision = _eval(rules, 1, to="carol@example.com")
    assert refusal_error(decision).code == "recipient_not_allowed"
    assert refusal_error(decision).extra["field"] == "to"


def test_sender_rules_refuse_before_the_allowlist_looks_at_the_recipient() -> None:
    rules = [Rules("x", daily_cap=1 * USDC, allowlist=frozenset({"bob@example.com"}))]
    assert _eval(rules, 2 * USDC, to="carol@example.com").refusal.rule == "daily_cap"


def test_passkey_thresholds_record_approvals_required() -> None:
    rules = [Rules("default: Standard", passkey_above=10 * USDC, two_passkeys_above=100 * USDC)]
    assert _eval(rules, 10 * USDC).approvals_required == 0
    one = _eval(rules, 20 * USDC)
    assert (one.outcome, one.approvals_required) == (APPROVAL, 1)
    assert approval_reason(one.as_json()) == "policy: 1 distinct passkey approval required"
    two = _eval(rules, 101 * USDC)
    assert two.approvals_required == 2
    assert approval_reason(two.as_json()) == "policy: 2 distinct passkey approvals required"
    assert approval_reason(_eval(rules, 1).as_json()) is None
    assert approval_reason(None) is None


def test_the_strictest_of_several_rules_wins() -> None:
    rules = [Rules("default: Standard", daily_cap=100 * USDC), Rules("own limits", daily_cap=10 * USDC)]
    decision = _eval(rules, 11 * USDC)
    assert decision.refusal.source == "own limits"
    assert decision.refusal.limit == 10 * USDC


def test_tighter_than() -> None:
    assert tighter_than(current=None, proposed=None)
    assert tighter_than(current=None, proposed=5)
    assert tighter_than(current=5, proposed=5)
    assert tighter_than(current=5, proposed=4)
    assert not tighter_than(current=5, proposed=6)
    assert not tighter_than(current=5, proposed=None)


@settings(deadline=None)  # the machine is shared: no per-example time limit
@given(cap=st.integers(0, 10**12), used=st.integers(0, 10**12), amount=st.integers(1, 10**12))
def test_a_rolling_cap_passes_exactly_when_it_is_not_overshot(cap: int, used: int, amount: int) -> None:
    decision = _eval([Rules("x", daily_cap=cap)], amount, spent={"daily_cap": used})
    assert (decision.refusal is None) == (used + amount <= cap)


@settings(deadline=None)  # the machine is shared: no per-example time limit
@given(amounts=st.lists(st.integers(1, 50 * USDC), max_size=60), cap=st.integers(0, 500 * USDC))
def test_accepting_payments_one_by_one_never_overshoots_the_cap(amounts: list[int], cap: int) -> None:
    used = 0
    for amount in amounts:
        if _eval([Rules("x", daily_cap=cap)], amount, spent={"daily_cap": used}).refusal is None:
            used += amount
    assert used <= cap


@settings(deadline=None)  # the machine is shared: no per-example time limit
@given(cap=st.integers(0, 10**9), own=st.integers(0, 10**9), amount=st.integers(1, 10**9))
def test_own_limits_never_loosen(cap: int, own: int, amount: int) -> None:
    operator = _eval([Rules("default", per_transaction_cap=cap)], amount)
    both = _eval([Rules("default", per_transaction_cap=cap), Rules("own limits", per_transaction_cap=own)], amount)
    assert operator.refusal is None or both.refusal is not None


def test_send_review_include_tells_how_many_passkeys_must_approve() -> None:
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    rules = [Rules("default: Standard", passkey_above=10 * USDC, two_passkeys_above=100 * USDC)]

    def render(amount: int) -> str:
        return render_to_string("payments/_send_policy.html", {"plan": SimpleNamespace(policy=_eval(rules, amount))})

    assert "Your passkey must approve this payment" in render(20 * USDC)
    assert "Two of your passkeys must approve this payment" in render(200 * USDC)
    assert "approve" not in render(5 * USDC)
