"""Celery tasks of payments (thin: take ids, call a service). Sending and confirming are the relayer's
outbox tasks (``relayer.tasks.outbox_*``)."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from numpay.core.errors import ChainUnavailableError


@shared_task(name="payments.tasks.payment_expire_sweep", time_limit=60, soft_time_limit=50, acks_late=False)
def payment_expire_sweep() -> int:
    """Beat job: expire payments abandoned before approval and release their reservations.

    :returns: how many payments were expired.
    """
    from .services import payments_expire_due

    return payments_expire_due()


@shared_task(name="payments.tasks.wallet_protect", time_limit=60, soft_time_limit=50, acks_late=True,
             autoretry_for=(ConnectionError, TimeoutError), retry_backoff=2, max_retries=5)
def wallet_protect(authenticator_id: int) -> str:
    """Switch the wallet of a newly registered passkey's owner to protected mode (idempotent).

    :returns: the switch's id, or ``""`` when nothing was to be done.
    """
    from numpay.core.solana import ChainUnavailableError

    from .protection import wallet_protect as protect

    try:
        protection = protect(authenticator_id=authenticator_id)
    except ChainUnavailableError as error:
        raise ConnectionError(str(error)) from error
    return str(protection.id) if protection is not None else ""


@shared_task(name="payments.tasks.block_time_backfill", autoretry_for=(ChainUnavailableError,), retry_backoff=2,
             max_retries=3, time_limit=60, soft_time_limit=50, acks_late=False)
def block_time_backfill(limit: int = 200, batches: int = 5) -> int:
    """Beat job (every 60 s): fill the block times of payments and incoming transfers recorded without one
    (:mod:`payments.block_times`), at most ``batches`` batches of ``limit`` rows per table; one run at a time
    (a cache lock). Resumable: a retry or the next run goes on where this one stopped.

    :returns: how many rows got their block time.
    """
    from .block_times import block_time_backfill_batch

    if not cache.add("block-time-backfill-lock", 1, timeout=60):
        return 0
    filled = 0
    try:
        for _ in range(batches):
            batch = block_time_backfill_batch(limit=limit)
            filled += batch.filled
            if batch.rows == 0:
                break
    finally:
        cache.delete("block-time-backfill-lock")
    return filled
