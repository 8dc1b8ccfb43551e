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

MAX_POLLS = 200
POLL_KEY = "payment-poll:{}"


def _poll_delay(poll: int) -> float:
    """Seconds before the next status poll: every 0.2 s for the first 15 polls (a slot is ~0.4 s,
    confirmation is one slot later), then growing by 1.3x up to 3 s."""
    if poll < 15:
        return 0.2
    return min(0.2 * (1.3 ** (poll - 14)), 3.0)


def _schedule_check(payment_id: str, poll: int) -> None:
    delay = _poll_delay(poll)
    cache.set(POLL_KEY.format(payment_id), 1, timeout=int(delay) + 10)
    payment_check.apply_async((payment_id,), {"poll": poll}, countdown=delay)


@shared_task(autoretry_for=(ChainUnavailableError,), retry_backoff=1, retry_backoff_max=10, max_retries=12,
             time_limit=60, soft_time_limit=45, acks_late=True)
def payment_submit(payment_id: str) -> str | None:
    """Send the payment's stored signed transaction, then start polling its status."""
    payment = payments.payment_submit(payment_id=payment_id)
    if payment is None:
        return None
    if not payment.is_terminal:
        _schedule_check(payment_id, 0)
    return payment.status


@shared_task(autoretry_for=(ChainUnavailableError,), retry_backoff=1, retry_backoff_max=10, max_retries=12,
             time_limit=60, soft_time_limit=45, acks_late=True)
def payment_check(payment_id: str, poll: int = 0) -> str | None:
    """Poll ``getSignatureStatuses``; re-send or re-attempt as needed; re-schedule until terminal."""
    payment = payments.payment_check(payment_id=payment_id)
    if payment is None:
        return None
    if payment.is_terminal:
        cache.delete(POLL_KEY.format(payment_id))
    elif poll < MAX_POLLS:
        _schedule_check(payment_id, poll + 1)
    return payment.status


@shared_task(time_limit=60, soft_time_limit=50, acks_late=False)
def payment_sweep(stale_seconds: int = 10, limit: int = 500) -> int:
    """Beat job: find open payments nobody is polling (e.g. after a worker or broker restart) and
    enqueue a check. Single-flight: overlapping runs are skipped.

    :returns: how many payments were enqueued.
    """
    if not cache.add("payment-sweep-lock", 1, timeout=30):
        return 0
    try:
        cutoff = timezone.now() - timedelta(seconds=stale_seconds)
        ids = list(Payment.objects.filter(status__in=(Payment.Status.APPROVED, Payment.Status.SUBMITTED),
                                          updated_at__lt=cutoff).order_by("updated_at")
                   .values_list("id", flat=True)[:limit])
        count = 0
        for payment_id in ids:
            if cache.get(POLL_KEY.format(payment_id)) is None:
                _schedule_check(str(payment_id), 0)
                count += 1
        return count
    finally:
        cache.delete("payment-sweep-lock")


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
