"""Row locks of recovery. Every guardian or recovery write holds its owner's wallet row lock first (the lock
payments take too), then the rows it changes."""

from __future__ import annotations

from django.db.models import QuerySet

from wallets.lock_objects import wallet_qs_select_for_update

from .models import RecoveryRequest

__all__ = ["recovery_request_qs_due_for_update", "recovery_request_qs_select_for_update",
           "wallet_qs_select_for_update"]


def recovery_request_qs_select_for_update() -> QuerySet[RecoveryRequest]:
    """Requests locked ``FOR UPDATE`` (after their wallet's row)."""
    return RecoveryRequest.objects.select_for_update()


def recovery_request_qs_due_for_update() -> QuerySet[RecoveryRequest]:
    """Requests locked ``FOR UPDATE SKIP LOCKED``: two sweeps take disjoint sets, never the same request."""
    return RecoveryRequest.objects.select_for_update(skip_locked=True)
