"""Every refusal is a clear 4xx with a stable code and leaves nothing behind; no one sees others' payments."""

from __future__ import annotations

import uuid

import pytest
from solders.keypair import Keypair

from payments.models import Payment, PaymentAttempt, PaymentEvent
from relayer.models import SponsorshipCharge, SponsorshipDay

from .payments_support import ApiUser

pytestmark = [pytest.mark.django_db, pytest.mark.chain]


@pytest.fixture
def funded(tokens) -> tuple[ApiUser, ApiUser]:  # noqa: ANN001
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "10")
    alice.faucet("SOL", "1")
    return alice, bob


def _assert_nothing_happened() -> None:
    assert Payment.objects.count() == 0
    assert PaymentAttempt.objects.count() == 0
    assert PaymentEvent.objects.count() == 0
    assert SponsorshipCharge.objects.count() == 0
    assert sum(SponsorshipDay.objects.values_list("reserved_lamports", flat=True)) == 0


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"to": "", "token": "USDC", "amount": "1"}, 400, "invalid_request"),
    ({"to": "0OIl-not-base58", "token": "USDC", "amount": "1"}, 400, "invalid_address"),
    ({"to": "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "token": "USDC", "amount": "1"}, 400, "invalid_address"),
    ({"to": "BOB", "token": "DOGE", "amount": "1"}, 400, "unknown_token"),
    ({"to": "BOB", "token": "USDC", "amount": "0"}, 400, "amount_not_positive"),
    ({"to": "BOB", "token": "USDC", "amount": "-5"}, 400, "amount_not_positive"),
    ({"to": "BOB", "token": "USDC", "amount": "1.0000001"}, 400, "too_many_decimals"),
    ({"to": "BOB", "token": "USDC", "amount": "1e3"}, 400, "invalid_amount"),
    ({"to": "BOB", "token": "USDC", "amount": "10.000001"}, 400, "insufficient_funds"),
    ({"to": "BOB", "token": "SOL", "amount": "0.9999999"}, 400, "would_leave_dust"),
    ({"to": "BOB", "token": "USDC", "amount": "1", "memo": "x" * 201}, 400, "memo_too_long"),
    ({"to": "BOB", "token": "USDC", "amount": "1", "memo": "x" * 401}, 400, "invalid_request"),
    ({"to": "BOB", "token": "USDC", "amount": "1", "memo": "a\x07b"}, 400, "invalid_memo"),
    ({"to": "BOB", "token": "USDC", "amount": "1", "memo": "é" * 101}, 400, "memo_too_long"),
    ({"to": "BOB", "token": "USDC"}, 400, "invalid_request"),
])
def test_refusals_have_specific_codes_and_change_nothing(funded, body, status, code) -> None:
    alice, bob = funded
    body = {**body, "to": bob.email if body.get("to") == "BOB" else body.get("to")}
    if body["to"] is None:
        body.pop("to")
    response = alice.post("/api/v1/payments", body, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response["Content-Type"] == "application/problem+json"
    _assert_nothing_happened()


def test_paying_yourself_is_refused(funded) -> None:
    alice, _ = funded
    for to in (alice.email, alice.address):
        response = alice.pay(to, "USDC", "1")
        assert response.status_code == 400
        assert response.json()["code"] == "recipient_is_sender"
    _assert_nothing_happened()


def test_sol_below_rent_minimum_to_new_address_is_refused(funded) -> None:
    alice, _ = funded
    response = alice.pay(str(Keypair().pubkey()), "SOL", "0.0001")
    assert response.status_code == 400
    assert response.json()["code"] == "amount_below_rent_minimum"
    _assert_nothing_happened()


def test_missing_idempotency_key_is_refused(funded) -> None:
    alice, bob = funded
    response = alice.post("/api/v1/payments", {"to": bob.email, "token": "USDC", "amount": "1"})
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_required"
    _assert_nothing_happened()


def test_sponsorship_budget_exceeded_is_refused(funded, settings) -> None:
    alice, bob = funded
    settings.RELAYER_DAILY_BUDGET_LAMPORTS = 9_999  # below one two-signature fee (10,000 lamports)
    response = alice.pay(bob.address, "SOL", "0.5")
    assert response.status_code == 429
    assert response.json()["code"] == "sponsorship_budget_exceeded"
    _assert_nothing_happened()


def test_unauthenticated_payment_is_refused(client, tokens) -> None:
    response = client.post("/api/v1/payments", {"to": "x@example.com", "token": "USDC", "amount": "1"},
                           content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    _assert_nothing_happened()


def test_another_users_payment_is_404_and_not_listed(funded) -> None:
    alice, bob = funded
    carol = ApiUser(f"carol-{uuid.uuid4().hex[:8]}@example.com")
    created = alice.pay(bob.email, "USDC", "1")
    assert created.status_code == 201
    payment_id = created.json()["id"]
    assert alice.get(f"/api/v1/payments/{payment_id}").status_code == 200
    assert bob.get(f"/api/v1/payments/{payment_id}").status_code == 200
    response = carol.get(f"/api/v1/payments/{payment_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "payment_not_found"
    assert carol.get("/api/v1/payments/not-a-uuid").status_code == 404
    assert carol.get(f"/api/v1/payments/{uuid.uuid4()}").status_code == 404
    assert carol.get("/api/v1/payments").json()["results"] == []
    assert [p["id"] for p in bob.get("/api/v1/payments").json()["results"]] == [payment_id]
