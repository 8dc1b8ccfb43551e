"""Exactly once under a faulty network, idempotency under concurrency, no overspend under concurrency."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection
from solders.pubkey import Pubkey
from solders.signature import Signature

from numpay.core.solana import get_chain_client
from payments.models import Payment, PaymentAttempt

from .helpers import wait_until
from .payments_support import ApiUser, token_balance, wait_terminal
from .races import postgresql_only

pytestmark = [pytest.mark.chain]


def _successful_transfers_to(address: str) -> list[str]:
    """Signatures of successful transactions touching ``address`` (paging through the history)."""
    client = get_chain_client()
    seen: list[str] = []
    before = None
    while True:
        page = client.signatures_for_address(Pubkey.from_string(address), before=before, limit=100)
        seen += [item["signature"] for item in page if item["err"] is None]
        if len(page) < 100:
            return seen
        before = Signature.from_string(page[-1]["signature"])


def _in_threads(count: int, work) -> list[object]:  # noqa: ANN001
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_200_payments_confirm_exactly_once_with_drops_and_503s(celery_worker, tokens, localnet_node, settings) -> None:
    # This test is about drops and 503s, not the daily sponsorship budget: until the first payment (which creates
    # the wallet's config on-chain, ~18.7M lamports of rent) lands, every payment signed meanwhile carries the
    # config's creation and reserves its rent too; with 30% of sends dropped, more than five such payments can be
    # in flight and the default 100M-lamport budget refuses the next one (429, seen once in CI).
    settings.RELAYER_DAILY_BUDGET_LAMPORTS = 10**12
    usdc = tokens["USDC"].mint
    alice, bob = ApiUser("alice-faults@example.com"), ApiUser("bob-faults@example.com")
    alice.faucet("USDC", "500")
    bob_token_account = str(__import__("spl.token.instructions", fromlist=["x"]).get_associated_token_address(
        Pubkey.from_string(bob.address), Pubkey.from_string(usdc)))
    # given a network that silently drops 30% of sends and answers 10% of requests with 503
    localnet_node.set_faults(dropRate=0.3, http503Rate=0.1, seed=7)
    try:
        # when Alice makes 200 payments of 1.000001 .. 1.000200 USDC
        ids = []
        for i in range(1, 201):
            response = alice.pay("bob-faults@example.com", "USDC", f"1.{i:06d}")
            assert response.status_code == 201, response.content
            ids.append(response.json()["id"])
        statuses = wait_terminal(ids, timeout=240)
    finally:
        localnet_node.set_faults(dropRate=0.0, http503Rate=0.0)
    # then every payment is confirmed
    assert set(statuses.values()) == {"confirmed"}
    expected = sum(1_000_000 + i for i in range(1, 201))
    # and exactly 200 transfers landed: one per payment, each the payment's recorded signature
    landed = _successful_transfers_to(bob_token_account)
    assert len(landed) == 200  # the ATA creation happened in the first payment's own transaction
    assert set(landed) == set(Payment.objects.filter(pk__in=ids).values_list("signature", flat=True))
    assert token_balance(bob.address, usdc) == expected
    assert token_balance(alice.address, usdc) == 500_000_000 - expected
    # and the drops really happened: stored transactions were re-sent (same signature), one landed each
    assert PaymentAttempt.objects.filter(payment_id__in=ids, status="landed").count() == 200
    assert sum(PaymentAttempt.objects.filter(payment_id__in=ids).values_list("send_count", flat=True)) > 200


def test_a_never_landed_attempt_is_replaced_only_after_its_blockhash_expires(celery_worker, tokens, localnet_node) -> None:
    usdc = tokens["USDC"].mint
    alice, bob = ApiUser("alice-expiry@example.com"), ApiUser("bob-expiry@example.com")
    alice.faucet("USDC", "5")
    client = get_chain_client()
    # given a network that drops every send
    localnet_node.set_faults(dropRate=1.0)
    try:
        response = alice.pay("bob-expiry@example.com", "USDC", "2")
        assert response.status_code == 201, response.content
        payment_id = response.json()["id"]
        first = PaymentAttempt.objects.get(payment_id=payment_id, number=1)
        # when the chain moves past the first attempt's last valid block height
        assert wait_until(lambda: client.block_height() > first.last_valid_block_height + 2, timeout=30)
        # then no second attempt existed while the first could still land, and one is made after
        assert wait_until(lambda: PaymentAttempt.objects.filter(payment_id=payment_id).count() == 2, timeout=30)
    finally:
        localnet_node.set_faults(dropRate=0.0)
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    attempts = list(PaymentAttempt.objects.filter(payment_id=payment_id).order_by("number"))
    assert [a.status for a in attempts] == ["expired", "landed"]
    assert attempts[0].signature != attempts[1].signature
    assert attempts[1].created_at > attempts[0].created_at
    assert client.signature_statuses([Signature.from_string(attempts[0].signature)]) == [None]
    assert Payment.objects.get(pk=payment_id).signature == attempts[1].signature
    assert token_balance(bob.address, usdc) == 2_000_000
    assert token_balance(alice.address, usdc) == 3_000_000


def test_50_concurrent_posts_with_one_idempotency_key_make_one_payment(celery_worker, tokens) -> None:
    usdc = tokens["USDC"].mint
    alice, bob = ApiUser("alice-idem@example.com"), ApiUser("bob-idem@example.com")
    alice.faucet("USDC", "10")
    key = str(uuid.uuid4())
    body = {"to": "bob-idem@example.com", "token": "USDC", "amount": "3"}

    def post(_index: int) -> tuple[int, str]:
        response = alice.client.post("/api/v1/payments", body, content_type="application/json",
                                     HTTP_X_SESSION_TOKEN=alice.token, HTTP_IDEMPOTENCY_KEY=key)
        return response.status_code, response.json().get("id", response.json().get("code"))

    results = _in_threads(50, post)
    assert {status for status, _ in results} == {201}
    assert len({payment_id for _, payment_id in results}) == 1
    assert Payment.objects.filter(sender__email="alice-idem@example.com").count() == 1
    payment_id = results[0][1]
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    assert token_balance(bob.address, usdc) == 3_000_000
    assert token_balance(alice.address, usdc) == 7_000_000
    # and the same key with a different body is refused, creating nothing
    response = alice.post("/api/v1/payments", {**body, "amount": "4"}, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Payment.objects.filter(sender__email="alice-idem@example.com").count() == 1


@postgresql_only
def test_50_concurrent_payments_never_exceed_the_balance(celery_worker, tokens) -> None:
    usdc = tokens["USDC"].mint
    alice, bob = ApiUser("alice-race@example.com"), ApiUser("bob-race@example.com")
    alice.faucet("USDC", "100")
    bob.faucet("USDC", "1")  # Bob's token account exists, so each payment reserves only network fees

    def pay(_index: int) -> tuple[int, str]:
        response = alice.client.post("/api/v1/payments", {"to": bob.address, "token": "USDC", "amount": "3"},
                                     content_type="application/json", HTTP_X_SESSION_TOKEN=alice.token,
                                     HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        return response.status_code, response.json().get("id") or response.json().get("code")

    results = _in_threads(50, pay)
    created = [value for status, value in results if status == 201]
    refused = [value for status, value in results if status != 201]
    assert set(refused) == {"insufficient_funds"}
    assert len(created) == 33  # 33 * 3 = 99 <= 100 < 102
    statuses = wait_terminal(created)
    confirmed = [pid for pid, status in statuses.items() if status == "confirmed"]
    assert len(confirmed) == 33
    assert token_balance(bob.address, usdc) == 1_000_000 + 3_000_000 * len(confirmed)
    assert token_balance(alice.address, usdc) == 100_000_000 - 3_000_000 * len(confirmed)
