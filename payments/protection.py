"""Protected mode (DESIGN.md "The smart wallet", "Modes"; issue 9 item 4): the spending policy written on-chain.

When a user registers a passkey, their smart wallet's config gets it as an owner, and the custody key
becomes a capped spender: the most it may move without a passkey is what the operator's policy allows
without one. :func:`protected_limits` (pure) turns the policy rules into the on-chain limits:

- the custody key: per transaction the "passkey above X" threshold (what needs no passkey), per rolling
  24 hours the policy's daily cap; each never above ``NUMPAY_WALLET_LIMITS`` (custodial mode's limits);
- the passkey: per transaction the "2 passkeys above Y" threshold (what one passkey may approve alone), per
  24 hours the daily cap (no cap where the policy sets none);
- the joint threshold: 2 when the policy has a "2 passkeys above" rule (two distinct owner passkeys
  approving one ``execute`` lift the limits), else 0.

A rule the program cannot express on-chain (7- and 30-day caps, velocity, allowlists) stays the server's:
the chain is the last line, not the only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import policies

#: The period of the on-chain rolling caps, seconds (the program keeps one period per limit).
DAY_SECONDS = 86_400
U64_MAX = 2**64 - 1


@dataclass(frozen=True)
class OnChainCaps:
    """One authority's on-chain caps for one mint, base units (``U64_MAX`` = no cap)."""

    per_transaction_cap: int
    period_cap: int
    period_seconds: int = DAY_SECONDS


@dataclass(frozen=True)
class ProtectedLimits:
    """What protected mode writes for one mint. :ivar joint_threshold: 0 or 2."""

    custody: OnChainCaps
    passkey: OnChainCaps
    joint_threshold: int


def _tightest(values: Sequence[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def protected_limits(*, rules: Sequence[policies.Rules], custodial: OnChainCaps | None) -> ProtectedLimits:
    """The on-chain limits of protected mode for one token (pure; see the module docstring).

    :param rules: every rule that applies to the user for the token (operator's and own:
        :func:`payments.policy_services.rules_for`); all must pass, so the tightest value of each wins.
    :param custodial: the custody key's limits in custodial mode (``NUMPAY_WALLET_LIMITS``), or ``None``
        when the token has none (the custody key may then send none of it, and still may not).
    """
    per_transaction = _tightest([rule.per_transaction_cap for rule in rules])
    daily = _tightest([rule.daily_cap for rule in rules])
    passkey_above = _tightest([rule.passkey_above for rule in rules])
    two_above = _tightest([rule.two_passkeys_above for rule in rules])
    if custodial is None:
        custody = OnChainCaps(0, 0)
    else:
        custody = OnChainCaps(
            per_transaction_cap=_tightest([custodial.per_transaction_cap, per_transaction, passkey_above]) or 0,
            period_cap=_tightest([custodial.period_cap, daily]) or 0, period_seconds=custodial.period_seconds)
    passkey = OnChainCaps(per_transaction_cap=_tightest([per_transaction, two_above, U64_MAX]) or 0,
                          period_cap=_tightest([daily, U64_MAX]) or 0)
    return ProtectedLimits(custody=custody, passkey=passkey, joint_threshold=2 if two_above is not None else 0)
