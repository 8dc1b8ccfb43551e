"""What balances are worth in a display currency, from an operator-configured price source (``PRICE_SOURCE``).

Without a source nothing is valued: Numpay never guesses a price. A source that fails or omits a token hides
that token's value (the balance itself is always shown).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal

from django.utils.module_loading import import_string

from .app_settings import app_settings
from .selectors import Balance

logger = logging.getLogger(__name__)


def balance_values(balances: Iterable[Balance]) -> dict[str, str]:
    """``{symbol: "≈ 1,234.50 USD"}`` for each balance whose token the price source prices; ``{}`` without one.

    :param balances: chain balances (base units and decimals).
    """
    balances = list(balances)
    if not app_settings.PRICE_SOURCE or not balances:
        return {}
    currency = app_settings.DISPLAY_CURRENCY
    try:
        prices = import_string(app_settings.PRICE_SOURCE)([b.token for b in balances], currency)
    except Exception:  # a price source is outside code: any failure hides the values, never the page
        logger.exception("price source %s failed", app_settings.PRICE_SOURCE)
        return {}
    values = {}
    for balance in balances:
        price = prices.get(balance.token)
        if price is None:
            continue
        value = Decimal(balance.amount).scaleb(-balance.decimals) * Decimal(price)
        values[balance.token] = f"≈ {value:,.2f} {currency}"
    return values
