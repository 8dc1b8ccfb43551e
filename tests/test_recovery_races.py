"""A guardian's approval racing the same guardian's withdrawal, another guardian's withdrawal and the owner's
cancel, on PostgreSQL with the transactions interleaved deterministically (one holds the wallet and request
row locks, the other is seen waiting on them in ``pg_stat_activity``, then the first commits).

Whatever the order, the end state is one of the serial outcomes: no approval recorded on a cancelled request,
the request's status agrees with its live approvals, nothing is queued on-chain for a cancelled request.
With the wallet and request locks of ``recovery.services.requests._locked_open_request`` removed, the
approval is recorded on the cancelled request (and the request's status overwritten), the guardian's
withdrawal misses the approval it raced, and two guardians' concurrent approval and withdrawal leave a
running clock on one live approval: those tests fail. The cancel arriving after the approval is checked for its
end state only: without the locks it still waits, on the row the approval updates, and overwrites it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections, transaction

from numpay.core.errors import ApplicationError
from recovery import digests, services
from recovery.models import RecoveryApproval, RecoveryAttempt, RecoveryEvent, RecoveryRequest
from tests.races import postgresql_only, wait_for_lock_waiters
from tests.recovery_support import add_guardian, person, sign, start_collecting
from wallets.models import Wallet

Status = RecoveryRequest.Status
pytestmark = [postgresql_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _short_delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 86_400  # a running sweep never finds it due


@pytest.fixture
def family(make_user: Any) -> tuple[Any, list[Any]]:
    """An owner (keypair wallet: the race is about the rows, nothing is on-chain) with three active guardians
    (threshold 2)."""
    owner = person(make_user, "owner@example.com")
    guardians = [person(make_user, f"guardian{n}@example.com") for n in range(3)]
    for guardian in guardians:
        add_guardian(owner, guardian)
    Wallet.objects.filter(user=owner.user).update(kind=Wallet.Kind.KEYPAIR)
    return owner, guardians


def _outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except ApplicationError as error:
        return error.code
    return "done"


def _interleave(*, first: Callable[[], Any], second: Callable[[], Any]) -> tuple[str, str, bool]:
    """Run ``first`` in a transaction that stays open until ``second`` (another thread, another connection)
    is seen waiting on a lock, then commit it.

    :returns: both outcomes (``"done"`` or the error code) and whether ``second`` was seen waiting.
    """
    holding, release, outcomes = threading.Event(), threading.Event(), {}

    def run_first() -> None:
        try:
            with transaction.atomic():
                outcomes["first"] = _outcome(first)
                holding.set()
                release.wait(30)
        finally:
            holding.set()
            connections.close_all()

    def run_second() -> None:
        try:
            outcomes["second"] = _outcome(second)
        finally:
            connections.close_all()

    first_thread = threading.Thread(target=run_first)
    first_thread.start()
    assert holding.wait(30)
    second_thread = threading.Thread(target=run_second)
    second_thread.start()
    waited = wait_for_lock_waiters(1, give_up_when=lambda: not second_thread.is_alive())
    release.set()
    first_thread.join()
    second_thread.join()
    return outcomes["first"], outcomes["second"], waited


def _consistent(request: RecoveryRequest) -> None:
    """The request's status agrees with its live approvals (the threshold is 2)."""
    request.refresh_from_db()
    live = services.live_approvals(request)
    if request.status == Status.TIMELOCKED:
        assert live >= request.threshold
        assert request.executes_at is not None
    if request.status == Status.COLLECTING:
        assert live < request.threshold
        assert request.executes_at is None


def test_an_approval_racing_the_owners_cancel_is_refused(family: Any) -> None:
    # given a request with one approval of the two needed
    owner, guardians = family
    request, _token, _soft = start_collecting(owner)
    services.recovery_approve(request_id=request.id, user=guardians[0].user,
                              credential=sign(guardians[0], digests.approval_challenge(request)))
    credential = sign(guardians[1], digests.approval_challenge(request))
    # when the owner's cancel holds the locks and the second guardian's approval (which would start the
    # timelock) arrives meanwhile
    first, second, waited = _interleave(
        first=lambda: services.recovery_cancel(request_id=request.id, session_user=owner.user),
        second=lambda: services.recovery_approve(request_id=request.id, user=guardians[1].user,
                                                 credential=credential))
    # then the approval waited for the cancel and was refused: nothing recorded, the request stays cancelled
    assert (first, second, waited) == ("done", "recovery_not_collecting", True)
    request.refresh_from_db()
    assert (request.status, request.executes_at, request.timelock_started_at) == (Status.CANCELLED, None, None)
    assert not RecoveryApproval.objects.filter(request=request, guardian__guardian_user=guardians[1].user).exists()
    assert not RecoveryEvent.objects.filter(request=request, kind="timelock_started").exists()
    # and no sweep, however late, takes a step for it
    assert services.recovery_due_sweep(now=request.created_at + timedelta(days=30)) == 0
    assert not RecoveryAttempt.objects.filter(request=request).exists()


