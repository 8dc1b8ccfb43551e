"""Rolling caps are evaluated under the wallet lock (DESIGN.md invariant 1): concurrent payments against a
daily cap overshoot it by exactly 0. PostgreSQL only (tests.races)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, transaction

from accounts.models import User
from payments.models import Payment, SpendingPolicy
from payments.requests import PaymentRequest
from payments.services import payment_create
from wallets.lock_objects import wallet_qs_select_for_update

from .payments_support import ApiUser
from .races import postgresql_only, wait_for_lock_waiters

pytestmark = [pytest.mark.chain]
USDC = 1_000_000


#: PostgreSQL's max_connections (100) is shared with other test databases: the 100 concurrent requests hold
#: at most this many connections at once (each request opens and closes its own).
MAX_CONNECTIONS = 30


def _in_threads(count: int, work) -> list[object]:  # noqa: ANN001
    barrier = threading.Barrier(count)
    connections_left = threading.BoundedSemaphore(MAX_CONNECTIONS)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        with connections_left:
            try:
                results[index] = work(index)
            finally:
                connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@postgresql_only
def test_100_concurrent_payments_against_a_daily_cap_overshoot_by_zero(transactional_db, tokens) -> None:
    # given a daily cap of 30 USDC (and a passkey above 0, so every accepted payment waits reserved, unsigned)
    SpendingPolicy.objects.create(name="Standard", scope="default", token=tokens["USDC"], daily_cap=30 * USDC,
                                  passkey_above=0)
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "200")

    def pay(_index: int) -> tuple[int, str]:
        response = alice.client.post("/api/v1/payments", {"to": bob.email, "token": "USDC", "amount": "1"},
                                     content_type="application/json", HTTP_X_SESSION_TOKEN=alice.token,
                                     HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        body = response.json()
        return response.status_code, body["status"] if response.status_code == 201 else body["code"]

    # when 100 payments of 1 USDC arrive at once
    results = _in_threads(100, pay)
    # then exactly 30 are accepted (reserved, awaiting approval) and 70 refused: an overshoot of exactly 0
    assert sorted(set(results)) == [(201, "awaiting_approval"), (400, "limit_exceeded")]
    assert results.count((201, "awaiting_approval")) == 30
    reserved = Payment.objects.filter(sender__email=alice.email, status=Payment.Status.AWAITING_APPROVAL)
    assert sum(reserved.values_list("amount", flat=True)) == 30 * USDC
    assert Payment.objects.filter(sender__email=alice.email).count() == 30


@postgresql_only
def test_a_payment_waiting_for_the_wallet_lock_sees_the_reservation_made_while_it_waited(transactional_db,
                                                                                         tokens) -> None:
    # given a daily cap of 30 and two payments of 20 (each alone would fit)
    SpendingPolicy.objects.create(name="Standard", scope="default", token=tokens["USDC"], daily_cap=30 * USDC,
                                  passkey_above=0)
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "100")
    user = User.objects.get(email=alice.email)
    outcome: dict[str, object] = {}

    def second() -> None:
        try:
            payment_create(user=user, request=PaymentRequest(to=bob.email, token="USDC", amount="20"),
                           idempotency_key="second")
            outcome["second"] = "created"
        except Exception as exc:  # noqa: BLE001 - the assertion below says which
            outcome["second"] = getattr(exc, "code", repr(exc))
            outcome["message"] = getattr(exc, "message", "")
        finally:
            connection.close()

    # when the first payment's transaction holds the wallet lock and the second one arrives
    thread = threading.Thread(target=second)
    with transaction.atomic():
        wallet_qs_select_for_update().get(user=user)
        thread.start()
        assert wait_for_lock_waiters(1, give_up_when=lambda: not thread.is_alive())
        payment, created = payment_create(user=user, request=PaymentRequest(to=bob.email, token="USDC", amount="20"),
                                          idempotency_key="first")
        assert created
    thread.join()
    # then the second, evaluated after the first committed, is refused with what is left
    assert outcome == {"second": "limit_exceeded", "message": "You can send 10 more USDC today."}
    assert list(Payment.objects.filter(sender=user).values_list("idempotency_key", "status")) == [
        ("first", "awaiting_approval")]
