"""Row-lock helpers (STYLE.md: locks through small named helpers)."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Wallet, WalletKey


def wallet_qs_select_for_update() -> QuerySet[Wallet]:
    """Wallets locked ``FOR UPDATE`` (serialises money-moving decisions per wallet)."""
    return Wallet.objects.select_for_update()


def wallet_key_qs_select_for_update() -> QuerySet[WalletKey]:
    """Key envelopes locked ``FOR UPDATE`` with ``SKIP LOCKED`` for resumable, concurrent rotation."""
    return WalletKey.objects.select_for_update(skip_locked=True)

