"""Pay anyone by email: an email with no account gets a wallet at once and is paid; its owner is told, signs
up, confirms the address and spends the money; the sender may take it back after the claim period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.account.adapter import get_adapter
from allauth.account.models import EmailAddress
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.middleware import SessionMiddleware
from django.core import mail
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import User
from payments.models import Payment
from payments.requests import PaymentRequest
from payments.services import payment_plan
from wallets.models import Wallet

from .payments_support import ApiUser, token_balance, wait_terminal

pytestmark = [pytest.mark.chain]


def _confirm_email(email: str) -> None:
    request = RequestFactory().get("/")
    SessionMiddleware(lambda r: None).process_request(request)
    request._messages = FallbackStorage(request)  # allauth tells the browser "confirmed"
    get_adapter().confirm_email(request, EmailAddress.objects.get(email__iexact=email))


def test_an_email_without_an_account_is_paid_at_once_and_its_owner_finds_the_money(celery_worker, tokens) -> None:
    usdc = tokens["USDC"].mint
    alice = ApiUser("alice-e@example.com")
    alice.faucet("USDC", "20")
    mail.outbox.clear()
    # when Alice pays an email nobody has signed up with
    response = alice.pay("Carol@Example.com", "USDC", "12.50")
    # then it is accepted as any payment to a user (nothing tells her whether the email has an account)
    assert response.status_code == 201, response.content
    assert response.json()["network_fee"] == "0"
    payment_id = response.json()["id"]
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    # and a wallet waits for the address, holding the money, with nothing else on-chain
    waiting = Wallet.objects.get(claim_email="carol@example.com")
    assert (waiting.user, waiting.kind, response.json()["to_address"]) == (None, "smart", waiting.address)
    assert token_balance(waiting.address, usdc) == 12_500_000
    # and its owner is told by email
    from .helpers import wait_until

    wait_until(lambda: len(mail.outbox) == 1, timeout=30)
    message = mail.outbox[0]
    assert message.to == ["carol@example.com"]
    assert message.subject == "You received 12.5 USDC on Numpay"
    assert "You received 12.5 USDC from alice-e@example.com — sign up to use it." in message.body
    # when Carol signs up with that email
    carol = ApiUser("carol@example.com")
    # then the wallet is hers, with the money in it
    assert carol.address == waiting.address
    wallet = carol.get("/api/v1/wallet").json()
    assert {b["token"]: b["amount"] for b in wallet["balances"]}["USDC"] == "12500000"
    assert Wallet.objects.filter(user__email="carol@example.com").count() == 1
    # but she cannot spend it before she confirms the address: nothing happens
    refused = carol.pay("alice-e@example.com", "USDC", "1")
    assert (refused.status_code, refused.json()["code"]) == (403, "wallet_unclaimed")
    assert not Payment.objects.filter(wallet=waiting).exists()
    # when she confirms it
    _confirm_email("carol@example.com")
    # then she spends it (her wallet's config is created by this first payment)
    spent = carol.pay("alice-e@example.com", "USDC", "2")
    assert spent.status_code == 201, spent.content
    assert wait_terminal([spent.json()["id"]]) == {spent.json()["id"]: "confirmed"}
    assert token_balance(waiting.address, usdc) == 10_500_000
    assert Wallet.objects.get(pk=waiting.pk).claim_email == ""
    # and she sees the payment she received
    assert carol.get(f"/api/v1/payments/{payment_id}").json()["direction"] == "received"


def test_the_review_step_creates_nothing_for_an_unknown_email(make_user, tokens) -> None:
    from wallets.faucet import faucet_fund

    alice = make_user()
    faucet_fund(wallet=alice.wallet, token=tokens["USDC"], amount=5_000_000)
    wallets_before = Wallet.objects.count()
    plan = payment_plan(user=alice, request=PaymentRequest(to="nobody-yet@example.com", token="USDC", amount="1"))
    assert (plan.amount, plan.network_fee, plan.creates_recipient_token_account) == (1_000_000, 0, True)
    assert Wallet.objects.count() == wallets_before


def test_the_sender_takes_back_an_unclaimed_payment_after_the_claim_period(celery_worker, tokens, settings) -> None:
    settings.NUMPAY_UNCLAIMED_RECLAIM_DAYS = 30
    usdc = tokens["USDC"].mint
    alice = ApiUser("alice-r@example.com")
    alice.faucet("USDC", "10")
    sent = alice.pay("dave@example.com", "USDC", "3")
    payment_id = sent.json()["id"]
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    waiting = Wallet.objects.get(claim_email="dave@example.com")
    # when she asks for it back at once
    early = alice.post(f"/api/v1/payments/{payment_id}/reclaim", {})
    # then it is refused, and nothing happened
    assert (early.status_code, early.json()["code"]) == (409, "payment_reclaim_too_early")
    assert Payment.objects.count() == 1
    # when 30 days have passed unclaimed
    Payment.objects.filter(pk=payment_id).update(confirmed_at=timezone.now() - timedelta(days=30, seconds=1))
    reclaim = alice.post(f"/api/v1/payments/{payment_id}/reclaim", {})
    # then the money comes back to her
    assert reclaim.status_code == 201, reclaim.content
    assert reclaim.json()["direction"] == "received"
    assert wait_terminal([reclaim.json()["id"]]) == {reclaim.json()["id"]: "confirmed"}
    assert token_balance(alice.address, usdc) == 10_000_000
    assert token_balance(waiting.address, usdc) == 0
    # and asking again returns the same reclaim
    again = alice.post(f"/api/v1/payments/{payment_id}/reclaim", {})
    assert (again.status_code, again.json()["id"]) == (200, reclaim.json()["id"])
    # and nobody else can reclaim it
    bob = ApiUser("bob-r@example.com")
    assert bob.post(f"/api/v1/payments/{payment_id}/reclaim", {}).json()["code"] == "payment_not_found"
    assert User.objects.filter(email="dave@example.com").count() == 0
