"""Celery tasks for payments and deposits (queue ``chain``). Thin: take ids, call a service.

Retries only for :class:`~numpay.core.errors.ChainUnavailableError` (network, 429, 5xx, timeouts),
bounded, with backoff; every RPC call has a timeout in the chain client.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from numpay.core.errors import ChainUnavailableError

from . import deposits, payments
from .models import Payment

logger = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 0.2
POLLER_SCHEDULED_KEY = "payment-poller-scheduled"
POLLER_LOCK_KEY = "payment-poller-lock"
POLL_BATCH = 256
CHECK_QUEUED_KEY = "payment-check-queued:{}"


def schedule_poller(countdown: float = POLL_INTERVAL_SECONDS) -> None:
    """Make sure one :func:`payment_poll` run is queued (at most one scheduled at a time)."""
    if cache.add(POLLER_SCHEDULED_KEY, 1, timeout=5):
        payment_poll.apply_async(countdown=countdown)


@shared_task(autoretry_for=(ChainUnavailableError,), retry_backoff=1, retry_backoff_max=10, max_retries=12,
             time_limit=60, soft_time_limit=45, acks_late=True)
def payment_submit(payment_id: str) -> str | None:
    """Send the payment's stored signed transaction, then make sure the status poller runs."""
    payment = payments.payment_submit(payment_id=payment_id)
    if payment is None:
        return None
    if not payment.is_terminal:
        schedule_poller()
    return payment.status


@shared_task(time_limit=60, soft_time_limit=45, acks_late=False)
def payment_poll() -> int:
    """Look at every open payment in batches (one ``getSignatureStatuses`` per 256) every 0.2 s while any
    is open, and hand those with a step to take (confirm, fail, re-send, new attempt) to
    :func:`payment_check`. Single-flight: one poller at a time; the beat sweep restarts it if it stops.

    :returns: how many payments were still open.
    """
    cache.delete(POLLER_SCHEDULED_KEY)
    if not cache.add(POLLER_LOCK_KEY, 1, timeout=55):
        return -1
    still_open = 0
    try:
        batch = list(Payment.objects.filter(status__in=(Payment.Status.APPROVED, Payment.Status.SUBMITTED))
                     .order_by("updated_at")[:POLL_BATCH])
        if batch:
            steps = payments.payments_next_steps(payments=batch)
            for step in steps:
                # In parallel on the worker's threads (one queued check per payment at a time);
                # payment_check decides again from fresh reads.
                if step.kind != "wait" and cache.add(CHECK_QUEUED_KEY.format(step.payment.pk), 1, timeout=10):
                    payment_check.delay(str(step.payment.pk))
            still_open = len(batch)
            # Rotate: the next run starts with payments not looked at for longest. The sweep reads a
            # payment not touched for a while as "the poller stopped".
            Payment.objects.filter(pk__in=[p.pk for p in batch], status__in=Payment.OPEN_STATUSES).update(
                updated_at=timezone.now())
    except ChainUnavailableError:
        logger.warning("payment poller: chain unavailable; retrying shortly")
        still_open = 1
    finally:
        cache.delete(POLLER_LOCK_KEY)
    if still_open:
        schedule_poller()
    return still_open


@shared_task(autoretry_for=(ChainUnavailableError,), retry_backoff=1, retry_backoff_max=10, max_retries=12,
             time_limit=60, soft_time_limit=45, acks_late=True)
def payment_check(payment_id: str) -> str | None:
    """Advance one payment now (from the poller, and the admin's "re-check status")."""
    cache.delete(CHECK_QUEUED_KEY.format(payment_id))
    payment = payments.payment_check(payment_id=payment_id)
    if payment is not None and not payment.is_terminal:
        schedule_poller()
    return None if payment is None else payment.status


@shared_task(time_limit=60, soft_time_limit=50, acks_late=False)
def payment_sweep(stale_seconds: int = 10) -> int:
    """Beat job: if open payments went stale (e.g. the poller's message was lost in a worker or broker
    restart), start the poller. The poller itself is single-flight.

    :returns: how many stale open payments were found.
    """
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    stale = Payment.objects.filter(status__in=(Payment.Status.APPROVED, Payment.Status.SUBMITTED),
                                   updated_at__lt=cutoff).count()
    if stale:
        cache.delete(POLLER_SCHEDULED_KEY)  # a lost poller message must not block the next one
        schedule_poller(countdown=0)
    return stale


@shared_task(autoretry_for=(ChainUnavailableError,), retry_backoff=2, max_retries=3, time_limit=120,
             soft_time_limit=100)
def deposit_scan(wallet_limit: int = 50) -> int:
    """Beat job: find deposits from outside addresses (bounded per run, resumable cursors).

    :returns: how many new incoming transfers were recorded.
    """
    if not cache.add("deposit-scan-lock", 1, timeout=120):
        return 0
    try:
        return deposits.deposit_scan(wallet_limit=wallet_limit)
    finally:
        cache.delete("deposit-scan-lock")
