"""Row-lock helpers (STYLE.md: locks through small named helpers).

Lock order: the sender's wallet (``wallets.lock_objects.wallet_qs_select_for_update``) before a payment,
then the relayer's sponsorship rows (``relayer.lock_objects``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from numpay.core.sql import CompiledSelect

from .models import Payment


def payment_qs_select_for_update() -> QuerySet[Payment]:
    """Payments locked ``FOR UPDATE`` (one writer decides a payment's next step)."""
    return Payment.objects.select_for_update(of=("self",))


def payment_qs_select_for_update_skip_locked() -> QuerySet[Payment]:
    """Payments locked ``FOR UPDATE SKIP LOCKED`` (sweeps: a row another worker holds is left to it)."""
    return Payment.objects.select_for_update(of=("self",), skip_locked=True)


_PAYMENT_FOR_STEP = CompiledSelect(
    lambda pk: payment_qs_select_for_update().select_related("token", "wallet", "sender", "recipient_wallet")
    .filter(pk=pk)[:1],
    params=[(Payment, "id")])


def payment_lock_for_step(pk: Any) -> Payment | None:
    """The payment ``pk`` locked ``FOR UPDATE`` (as :func:`payment_qs_select_for_update`) with its token, wallet,
    sender and recipient wallet, or ``None``; the outbox's send and check run this once per payment, so its SQL
    is compiled once (:class:`numpay.core.sql.CompiledSelect`). Raises ``TransactionManagementError`` outside a
    transaction."""
    return _PAYMENT_FOR_STEP.first(pk)
