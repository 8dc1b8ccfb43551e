"""Secure Payment Confirmation (W3C SPC) for the passkey step-up (issue 9 item 7): what the browser's own payment
sheet shows and the passkey signs (``clientDataJSON.type`` ``payment.get``), checked by
:func:`accounts.passkeys.verify_payment_assertion` against the same values."""

from __future__ import annotations

from typing import Any

from .models import Payment

#: Tokens the browser may show as an amount in Secure Payment Confirmation, with the ISO 4217 code it shows
#: (the Payment Request API takes only 3-letter currency codes; USDC is redeemable 1:1 for US dollars).
SPC_CURRENCIES = {"USDC": "USD"}
#: The instrument's icon in the browser's payment sheet (a static file of this site).
SPC_ICON = "icons/icon-192.png"


def secure_payment_details(payment: Payment) -> dict[str, Any] | None:
    """What the browser's Secure Payment Confirmation sheet shows and signs for ``payment`` (deterministic, so
    :func:`payments.approvals.approval_submit` checks the assertion's ``clientDataJSON.payment`` against the same values), or
    ``None`` when its token has no ISO 4217 equivalent (the plain WebAuthn prompt is used).

    :returns: ``{"payeeName", "payeeOrigin": None, "total": {"currency", "value"}, "instrument":
        {"displayName"}}``; ``value`` is what leaves the wallet (amount + network fee) in token units. No
        ``payeeOrigin``: the payee is a person, not a site (SPC also requires https for it).
    """
    from numpay.core.money import format_amount

    currency = SPC_CURRENCIES.get(payment.token.symbol)
    if currency is None:
        return None
    value = format_amount(payment.amount + payment.network_fee, decimals=payment.token.decimals)
    return {"payeeName": f"{payment.recipient_input[:60]} ({payment.token.symbol})", "payeeOrigin": None,
            "total": {"currency": currency, "value": value},
            "instrument": {"displayName": f"Numpay wallet, {value} {payment.token.symbol}"}}
