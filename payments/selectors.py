"""Reads for payments: what a user may see, one payment, a wallet's activity (payments and deposits)."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from numpay.core.errors import NotFoundError
from numpay.core.money import format_amount
from wallets.models import IncomingTransfer, Wallet

from .models import Payment


def payments_visible_to(*, user: object) -> QuerySet[Payment]:
    """Payments the user sent or received (by wallet), newest first. Anyone else's are invisible."""
    return (Payment.objects.filter(Q(sender=user) | Q(recipient_wallet__user=user))
            .select_related("token", "wallet", "recipient_wallet", "sender").order_by("-created_at"))


def payment_get_visible(*, user: object, payment_id: object) -> Payment:
    """One payment the user sent or received. :raises NotFoundError: ``payment_not_found`` (also for
    another user's payment and for malformed ids: no existence oracle)."""
    try:
        return payments_visible_to(user=user).get(pk=payment_id)
    except (Payment.DoesNotExist, ValueError, ValidationError) as exc:
        raise NotFoundError("payment_not_found", "No such payment.") from exc


@dataclass(frozen=True)
class ActivityItem:
    """One line of a wallet's activity: a payment sent or received, or a deposit from outside.

    :ivar amount: base units; :ivar direction: ``"sent" | "received"``.
    """

    kind: str
    direction: str
    token: str
    decimals: int
    amount: int
    counterparty: str
    status: str
    signature: str
    created_at: object
    payment_id: object = None

    @property
    def ui_amount(self) -> str:
        return format_amount(self.amount, decimals=self.decimals)


def wallet_activity(*, wallet: Wallet, limit: int = 20) -> list[ActivityItem]:
    """The newest ``limit`` payments (sent and received) and deposits of a wallet, newest first."""
    items: list[ActivityItem] = []
    for p in payments_visible_to(user=wallet.user)[:limit]:
        sent = p.wallet_id == wallet.pk
        items.append(ActivityItem(
            kind="payment", direction="sent" if sent else "received", token=p.token.symbol,
            decimals=p.token.decimals, amount=p.amount,
            counterparty=(p.recipient_input if sent else p.sender.email), status=p.status,
            signature=p.signature,
            created_at=p.created_at, payment_id=p.pk))
    for d in IncomingTransfer.objects.filter(wallet=wallet).select_related("token")[:limit]:
        items.append(ActivityItem(kind="deposit", direction="received", token=d.token.symbol, decimals=d.token.decimals,
                                  amount=d.amount, counterparty=d.from_address or "outside address",
                                  status="confirmed", signature=d.signature, created_at=d.created_at))
    items.sort(key=lambda item: item.created_at, reverse=True)
    return items[:limit]
