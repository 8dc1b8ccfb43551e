"""Invariant 1 under a deterministic interleaving: a payment authorized while another transaction holds the
sender's wallet lock waits for it, then sees what it reserved (PostgreSQL; see tests/races.py)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from numpay.core.errors import ApplicationError
from payments.models import Payment
from payments.requests import PaymentRequest
from payments.services import payment_create
from tests.races import postgresql_only, wait_for_lock_waiters
from wallets.faucet import faucet_fund
from wallets.lock_objects import wallet_qs_select_for_update

pytestmark = [pytest.mark.chain, postgresql_only]


def test_a_payment_waits_for_the_wallet_lock_and_then_sees_the_reservation(transactional_db, make_user, tokens) -> None:
    usdc = tokens["USDC"]
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=5_000_000)
    outcome: dict[str, str] = {}
    second_done = threading.Event()

    def second() -> None:
        try:
            payment, _ = payment_create(user=alice, request=PaymentRequest(to=bob.email, token="USDC", amount="2"),
                                        idempotency_key=str(uuid.uuid4()))
            outcome["second"] = payment.status
        except ApplicationError as exc:
            outcome["second"] = exc.code
        finally:
            second_done.set()
            connection.close()

    # given a transaction that holds Alice's wallet lock and reserves 4 of her 5 USDC
    with transaction.atomic():
        wallet_qs_select_for_update().get(pk=alice.wallet.pk)
        Payment.objects.create(sender=alice, wallet=alice.wallet, recipient_input=bob.email,
                               recipient_address=bob.wallet.address, recipient_wallet=bob.wallet, token=usdc,
                               amount=4_000_000, expires_at=timezone.now() + timedelta(minutes=5))
        # when a payment of 2 USDC is made meanwhile
        thread = threading.Thread(target=second)
        thread.start()
        # then it waits for the lock (it has not decided before this transaction commits)
        blocked = wait_for_lock_waiters(1, give_up_when=second_done.is_set)
    thread.join(timeout=30)
    assert blocked
    # and, once it may look, it sees the 4 USDC reserved and refuses: nothing was created
    assert outcome == {"second": "insufficient_funds"}
    assert Payment.objects.filter(sender=alice).count() == 1
