"""Amounts: integers in base units everywhere; Decimal only here, at the edges (parsing, display).

Rules follow the SPL Token UI-amount convention: ``ui_amount = amount / 10**decimals``
(https://spl.solana.com/token), SOL has 9 decimals (1 SOL = 1_000_000_000 lamports).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import ApplicationError

MAX_U64 = 2**64 - 1


def parse_amount(text: str, *, decimals: int) -> int:
    """Parse a user-entered decimal string into base units.

    :param text: e.g. ``"12.5"``; no exponent, no sign, no thousands separators.
    :param decimals: the mint's decimals (9 for SOL, 6 for USDC).
    :returns: base units (lamports or token base units), an ``int`` > 0.
    :raises ApplicationError: ``invalid_amount`` (not a plain decimal number), ``amount_not_positive``
        (zero or negative), ``too_many_decimals`` (more fractional digits than the mint has),
        ``amount_too_large`` (above u64).
    """
    raw = (text or "").strip()
    if raw.startswith("-"):
        raise ApplicationError("amount_not_positive", "The amount must be greater than zero.", extra={"field": "amount"})
    if not raw or any(ch not in "0123456789." for ch in raw) or raw.count(".") > 1 or raw == ".":
        raise ApplicationError("invalid_amount", "Enter the amount as a number, like 12.50.", extra={"field": "amount"})
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - guarded by the character check above
        raise ApplicationError("invalid_amount", "Enter the amount as a number, like 12.50.") from exc
    fraction = raw.split(".", 1)[1] if "." in raw else ""
    if len(fraction.rstrip("0")) > decimals:
        raise ApplicationError(
            "too_many_decimals",
            f"This token has {decimals} decimal places; the amount has more.",
            extra={"field": "amount", "decimals": decimals},
        )
    base_units = int(value.scaleb(decimals))
    if base_units <= 0:
        raise ApplicationError("amount_not_positive", "The amount must be greater than zero.", extra={"field": "amount"})
    if base_units > MAX_U64:
        raise ApplicationError("amount_too_large", "The amount is too large.", extra={"field": "amount"})
    return base_units


def format_amount(base_units: int, *, decimals: int) -> str:
    """Render base units as a plain decimal string without trailing zeros (``1500000, 6 -> "1.5"``).

    :param base_units: an integer amount (may be negative for display of debits).
    :param decimals: the mint's decimals.
    """
    value = Decimal(int(base_units)).scaleb(-decimals)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def format_money(base_units: int, *, decimals: int, min_decimals: int = 2) -> str:
    """Render base units as money for people: thousands separators, at least ``min_decimals`` fractional
    digits, and every further digit the amount has up to the token's ``decimals`` (nothing is rounded away:
    ``1234500000, 6 -> "1,234.50"``, ``5000, 9 -> "0.000005"``, ``0, 6 -> "0.00"``).

    :param base_units: an integer amount (negative renders with a leading ``-``).
    :param decimals: the mint's decimals.
    :param min_decimals: fractional digits always shown (capped at ``decimals``).
    """
    plain = format_amount(abs(int(base_units)), decimals=decimals)
    whole, _, fraction = plain.partition(".")
    fraction = fraction.ljust(min(min_decimals, decimals), "0")
    text = f"{int(whole):,}" + (f".{fraction}" if fraction else "")
    return f"-{text}" if int(base_units) < 0 else text
