from __future__ import annotations

import pytest

from numpay.core.errors import ApplicationError
from numpay.core.money import format_amount, parse_amount


@pytest.mark.parametrize(("text", "decimals", "expected"), [
    ("1", 9, 1_000_000_000), ("0.000000001", 9, 1), ("12.5", 6, 12_500_000), ("12.500000", 6, 12_500_000),
    (" 3 ", 6, 3_000_000), ("18446744073.709551615", 9, 2**64 - 1),
])
def test_parse_amount_gives_base_units(text: str, decimals: int, expected: int) -> None:
    assert parse_amount(text, decimals=decimals) == expected


@pytest.mark.parametrize(("text", "decimals", "code"), [
    ("0", 6, "amount_not_positive"), ("0.0000000", 6, "amount_not_positive"), ("-1", 6, "amount_not_positive"),
    ("1.0000001", 6, "too_many_decimals"), ("abc", 6, "invalid_amount"), ("", 6, "invalid_amount"),
    ("1e3", 6, "invalid_amount"), ("1,000", 6, "invalid_amount"), ("1.2.3", 6, "invalid_amount"), (".", 6, "invalid_amount"),
    ("NaN", 6, "invalid_amount"), ("18446744073.709551616", 9, "amount_too_large"),
])
def test_parse_amount_refuses_with_specific_code(text: str, decimals: int, code: str) -> None:
    with pytest.raises(ApplicationError) as excinfo:
        parse_amount(text, decimals=decimals)
    assert excinfo.value.code == code


@pytest.mark.parametrize(("amount", "decimals", "expected"), [
    (1_500_000, 6, "1.5"), (0, 6, "0"), (1, 9, "0.000000001"), (100_000_000, 6, "100"), (-2_500_000, 6, "-2.5"),
])
def test_format_amount(amount: int, decimals: int, expected: str) -> None:
    assert format_amount(amount, decimals=decimals) == expected