def test_the_owners_cancel_racing_an_approval_ends_the_started_timelock(family: Any) -> None:
    # given a request with one approval of the two needed
    owner, guardians = family
    request, _token, _soft = start_collecting(owner)
    services.recovery_approve(request_id=request.id, user=guardians[0].user,
                              credential=sign(guardians[0], digests.approval_challenge(request)))
    credential = sign(guardians[1], digests.approval_challenge(request))
    # when the second guardian's approval holds the locks (it starts the timelock) and the owner cancels meanwhile
    first, second, waited = _interleave(
        first=lambda: services.recovery_approve(request_id=request.id, user=guardians[1].user, credential=credential),
        second=lambda: services.recovery_cancel(request_id=request.id, session_user=owner.user))
    # then the cancel waited and ended the request after it: one outcome, cancelled, no clock left running
    assert (first, second, waited) == ("done", "done", True)
    request.refresh_from_db()
    assert (request.status, request.executes_at) == (Status.CANCELLED, None)
    assert list(RecoveryEvent.objects.filter(request=request, kind__in=("timelock_started", "request_cancelled"))
                .order_by("created_at", "id").values_list("kind", flat=True)) == ["timelock_started", "request_cancelled"]
    # and no sweep, however late, executes or queues anything for it
    assert services.recovery_due_sweep(now=request.created_at + timedelta(days=30)) == 0
    assert not RecoveryAttempt.objects.filter(request=request).exists()
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.CANCELLED


def test_a_guardians_withdrawal_racing_their_own_approval_withdraws_it(family: Any) -> None:
    # given a request with one approval of the two needed
    owner, guardians = family
    request, _token, _soft = start_collecting(owner)
    services.recovery_approve(request_id=request.id, user=guardians[0].user,
                              credential=sign(guardians[0], digests.approval_challenge(request)))
    credential = sign(guardians[1], digests.approval_challenge(request))
    # when the second guardian's approval holds the locks (it starts the timelock) and the same guardian
    # withdraws meanwhile (a second tab)
    first, second, waited = _interleave(
        first=lambda: services.recovery_approve(request_id=request.id, user=guardians[1].user, credential=credential),
        second=lambda: services.recovery_approval_withdraw(request_id=request.id, user=guardians[1].user))
    # then the withdrawal waited for the approval and took it back: the clock started and stopped again
    assert (first, second, waited) == ("done", "done", True)
    approval = RecoveryApproval.objects.get(request=request, guardian__guardian_user=guardians[1].user)
    assert approval.withdrawn_at is not None
    request.refresh_from_db()
    assert (request.status, request.executes_at) == (Status.COLLECTING, None)
    assert services.live_approvals(request) == 1
    assert list(RecoveryEvent.objects.filter(request=request, kind__in=("timelock_started", "timelock_stopped"))
                .order_by("created_at", "id").values_list("kind", flat=True)) == ["timelock_started", "timelock_stopped"]
    _consistent(request)


def test_an_approval_racing_another_guardians_withdrawal_leaves_the_status_matching_the_count(family: Any) -> None:
    # given a request with one approval (guardian 0) of the two needed
    owner, guardians = family
    request, _token, _soft = start_collecting(owner)
    services.recovery_approve(request_id=request.id, user=guardians[0].user,
                              credential=sign(guardians[0], digests.approval_challenge(request)))
    credential = sign(guardians[1], digests.approval_challenge(request))
    # when guardian 0 withdraws (holding the locks) while guardian 1's approval arrives: each alone sees 1 live
    # approval, and without the lock the approval would start the clock on a count of 2 that never existed
    first, second, waited = _interleave(
        first=lambda: services.recovery_approval_withdraw(request_id=request.id, user=guardians[0].user),
        second=lambda: services.recovery_approve(request_id=request.id, user=guardians[1].user, credential=credential))
    # then the approval waited and counted after the withdrawal: 1 of 2, still collecting, no clock
    assert (first, second, waited) == ("done", "done", True)
    request.refresh_from_db()
    assert services.live_approvals(request) == 1
    assert (request.status, request.executes_at) == (Status.COLLECTING, None)
    assert not RecoveryEvent.objects.filter(request=request, kind="timelock_started").exists()
    _consistent(request)
