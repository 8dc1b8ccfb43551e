"""Availability arithmetic and the debit check (pure)."""

from __future__ import annotations

import pytest

from numpay.core.errors import ApplicationError
from payments.authorization import check_available, reserved_amount


class _Token:
    def __init__(self, *, is_native: bool, decimals: int, symbol: str) -> None:
        self.is_native, self.decimals, self.symbol = is_native, decimals, symbol


USDC = _Token(is_native=False, decimals=6, symbol="USDC")
SOL = _Token(is_native=True, decimals=9, symbol="SOL")


def test_unsigned_and_unsettled_open_payments_are_reserved_settled_ones_are_not() -> None:
    open_payments = [(5, ""), (7, "sig-landed"), (11, "sig-in-flight"), (13, "sig-failed")]
    assert reserved_amount(open_payments=open_payments, settled={"sig-landed", "sig-failed"}) == 5 + 11
    assert reserved_amount(open_payments=open_payments, settled=set()) == 36
    assert reserved_amount(open_payments=[], settled={"x"}) == 0


def test_a_debit_up_to_the_available_balance_passes() -> None:
    check_available(token=USDC, debit=100, available=100, rent_exempt_minimum=0)


def test_a_debit_above_the_available_balance_is_refused_with_what_can_be_sent() -> None:
    with pytest.raises(ApplicationError) as refused:
        check_available(token=USDC, debit=3_000_001, available=3_000_000, rent_exempt_minimum=0)
    assert refused.value.code == "insufficient_funds"
    assert refused.value.message == "You can send at most 3 USDC right now."
    assert refused.value.extra["available"] == "3000000"


def test_negative_availability_reads_as_zero() -> None:
    with pytest.raises(ApplicationError) as refused:
        check_available(token=USDC, debit=1, available=-5, rent_exempt_minimum=0)
    assert refused.value.extra["available"] == "0"


@pytest.mark.parametrize(("debit", "code"), [(1_000_000, None), (999_999, "would_leave_dust"),
                                             (100_001, "would_leave_dust"), (100_000, None), (1, None)])
def test_sol_may_not_leave_dust_below_the_rent_exempt_minimum(debit: int, code: str | None) -> None:
    available, minimum = 1_000_000, 900_000
    if code is None:
        check_available(token=SOL, debit=debit, available=available, rent_exempt_minimum=minimum)
    else:
        with pytest.raises(ApplicationError) as refused:
            check_available(token=SOL, debit=debit, available=available, rent_exempt_minimum=minimum)
        assert refused.value.code == code
