"""Celery tasks of the relayer (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task

from numpay.core.errors import ChainUnavailableError

from . import services


@shared_task(
    name="relayer.tasks.fee_payer_balance_check",
    autoretry_for=(ChainUnavailableError,),
    retry_backoff=2,
    retry_backoff_max=20,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=30,
    time_limit=45,
    expires=55,
    ignore_result=True,
)
def fee_payer_balance_check() -> int:
    """Beat job (every 60 s): record the fee payer's balance and alert below the threshold.

    Idempotent (it overwrites the last observation), so overlapping runs are harmless; only an
    unreachable chain is retried, with backoff, at most 3 times.

    :returns: the balance in lamports.
    """
    return services.fee_payer_balance_check().last_balance_lamports or 0
