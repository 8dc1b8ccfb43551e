"""Celery tasks of payments (thin: take ids, call a service). Sending and confirming are the relayer's
outbox tasks (``relayer.tasks.outbox_*``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="payments.tasks.payment_expire_sweep", time_limit=60, soft_time_limit=50, acks_late=False)
def payment_expire_sweep() -> int:
    """Beat job: expire payments abandoned before approval and release their reservations.

    :returns: how many payments were expired.
    """
    from .services import payments_expire_due

    return payments_expire_due()
