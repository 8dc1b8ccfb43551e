"""Invariant 1 under a deterministic interleaving: a payment authorized while another transaction holds the
sender's wallet lock waits for it, then sees what it reserved; and the wallet lock does not make opposite
payments deadlock on their foreign key checks (PostgreSQL; see tests/races.py)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from numpay.core.errors import ApplicationError
from payments.models import Payment, SpendingPolicy
from payments.requests import PaymentRequest
from payments.services import payment_create, payment_reclaim
from tests.races import postgresql_only, wait_for_lock_waiters
from wallets.claims import wallet_reserve_for_email
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


def test_two_wallets_paying_each_other_at_once_both_succeed(transactional_db, make_user, tokens) -> None:
    """A pays B while B pays A. Each payment's transaction holds its own wallet's lock, and its INSERT has a
    foreign key to the other wallet (``recipient_wallet``), whose check takes ``FOR KEY SHARE`` on that row at
    commit (Django's foreign keys are ``DEFERRABLE INITIALLY DEFERRED``). With the wallet lock taken ``FOR
    UPDATE`` the two checks wait for each other and PostgreSQL aborts one with a deadlock; ``FOR NO KEY
    UPDATE`` (``wallets.lock_objects``) does not conflict with ``FOR KEY SHARE``, so both commit."""
    usdc = tokens["USDC"]
    # a passkey above 0: each accepted payment waits reserved, unsigned (nothing sent, no outbox)
    SpendingPolicy.objects.create(name="Standard", scope="default", token=usdc, passkey_above=0)
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=5_000_000)
    faucet_fund(wallet=bob.wallet, token=usdc, amount=5_000_000)
    outcome: dict[str, str] = {}
    bob_done = threading.Event()

    def bob_pays_alice() -> None:
        try:
            payment, _ = payment_create(user=bob, request=PaymentRequest(to=alice.email, token="USDC", amount="1"),
                                        idempotency_key=str(uuid.uuid4()))
            outcome["bob"] = payment.status
        except Exception as exc:  # noqa: BLE001 - the assertion below shows which
            outcome["bob"] = repr(exc)
        finally:
            bob_done.set()
            connection.close()

    thread = threading.Thread(target=bob_pays_alice)
    try:
        # given Alice's payment to Bob made in a transaction still open: it holds Alice's wallet lock
        with transaction.atomic():
            payment, _ = payment_create(user=alice, request=PaymentRequest(to=bob.email, token="USDC", amount="1"),
                                        idempotency_key=str(uuid.uuid4()))
            outcome["alice"] = payment.status
            # when Bob pays Alice meanwhile
            thread.start()
            # then his transaction (holding Bob's wallet lock) is not stuck on Alice's wallet row: it commits
            # while Alice's transaction is still open (before the fix: it waits at commit for the foreign key
            # check's FOR KEY SHARE on Alice's wallet, and Alice's commit below then deadlocks with it)
            waited = wait_for_lock_waiters(1, give_up_when=bob_done.is_set)
            outcome["bob_committed_while_alice_held_her_lock"] = str(bob_done.is_set() and not waited)
    except Exception as exc:  # noqa: BLE001 - the assertion below shows which
        outcome["alice"] = repr(exc)
    thread.join(timeout=30)
    assert outcome == {"alice": "awaiting_approval", "bob": "awaiting_approval",
                       "bob_committed_while_alice_held_her_lock": "True"}
    assert Payment.objects.filter(sender=alice, recipient_wallet=bob.wallet).count() == 1
    assert Payment.objects.filter(sender=bob, recipient_wallet=alice.wallet).count() == 1


def test_a_reclaim_and_a_payment_to_the_same_email_at_once_both_succeed(transactional_db, make_user, tokens,
                                                                          settings) -> None:
    """The same cycle through a reclaim: Alice pays an email nobody claimed (her wallet's lock; a row
    referencing the waiting wallet) while she takes back an earlier payment to it (the waiting wallet's lock;
    a row referencing her wallet). Both commit; with ``FOR UPDATE`` one was aborted with a deadlock."""
    settings.NUMPAY_UNCLAIMED_RECLAIM_DAYS = 30
    usdc = tokens["USDC"]
    SpendingPolicy.objects.create(name="Standard", scope="default", token=usdc, passkey_above=0)
    alice = make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=5_000_000)
    email = f"dave-{uuid.uuid4().hex[:8]}@example.com"
    waiting = wallet_reserve_for_email(email=email)
    # given a payment of 2 USDC to that email, landed more than 30 days ago and never claimed
    faucet_fund(wallet=waiting, token=usdc, amount=2_000_000)
    original = Payment.objects.create(
        sender=alice, wallet=alice.wallet, recipient_input=email, recipient_address=waiting.address,
        recipient_wallet=waiting, token=usdc, amount=2_000_000, status=Payment.Status.CONFIRMED,
        confirmed_at=timezone.now() - timedelta(days=30, seconds=1))
    outcome: dict[str, str] = {}
    reclaim_done = threading.Event()

    def reclaim() -> None:
        try:
            payment, _ = payment_reclaim(user=alice, payment_id=original.id)
            outcome["reclaim"] = payment.status
        except Exception as exc:  # noqa: BLE001 - the assertion below shows which
            outcome["reclaim"] = repr(exc)
        finally:
            reclaim_done.set()
            connection.close()

    thread = threading.Thread(target=reclaim)
    try:
        # when a new payment to the email is made in a transaction still open (it holds Alice's wallet lock)
        with transaction.atomic():
            payment, _ = payment_create(user=alice, request=PaymentRequest(to=email, token="USDC", amount="1"),
                                        idempotency_key=str(uuid.uuid4()))
            outcome["payment"] = payment.status
            # and the reclaim runs meanwhile
            thread.start()
            # then the reclaim commits while that transaction is still open
            waited = wait_for_lock_waiters(1, give_up_when=reclaim_done.is_set)
            outcome["reclaim_committed_while_the_payment_held_the_lock"] = str(reclaim_done.is_set() and not waited)
    except Exception as exc:  # noqa: BLE001 - the assertion below shows which
        outcome["payment"] = repr(exc)
    thread.join(timeout=30)
    assert outcome == {"payment": "awaiting_approval", "reclaim": "approved",
                       "reclaim_committed_while_the_payment_held_the_lock": "True"}
    assert Payment.objects.filter(reclaim_of=original, wallet=waiting, recipient_wallet=alice.wallet).count() == 1
    assert Payment.objects.filter(sender=alice, recipient_wallet=waiting, status="awaiting_approval").count() == 1
