"""Helpers for payments' own tests."""

from __future__ import annotations

from typing import Any

from payments.models import Payment
from tests.helpers import wait_until


def wait_status(payment_id: Any, status: str, timeout: float = 60.0) -> bool:
    """Wait until the payment reaches ``status``; :returns: whether it did."""
    return bool(wait_until(lambda: Payment.objects.filter(pk=payment_id, status=status).exists(), timeout=timeout,
                           interval=0.1))
