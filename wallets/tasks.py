"""Celery tasks for wallets: the deposit scan, the email to the owner of an unclaimed payment. Thin: call a
service.

Retries only for :class:`~numpay.core.errors.ChainUnavailableError` (network, 429, 5xx, timeouts),
bounded, with backoff; every RPC call has a timeout in the chain client.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache

from numpay.core.errors import ChainUnavailableError
from numpay.core.money import format_amount

from . import deposits

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(ChainUnavailableError,), retry_backoff=2, max_retries=3, time_limit=120,
             soft_time_limit=100)
def deposit_scan(wallet_limit: int = 1000, seconds: float = 5.0) -> int:
    """Beat job (every 15 s): find deposits from outside addresses, bounded per run by ``wallet_limit`` wallets
    and ``seconds`` (resumable cursors; the least recently scanned first). With a fixed 50 wallets a run, 10k
    wallets took 50 minutes to go round once; bounded by time, a run covers what the chain answers in 5 s
    (``bench/scale.py``: about 100 wallets/s on localnet, so 10k wallets in about 5 minutes).

    :returns: how many new incoming transfers were recorded.
    """
    if not cache.add("deposit-scan-lock", 1, timeout=120):
        return 0
    try:
        return deposits.deposit_scan(wallet_limit=wallet_limit, seconds=seconds)
    finally:
        cache.delete("deposit-scan-lock")


@shared_task(autoretry_for=(OSError,), retry_backoff=5, max_retries=5, time_limit=60, soft_time_limit=50)
def unclaimed_payment_notify(payment_id: str) -> bool:
    """Email the owner of an address a payment landed at while nobody has claimed it
    (``wallets.claims``). :returns: whether an email was sent."""
    from payments.models import Payment

    from .claims import unclaimed_payment_notify as notify

    payment = Payment.objects.select_related("recipient_wallet", "token", "sender").filter(pk=payment_id).first()
    if payment is None or payment.recipient_wallet is None or not payment.recipient_wallet.claim_email:
        return False
    notify(email=payment.recipient_wallet.claim_email, sender_email=payment.sender.email,
           ui_amount=format_amount(payment.amount, decimals=payment.token.decimals), symbol=payment.token.symbol)
    return True
