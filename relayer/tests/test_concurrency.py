"""Concurrent reservations cannot together exceed the daily budget (DESIGN.md "Payments: the invariants" 1).

Run against PostgreSQL (CI does; ``DATABASE_URL=postgres://...``), where the ``SELECT ... FOR UPDATE`` on the
user's day row is what serialises the decisions: without it, the second transaction would read the
budget before the first commits and both would pass. Skipped on SQLite, where the database serialises
every writer and the tests would pass without the lock (``tests/races.py``).
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, transaction
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from numpay.core.errors import ApplicationError
from relayer import services
from relayer.models import SponsorshipCharge, SponsorshipDay
from relayer.selectors import sponsorship_spent_today, sponsorship_today
from tests.races import postgresql_only, wait_for_lock_waiters

pytestmark = [pytest.mark.django_db(transaction=True), postgresql_only]

RECIPIENT = Pubkey(bytes([3] * 32))
SOL_TRANSFER_COST = 10_000


def _message(fee_payer: Keypair, sender: Keypair) -> Message:
    instruction = transfer(TransferParams(from_pubkey=sender.pubkey(), to_pubkey=RECIPIENT, lamports=1))
    return Message.new_with_blockhash([instruction], fee_payer.pubkey(), Hash.default())


def _run_interleaved(user, fee_payer: Keypair, sender: Keypair) -> dict[str, str]:
    """The first transaction reserves and keeps its transaction open until the second one is seen
    blocked on a lock (or has finished without blocking: then the lock is missing and the outcomes say so)."""
    first_reserved = threading.Event()
    second_done = threading.Event()
    outcomes: dict[str, str] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                services.relayer_cosign(user=user, message=_message(fee_payer, sender), reference=uuid.uuid4())
                first_reserved.set()
                # the second transaction runs now, while this one holds its reservation
                outcomes["second_blocked"] = str(wait_for_lock_waiters(1, give_up_when=second_done.is_set))
            outcomes["first"] = "reserved"
        except ApplicationError as exc:
            outcomes["first"] = exc.code
        finally:
            first_reserved.set()
            connection.close()

    def second() -> None:
        first_reserved.wait(timeout=10)
        try:
            with transaction.atomic():
                services.relayer_cosign(user=user, message=_message(fee_payer, sender), reference=uuid.uuid4())
            outcomes["second"] = "reserved"
        except ApplicationError as exc:
            outcomes["second"] = exc.code
        finally:
            second_done.set()
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_interleaved_reservations_on_an_existing_day_cannot_exceed_the_budget(settings, user, fee_payer, sender):
    # given room for one SOL payment (10_000 lamports) but not two, and today's row already there
    settings.RELAYER_DAILY_BUDGET_LAMPORTS = 15_000
    SponsorshipDay.objects.create(user=user, day=sponsorship_today())

    # when two transactions reserve at the same time
    outcomes = _run_interleaved(user, fee_payer, sender)

    # then exactly one is sponsored
    assert outcomes == {"first": "reserved", "second_blocked": "True", "second": "sponsorship_budget_exceeded"}
    assert sponsorship_spent_today(user=user) == SOL_TRANSFER_COST
    assert SponsorshipCharge.objects.count() == 1


def test_interleaved_reservations_creating_the_day_cannot_exceed_the_budget(settings, user, fee_payer, sender):
    # given no row for today yet: both transactions race to create it
    settings.RELAYER_DAILY_BUDGET_LAMPORTS = 15_000

    outcomes = _run_interleaved(user, fee_payer, sender)

    assert outcomes == {"first": "reserved", "second_blocked": "True", "second": "sponsorship_budget_exceeded"}
    assert SponsorshipDay.objects.filter(user=user).count() == 1
    assert sponsorship_spent_today(user=user) == SOL_TRANSFER_COST
    assert SponsorshipCharge.objects.count() == 1


def test_many_concurrent_reservations_stop_exactly_at_the_budget(settings, user, fee_payer, sender):
    # given room for exactly 3 SOL payments and 8 concurrent requests
    settings.RELAYER_DAILY_BUDGET_LAMPORTS = 3 * SOL_TRANSFER_COST
    start = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def reserve() -> None:
        try:
            start.wait(timeout=10)
            with transaction.atomic():
                services.relayer_cosign(user=user, message=_message(fee_payer, sender), reference=uuid.uuid4())
            outcome = "reserved"
        except ApplicationError as exc:
            outcome = exc.code
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["reserved"] * 3 + ["sponsorship_budget_exceeded"] * 5
    assert sponsorship_spent_today(user=user) == 3 * SOL_TRANSFER_COST
    assert SponsorshipCharge.objects.filter(status=SponsorshipCharge.Status.RESERVED).count() == 3
