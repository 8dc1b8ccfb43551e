"""The outbox poller records one round's outcomes in one transaction (issue 13), with the same effects as one
by one: each payment confirmed once with its events, its sponsorship settled once; a payment that moved
meanwhile is left alone."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from solders.signature import Signature

from numpay.core.solana import get_chain_client
from payments import services
from payments.models import Payment, PaymentAttempt, PaymentEvent
from payments.requests import PaymentRequest
from relayer import outbox
from relayer.models import SponsorshipCharge, SponsorshipDay
from wallets.faucet import faucet_fund

pytestmark = [pytest.mark.chain, pytest.mark.django_db]


def _landed_payments(make_user, tokens, count: int) -> list[Payment]:  # noqa: ANN001
    """``count`` payments from one sender, sent and landed at the commitment, not recorded yet."""
    usdc = tokens["USDC"]
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=50_000_000)
    kind, client = outbox.get_kind("payment"), get_chain_client()
    payments = []
    for _ in range(count):
        payment, _ = services.payment_create(user=alice, request=PaymentRequest(to=bob.email, token="USDC",
                                                                                 amount="1"),
                                             idempotency_key=str(uuid.uuid4()))
        outbox.submit(kind=kind, owner_id=payment.pk)  # (the test's transaction never commits: no worker)
        payments.append(payment)
    for payment in payments:
        assert client.wait_for_confirmation(Signature.from_string(payment.signature), timeout=30)
    return payments


def _round(payments: list[Payment]) -> list[outbox.NextStep]:
    kind = outbox.get_kind("payment")
    owners = list(Payment.objects.filter(pk__in=[p.pk for p in payments]))
    by_owner = {step.owner.pk: step for step in outbox.next_steps(kind=kind, owners=owners)}
    return [by_owner[p.pk] for p in payments if by_owner[p.pk].kind in ("confirm", "fail")]  # in the given order


def test_one_rounds_outcomes_are_recorded_together_like_one_by_one(make_user, tokens) -> None:
    payments = _landed_payments(make_user, tokens, 3)
    steps = _round(payments)
    assert [step.kind for step in steps] == ["confirm"] * 3
    day = SponsorshipDay.objects.get(user=payments[0].sender)
    reserved_before = day.reserved_lamports
    # when the poller's round records them
    with CaptureQueriesContext(connection) as queries:
        recorded = outbox.record_outcomes(kind=outbox.get_kind("payment"), steps=steps)
    # then each is confirmed with its slot, block time and events, its attempt landed, its sponsorship settled
    assert recorded == 3
    for payment in payments:
        payment.refresh_from_db()
        assert payment.status == "confirmed"
        assert payment.confirmed_at is not None
        assert payment.slot is not None
        assert payment.expires_at is None
        assert list(payment.events.order_by("pk").values_list("from_status", "to_status")) == [
            ("", "created"), ("created", "approved"), ("approved", "submitted"), ("submitted", "confirmed")]
        assert PaymentAttempt.objects.get(payment=payment).status == "landed"
        assert SponsorshipCharge.objects.get(reference=payment.pk).status == "settled"
    # the day's total moved by the settled costs minus the reservations (all of one day)
    charges = SponsorshipCharge.objects.filter(reference__in=[p.pk for p in payments])
    day.refresh_from_db()
    assert day.reserved_lamports <= reserved_before
    assert sum(c.lamports for c in charges) > 0
    # and in one transaction: one lock of the three payments, one UPDATE of their attempts, one INSERT of events
    sql = [q["sql"] for q in queries.captured_queries]
    if connection.features.has_select_for_update:  # (SQLite has no row locks: its one writer is the lock)
        assert sum(1 for s in sql if 'FROM "wallets_payment"' in s and "FOR UPDATE" in s) == 1
    assert sum(1 for s in sql if s.startswith('UPDATE "wallets_paymentattempt"')) == 1
    assert sum(1 for s in sql if s.startswith('INSERT INTO "wallets_paymentevent"')) == 1
    # and the charges with one UPDATE per distinct settled amount (relayer.services.sponsorship_settle_many)
    distinct_amounts = len({charge.lamports for charge in charges})
    assert sum(1 for s in sql if s.startswith('UPDATE "relayer_sponsorshipcharge"')) == distinct_amounts


def test_an_outcome_recorded_meanwhile_is_not_recorded_again(make_user, tokens) -> None:
    payments = _landed_payments(make_user, tokens, 2)
    steps = _round(payments)
    kind = outbox.get_kind("payment")
    # given the first payment was landed by a pushed check before the poller's round records it
    outbox.take_step(kind=kind, step=steps[0])
    charge = SponsorshipCharge.objects.get(reference=payments[0].pk)
    events = PaymentEvent.objects.filter(payment=payments[0]).count()
    # when the round records both
    assert outbox.record_outcomes(kind=kind, steps=steps) == 1
    # then the first is untouched (no second event, no second settlement) and the second is confirmed
    assert PaymentEvent.objects.filter(payment=payments[0]).count() == events
    assert SponsorshipCharge.objects.get(reference=payments[0].pk).updated_at == charge.updated_at
    assert Payment.objects.get(pk=payments[1].pk).status == "confirmed"
    # and a repeated round changes nothing
    assert outbox.record_outcomes(kind=kind, steps=steps) == 0
