"""Row-lock helpers (STYLE.md: locks through small named helpers).

Wallet rows are locked ``FOR NO KEY UPDATE`` (``select_for_update(no_key=True)``): exclusive between lock
holders, like ``FOR UPDATE``, but it does not conflict with the ``FOR KEY SHARE`` lock PostgreSQL's foreign
key check takes on a referenced row. A payment's transaction holds its own wallet's lock and inserts a row
referencing another wallet (``Payment.recipient_wallet``); with ``FOR UPDATE``, two wallets paying each other
at once would wait for each other's lock at commit (Django's foreign keys are checked at commit) and
PostgreSQL would abort one of them with a deadlock (payments/tests/test_races.py). Source: PostgreSQL
documentation, "Explicit Locking", row-level lock modes.

Only a transaction that changes a wallet's key columns (``id``, ``address``, ``user``: the columns of its
unique indexes a foreign key may use) needs ``FOR UPDATE``: :func:`wallet_qs_select_for_key_update`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from numpay.core.sql import CompiledSelect

from .models import Wallet, WalletKey


def wallet_qs_select_for_update() -> QuerySet[Wallet]:
    """Wallets locked ``FOR NO KEY UPDATE`` (serialises money-moving decisions per wallet without blocking
    the foreign key checks of rows that reference the wallet, e.g. a payment to it). Not for a transaction
    that changes the wallet's ``id``, ``address`` or ``user``."""
    return Wallet.objects.select_for_update(no_key=True)


def wallet_qs_select_for_update_with_key() -> QuerySet[Wallet]:
    """As :func:`wallet_qs_select_for_update`, with the wallet's key envelope read in the same statement
    (``LEFT JOIN``; only the wallet row is locked: ``OF self``), for a transaction that signs with it at once:
    pass ``wallet.key`` as :func:`wallets.services.wallet_sign`'s ``envelope``."""
    return Wallet.objects.select_for_update(no_key=True, of=("self",)).select_related("key")


_WALLET_WITH_KEY = CompiledSelect(lambda pk: wallet_qs_select_for_update_with_key().filter(pk=pk)[:1],
                                  params=[(Wallet, "id")])


def wallet_lock_with_key(pk: Any) -> Wallet:
    """The wallet ``pk`` locked as :func:`wallet_qs_select_for_update_with_key` does, its SQL compiled once
    (:class:`numpay.core.sql.CompiledSelect`: every payment runs it). Raises ``Wallet.DoesNotExist`` when there
    is no such wallet and ``TransactionManagementError`` outside a transaction."""
    wallet = _WALLET_WITH_KEY.first(pk)
    if wallet is None:
        raise Wallet.DoesNotExist(f"no wallet {pk}")
    return wallet


def wallet_qs_select_for_key_update() -> QuerySet[Wallet]:
    """Wallets locked ``FOR UPDATE``, for a transaction that changes a key column (``address``: the upgrade to
    a smart wallet). Conflicts with every other wallet lock and with the foreign key checks of rows being
    inserted that reference the wallet: it waits for those transactions to end."""
    return Wallet.objects.select_for_update()


def wallet_key_qs_select_for_update() -> QuerySet[WalletKey]:
    """Key envelopes locked ``FOR UPDATE`` with ``SKIP LOCKED`` for resumable, concurrent rotation."""
    return WalletKey.objects.select_for_update(skip_locked=True)
