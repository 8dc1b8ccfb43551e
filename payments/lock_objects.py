"""Row-lock helpers (STYLE.md: locks through small named helpers).

Lock order: the sender's wallet (``wallets.lock_objects.wallet_qs_select_for_update``) before a payment,
then the relayer's sponsorship rows (``relayer.lock_objects``).
"""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Payment


def payment_qs_select_for_update() -> QuerySet[Payment]:
    """Payments locked ``FOR UPDATE`` (one writer decides a payment's next step)."""
    return Payment.objects.select_for_update(of=("self",))


def payment_qs_select_for_update_skip_locked() -> QuerySet[Payment]:
    """Payments locked ``FOR UPDATE SKIP LOCKED`` (sweeps: a row another worker holds is left to it)."""
    return Payment.objects.select_for_update(of=("self",), skip_locked=True)
