"""Authorize, then approve, then sign; abandoned payments expire and give their reservation back."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from numpay.core.errors import ApplicationError
from numpay.core.solana import get_chain_client
from payments import authorization, services
from payments.models import Payment, PaymentAttempt, PaymentEvent
from payments.requests import PaymentRequest
from payments.tasks import payment_expire_sweep
from relayer.models import SponsorshipCharge
from wallets.faucet import faucet_fund

from .support import wait_status

pytestmark = [pytest.mark.chain]


def _available(user, token) -> int:  # noqa: ANN001
    return authorization.available_balance(client=get_chain_client(), wallet=user.wallet, token=token)


@pytest.mark.django_db
def test_the_sweep_expires_a_payment_left_created_and_releases_its_reservation(make_user, tokens) -> None:
    usdc = tokens["USDC"]
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=5_000_000)
    # given a payment that was authorized (it reserves 2 USDC) and then abandoned before approval
    payment = Payment.objects.create(sender=alice, wallet=alice.wallet, recipient_input=bob.email,
                                     recipient_address=bob.wallet.address, recipient_wallet=bob.wallet, token=usdc,
                                     amount=2_000_000, expires_at=timezone.now() - timedelta(seconds=1))
    fresh = Payment.objects.create(sender=alice, wallet=alice.wallet, recipient_input=bob.email,
                                   recipient_address=bob.wallet.address, recipient_wallet=bob.wallet, token=usdc,
                                   amount=1_000_000, expires_at=timezone.now() + timedelta(minutes=5))
    assert _available(alice, usdc) == 2_000_000
    # when the beat sweep runs
    assert payment_expire_sweep.apply().get() == 1
    # then it is expired with its timestamp and event, and its amount is available again; the fresh one is not
    payment.refresh_from_db()
    assert payment.status == "expired"
    assert payment.expired_at is not None
    assert payment.expires_at is None
    assert payment.error_code == "payment_expired"
    assert list(payment.events.values_list("from_status", "to_status")) == [("created", "expired")]
    assert Payment.objects.get(pk=fresh.pk).status == "created"
    assert _available(alice, usdc) == 4_000_000
    assert not SponsorshipCharge.objects.filter(reference=payment.pk).exists()
    assert not PaymentAttempt.objects.filter(payment=payment).exists()
    # and a second run finds nothing more to do
    assert payment_expire_sweep.apply().get() == 0


def test_a_payment_that_needs_approval_is_signed_only_when_approved(celery_worker, make_user, tokens,
                                                                    monkeypatch) -> None:
    usdc = tokens["USDC"]
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=5_000_000)
    # given a policy that asks for an approval (the passkey step-up will)
    monkeypatch.setattr(authorization, "approval_required", lambda payment: "policy: test approval")
    payment, created = services.payment_create(user=alice, request=PaymentRequest(to=bob.email, token="USDC",
                                                                                   amount="3"),
                                               idempotency_key=str(uuid.uuid4()))
    # then it waits, reserved but unsigned and unsponsored
    assert created
    assert payment.status == "awaiting_approval"
    assert payment.awaiting_approval_at is not None
    assert payment.expires_at is not None
    assert not PaymentAttempt.objects.filter(payment=payment).exists()
    assert not SponsorshipCharge.objects.filter(reference=payment.pk).exists()
    assert _available(alice, usdc) == 2_000_000
    # when it is approved
    approved = services.payment_approve(payment_id=payment.pk, note="test approval")
    # then it is signed with a blockhash fetched at approval, sent by the worker and confirmed
    assert approved.status == "approved"
    assert wait_status(payment.pk, "confirmed")
    attempt = PaymentAttempt.objects.get(payment=payment)
    assert attempt.created_at >= approved.awaiting_approval_at
    assert list(PaymentEvent.objects.filter(payment=payment).values_list("to_status", flat=True)) == [
        "created", "awaiting_approval", "approved", "submitted", "confirmed"]
    # and approving again is refused without changing anything
    with pytest.raises(ApplicationError) as refused:
        services.payment_approve(payment_id=payment.pk, note="again")
    assert refused.value.code == "payment_not_approvable"
    assert PaymentAttempt.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
def test_an_expired_payment_cannot_be_approved(make_user, tokens, monkeypatch) -> None:
    usdc = tokens["USDC"]
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=5_000_000)
    monkeypatch.setattr(authorization, "approval_required", lambda payment: "policy: test approval")
    payment, _ = services.payment_create(user=alice, request=PaymentRequest(to=bob.email, token="USDC", amount="1"))
    Payment.objects.filter(pk=payment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ApplicationError) as refused:
        services.payment_approve(payment_id=payment.pk, note="late")
    assert refused.value.code == "payment_expired"
    assert Payment.objects.get(pk=payment.pk).status == "awaiting_approval"
    assert not PaymentAttempt.objects.filter(payment=payment).exists()
    assert not SponsorshipCharge.objects.filter(reference=payment.pk).exists()
