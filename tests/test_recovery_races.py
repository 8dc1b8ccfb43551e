"""A guardian's approval racing the owner's cancel, the same guardian's withdrawal and another guardian's
withdrawal, on PostgreSQL with the transactions interleaved deterministically (one holds the wallet and request
row locks, the other is seen waiting on them in ``pg_stat_activity``, then the first commits). Both steps that
record an approval are raced: the approval here (``recovery_approve``, which starts the timelock and so the
on-chain start) and a further guardian's on-chain approval (``recovery_chain_approve``, which records the
assertion the sweep sends as ``recovery_approve``; localnet, the real worker, sweeps run by the test).

Whatever the order, the end state is one of the serial outcomes: no approval recorded on a cancelled request,
the request's status agrees with its live approvals, no on-chain approve is sent for a cancelled or withdrawn
approval (the sweep cancels on-chain instead).

With the wallet and request locks of ``recovery.services.requests._locked_open_request`` removed, five of the
seven fail: the approval (and the on-chain approval) is recorded on the cancelled request, the request's status
is overwritten, the guardian's withdrawal misses the approval it raced, two guardians' concurrent approval and
withdrawal leave a running clock on one live approval, and the on-chain approval racing the withdrawal is refused
for another reason (the approval row's lock). The two "cancel after the approval" orders are checked for their
end state only: without those locks the cancel still waits, on the row the approval updates."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections, transaction

from numpay.core.errors import ApplicationError
from numpay.core.solana import get_chain_client
from recovery import digests, services
from recovery.models import RecoveryApproval, RecoveryAttempt, RecoveryEvent, RecoveryRequest
from tests.helpers import wait_until
from tests.races import postgresql_only, wait_for_lock_waiters
from tests.recovery_support import (  # noqa: F401 - worker_without_beat is a fixture
    add_guardian,
    person,
    sign,
    start_collecting,
    sweep_until_started,
    worker_without_beat,
)
from wallets.models import Wallet
from wallets.smart import wallet_config_read

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


# --- a further guardian's on-chain approval (what queues recovery_approve) on localnet ---------------------
def _started_needing_a_further_approval(make_user: Any) -> tuple[Any, list[Any], RecoveryRequest, dict[str, Any]]:
    """An owner (smart wallet) with 4 guardians (threshold 3), 3 of whom approved: the start landed carrying
    2 of them (sweeps run here, the worker lands them), and the third guardian's passkey signed the program's
    ``recovery_approve`` at the config's nonce now (not recorded yet).

    :returns: ``(owner, guardians, request, the third guardian's credential)``.
    """
    owner = person(make_user, "owner@example.com")
    guardians = [person(make_user, f"guardian{n}@example.com") for n in range(4)]
    for guardian in guardians:
        add_guardian(owner, guardian)
    request, _token, _soft = start_collecting(owner)
    for guardian in guardians[:3]:
        services.recovery_approve(request_id=request.id, user=guardian.user,
                                  credential=sign(guardian, digests.approval_challenge(request)))
    assert sweep_until_started(request)
    request.refresh_from_db()
    assert (request.status, request.threshold) == (Status.TIMELOCKED, 3)
    assert len(wallet_config_read(client=get_chain_client(), wallet=request.wallet).recovery_approving_slots) == 2
    options = services.recovery_approve_options(request_id=request.id, user=guardians[2].user)
    return owner, guardians, request, guardians[2].soft.get(options["publicKey"])


def _sweep_until(request: RecoveryRequest, phase: str) -> bool:
    def reached() -> bool:
        services.recovery_due_sweep()
        return RecoveryRequest.objects.get(pk=request.pk).chain_phase == phase

    return bool(wait_until(reached, timeout=60, interval=0.2))


@pytest.mark.usefixtures("worker_without_beat")
def test_an_on_chain_approval_racing_the_owners_cancel_is_refused_and_never_sent(make_user: Any) -> None:
    owner, guardians, request, credential = _started_needing_a_further_approval(make_user)
    # when the owner's cancel holds the locks and the third guardian's on-chain approval arrives meanwhile
    first, second, waited = _interleave(
        first=lambda: services.recovery_cancel(request_id=request.id, session_user=owner.user),
        second=lambda: services.recovery_chain_approve(request_id=request.id, user=guardians[2].user,
                                                       credential=credential))
    # then it waited for the cancel and was refused: nothing recorded for the sweep to send
    assert (first, second, waited) == ("done", "recovery_not_collecting", True)
    assert not RecoveryApproval.objects.filter(request=request, chain_approve_approval__isnull=False).exists()
    # and the sweep cancels the request on-chain, never approves it there
    assert _sweep_until(request, RecoveryRequest.ChainPhase.CANCELLED)
    assert set(RecoveryAttempt.objects.filter(request=request).exclude(phase="sync").values_list("phase", "status")
               ) == {("start", "landed"), ("cancel", "landed")}
    assert not wallet_config_read(client=get_chain_client(), wallet=request.wallet).recovery_pending
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.CANCELLED


@pytest.mark.usefixtures("worker_without_beat")
def test_the_owners_cancel_after_an_on_chain_approval_was_recorded_sends_the_cancel_not_the_approval(
        make_user: Any) -> None:
    owner, guardians, request, credential = _started_needing_a_further_approval(make_user)
    # when the third guardian's on-chain approval holds the locks (it records the assertion for the sweep) and
    # the owner cancels meanwhile
    first, second, waited = _interleave(
        first=lambda: services.recovery_chain_approve(request_id=request.id, user=guardians[2].user,
                                                      credential=credential),
        second=lambda: services.recovery_cancel(request_id=request.id, session_user=owner.user))
    # then the cancel waited and ended the request after it
    assert (first, second, waited) == ("done", "done", True)
    assert RecoveryApproval.objects.filter(request=request, chain_approve_approval__isnull=False).count() == 1
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.CANCELLED
    # and the sweep re-decides under its locks: the recorded approval is never sent, the cancel is
    assert _sweep_until(request, RecoveryRequest.ChainPhase.CANCELLED)
    assert not RecoveryAttempt.objects.filter(request=request, phase=RecoveryAttempt.Phase.APPROVE).exists()
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert not config.recovery_pending


@pytest.mark.usefixtures("worker_without_beat")
def test_an_on_chain_approval_racing_the_same_guardians_withdrawal_is_refused_and_never_sent(
        make_user: Any) -> None:
    _owner, guardians, request, credential = _started_needing_a_further_approval(make_user)
    # when the third guardian withdraws (their session: the chain does not count them yet), holding the locks,
    # while their on-chain approval (another tab) arrives
    first, second, waited = _interleave(
        first=lambda: services.recovery_approval_withdraw(request_id=request.id, user=guardians[2].user),
        second=lambda: services.recovery_chain_approve(request_id=request.id, user=guardians[2].user,
                                                       credential=credential))
    # then the approval waited for the withdrawal and was refused: 2 of 3, collecting, nothing recorded to send
    assert (first, second, waited) == ("done", "recovery_not_collecting", True)
    approval = RecoveryApproval.objects.get(request=request, guardian__guardian_user=guardians[2].user)
    assert approval.withdrawn_at is not None
    assert approval.chain_approve_approval is None
    request.refresh_from_db()
    assert (request.status, services.live_approvals(request)) == (Status.COLLECTING, 2)
    # and the sweep takes the start back on-chain (below the threshold), never sends the approval
    assert _sweep_until(request, RecoveryRequest.ChainPhase.NONE)
    assert not RecoveryAttempt.objects.filter(request=request, phase=RecoveryAttempt.Phase.APPROVE).exists()
    assert RecoveryAttempt.objects.filter(request=request, phase=RecoveryAttempt.Phase.CANCEL,
                                          status="landed").count() == 1
    assert not wallet_config_read(client=get_chain_client(), wallet=request.wallet).recovery_pending
