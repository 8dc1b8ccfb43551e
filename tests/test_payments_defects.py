"""Regression tests for the defects found by trying to break payments (issue 7, item 8). Each failed
before its fix."""

from __future__ import annotations

import uuid

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from payments.models import Payment

from .payments_support import ApiUser, wait_terminal
from .test_payments_refusals import _assert_nothing_happened

pytestmark = [pytest.mark.chain]

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _case_twin(address: str) -> str:
    """The same address with one letter's case swapped (still valid base58, another account)."""
    for index, char in enumerate(address):
        if char.swapcase() != char and char.swapcase() in BASE58:
            twin = address[:index] + char.swapcase() + address[index + 1:]
            try:
                Pubkey.from_string(twin)  # still 32 bytes (a swap near the front can change the length)
            except ValueError:
                continue
            return twin
    raise AssertionError("no letter to swap")


@pytest.fixture
def funded(tokens) -> tuple[ApiUser, ApiUser]:  # noqa: ANN001
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "10")
    alice.faucet("SOL", "1")
    bob.faucet("USDC", "1")
    return alice, bob


@pytest.mark.django_db
def test_an_idempotency_key_reused_for_an_address_differing_only_in_case_is_refused(funded) -> None:
    alice, _ = funded
    address = str(Keypair().pubkey())
    twin = _case_twin(address)
    assert Pubkey.from_string(twin) != Pubkey.from_string(address)
    key = str(uuid.uuid4())
    first = alice.post("/api/v1/payments", {"to": address, "token": "SOL", "amount": "0.01"}, HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 201, first.content
    # when the same key is sent with the case-twin address (another account)
    second = alice.post("/api/v1/payments", {"to": twin, "token": "SOL", "amount": "0.01"}, HTTP_IDEMPOTENCY_KEY=key)
    # then it is not a replay of the first payment
    assert second.status_code == 422, second.content
    assert second.json()["code"] == "idempotency_key_reused"
    assert Payment.objects.filter(recipient_address=twin).count() == 0
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_an_email_in_another_case_with_the_same_key_is_a_replay(funded) -> None:
    alice, bob = funded
    key = str(uuid.uuid4())
    first = alice.post("/api/v1/payments", {"to": bob.email, "token": "USDC", "amount": "1"}, HTTP_IDEMPOTENCY_KEY=key)
    again = alice.post("/api/v1/payments", {"to": bob.email.upper(), "token": "USDC", "amount": "1"},
                       HTTP_IDEMPOTENCY_KEY=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"


def _unspendable(kind: str, alice: ApiUser, bob: ApiUser, tokens: dict) -> str:
    usdc = tokens["USDC"]
    return {
        "mint": usdc.mint,
        "token account": str(usdc.associated_token_account(bob.address)),
        "own token account": str(usdc.associated_token_account(alice.address)),
        "program": usdc.token_program,
        "sysvar": "SysvarC1ock11111111111111111111111111111111",
        "off-curve address": str(Pubkey.find_program_address([b"numpay-test"], Pubkey.from_string(usdc.token_program))[0]),
    }[kind]


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["USDC", "SOL"])
@pytest.mark.parametrize("kind", ["mint", "token account", "own token account", "program", "sysvar",
                                  "off-curve address"])
def test_payments_to_addresses_nobody_can_spend_from_are_refused(funded, tokens, kind: str, token: str) -> None:
    alice, bob = funded
    to = _unspendable(kind, alice, bob, tokens)
    response = alice.post("/api/v1/payments", {"to": to, "token": token, "amount": "0.01"},
                          HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_recipient"
    assert response.json()["detail"].endswith("Enter the recipient's wallet address.")
    _assert_nothing_happened()


def test_a_memo_of_fifty_emoji_lands(celery_worker, funded) -> None:
    alice, bob = funded
    memo = "😀" * 50  # 200 bytes, the longest memo; about 880,000 compute units in the Memo program
    response = alice.pay(bob.email, "USDC", "1", memo=memo)
    assert response.status_code == 201, response.content
    payment_id = response.json()["id"]
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    assert Payment.objects.get(pk=payment_id).memo == memo


@pytest.mark.django_db
def test_paying_an_email_does_not_reveal_whether_it_has_an_account(tokens) -> None:
    # given a sender who cannot cover the payment, and one email with an account, one without
    sender, member = ApiUser(f"s-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"m-{uuid.uuid4().hex[:8]}@example.com")
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    answers = []
    for to in (member.email, stranger):
        response = sender.post("/api/v1/payments", {"to": to, "token": "USDC", "amount": "1"},
                               HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        answers.append((response.status_code, response.json()["code"], response.json()["detail"]))
    # then both answers are the same
    assert answers[0] == answers[1] == (400, "insufficient_funds", "You can send at most 0 USDC right now.")
    _assert_nothing_happened()


@pytest.mark.django_db
def test_a_token_without_an_account_creation_fee_refuses_to_open_accounts_outside_numpay(funded, tokens) -> None:
    alice, _ = funded
    tokens["USDC"].__class__.objects.filter(pk=tokens["USDC"].pk).update(account_creation_fee=None)
    response = alice.post("/api/v1/payments", {"to": str(Keypair().pubkey()), "token": "USDC", "amount": "1"},
                          HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "recipient_account_missing"
    _assert_nothing_happened()


@pytest.mark.django_db
def test_a_fee_the_sender_cannot_cover_is_refused(funded) -> None:
    alice, _ = funded
    # 10 USDC in the wallet: 9.9 + the 0.25 fee for opening an outside account is too much
    response = alice.post("/api/v1/payments", {"to": str(Keypair().pubkey()), "token": "USDC", "amount": "9.9"},
                          HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "insufficient_funds"
    _assert_nothing_happened()


def test_a_numpay_user_without_a_token_account_gets_one_sponsored(celery_worker, tokens) -> None:
    alice, carol = ApiUser(f"a-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"c-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "5")
    response = alice.pay(carol.address, "USDC", "1")
    assert response.status_code == 201, response.content
    assert response.json()["network_fee"] == "0"
    assert Payment.objects.get(pk=response.json()["id"]).creates_recipient_token_account is True
