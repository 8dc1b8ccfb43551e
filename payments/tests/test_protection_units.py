"""Protected mode's on-chain limits from the spending policy (pure)."""

from __future__ import annotations

from payments.policies import Rules
from payments.protection import U64_MAX, OnChainCaps, ProtectedLimits, protected_limits

USDC = 1_000_000
CUSTODIAL = OnChainCaps(per_transaction_cap=1000 * USDC, period_cap=5000 * USDC)


def test_passkey_above_x_caps_the_custody_key_and_two_passkeys_above_y_caps_one_passkey() -> None:
    rules = [Rules(source="default: Standard", passkey_above=10 * USDC, two_passkeys_above=100 * USDC,
                   daily_cap=500 * USDC)]
    assert protected_limits(rules=rules, custodial=CUSTODIAL) == ProtectedLimits(
        custody=OnChainCaps(10 * USDC, 500 * USDC), passkey=OnChainCaps(100 * USDC, 500 * USDC), joint_threshold=2)


def test_the_tightest_rule_wins_and_the_custody_key_never_gets_more_than_in_custodial_mode() -> None:
    rules = [Rules(source="default: Standard", passkey_above=2000 * USDC, daily_cap=9000 * USDC),
             Rules(source="own limits", per_transaction_cap=1500 * USDC)]
    assert protected_limits(rules=rules, custodial=CUSTODIAL) == ProtectedLimits(
        custody=OnChainCaps(1000 * USDC, 5000 * USDC), passkey=OnChainCaps(1500 * USDC, 9000 * USDC),
        joint_threshold=0)


def test_no_rules_leave_the_passkey_uncapped_and_a_token_without_custodial_limits_closed() -> None:
    assert protected_limits(rules=[], custodial=CUSTODIAL) == ProtectedLimits(
        custody=CUSTODIAL, passkey=OnChainCaps(U64_MAX, U64_MAX), joint_threshold=0)
    assert protected_limits(rules=[Rules(source="x", passkey_above=0)], custodial=None).custody == OnChainCaps(0, 0)
    # "a passkey above 0": every payment needs the passkey, the custody key may send nothing alone
    assert protected_limits(rules=[Rules(source="x", passkey_above=0)], custodial=CUSTODIAL).custody == \
        OnChainCaps(0, 5000 * USDC)
