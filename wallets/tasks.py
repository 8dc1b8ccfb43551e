"""Celery tasks for wallets: the deposit scan. Thin: call a service.

Retries only for :class:`~numpay.core.errors.ChainUnavailableError` (network, 429, 5xx, timeouts),
bounded, with backoff; every RPC call has a timeout in the chain client.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache

from numpay.core.errors import ChainUnavailableError

from . import deposits

logger = logging.getLogger(__name__)


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
