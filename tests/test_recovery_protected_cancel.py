"""A recovery Numpay stops is stopped on-chain too, in protected mode (issue 10: operators freeze, requests
expire): the protection switch gives the custody key ``spend | recovery_cancel``, so when a request already
started on-chain by the guardians is frozen by an operator or expires, the beat sweep sends the custody key's
``recovery_cancel`` through the outbox, and a later ``recovery_execute`` (permissionless) is refused there.
Real parts: the Celery worker and beat, localnet, the wallet program, the relayer's outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone
from solders.pubkey import Pubkey

from numpay.core.solana import get_chain_client
from payments.models import WalletProtection
from payments.protection import wallet_protect
from recovery import chain, digests, services
from recovery.models import RecoveryAttempt, RecoveryEvent, RecoveryRequest, RecoverySetup
from recovery.passkeys import authenticator_key
from tests.helpers import wait_until
from tests.recovery_support import add_guardian, person, sign, start_collecting
from tests.test_recovery_execution import _chain_clock, _family, _send_signed, _wait_synced
from wallets.program import ProgramErrorCode
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_RECOVERY_CANCEL, PERMISSION_SPEND
from wallets.smart import wallet_config_read

Status = RecoveryRequest.Status
#: The on-chain timelock (seconds): short, so the chain's clock passes it within the test; Numpay's own
#: execution is an hour away (each request's timelock), so only the chain's rules are exercised.
CHAIN_TIMELOCK = 2


@pytest.fixture(autouse=True)
def _short_delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 2


def _protected_by_numpay(owner: Any) -> bytes:
    """Write the guardians (custody key, custodial mode; threshold as set, ``CHAIN_TIMELOCK``), then switch the
    wallet to protected mode with the owner's passkey through Numpay's own switch
    (:func:`payments.protection.wallet_protect`). :returns: the owner passkey's key."""
    setup = RecoverySetup.objects.get(user=owner.user)
    with transaction.atomic():
        RecoverySetup.objects.filter(pk=setup.pk).update(timelock_seconds=CHAIN_TIMELOCK)
        services.sync.sync_mark_locked(setup)
    _wait_synced(owner)
    authenticator = Authenticator.objects.get(user=owner.user)
    protection = wallet_protect(authenticator_id=authenticator.pk)
    assert protection is not None
    assert wait_until(lambda: WalletProtection.objects.get(pk=protection.pk).status == "confirmed", timeout=60), (
        WalletProtection.objects.get(pk=protection.pk).error_message)
    wallet = owner.user.wallet
    config = wallet_config_read(client=get_chain_client(), wallet=wallet)
    owner_key = authenticator_key(authenticator)
    assert config.authority(owner_key).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
    custody = Pubkey.from_string(wallet.signing_address)
    assert config.authority(custody).permissions == PERMISSION_SPEND | PERMISSION_RECOVERY_CANCEL
    assert config.recovery_timelock == CHAIN_TIMELOCK
    return owner_key


def _started(owner: Any, guardians: list[Any], *, approving: int) -> RecoveryRequest:
    """A request ``approving`` guardians approved here (Numpay's timelock: an hour), started on-chain."""
    RecoverySetup.objects.filter(user=owner.user).update(timelock_seconds=3600)
    request, _token, _new_soft = start_collecting(owner)
    for guardian in guardians[:approving]:
        services.recovery_approve(request_id=request.id, user=guardian.user,
                                  credential=sign(guardian, digests.approval_challenge(request)))
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "started", timeout=60)
    request.refresh_from_db()
    assert request.status == Status.TIMELOCKED
    return request


def _stopped_on_chain_by_the_custody_key(request: RecoveryRequest, *, owner: Any, owner_key: bytes,
                                          started_executes_at: int, ended: str) -> None:
    """The sweep's custody-signed recovery_cancel landed (once), the timeline says so, and a later
    recovery_execute is refused on-chain: the owner keeps the wallet."""
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "cancelled", timeout=60), (
        RecoveryRequest.objects.get(pk=request.pk).chain_phase)
    request.refresh_from_db()
    assert request.status == ended
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert (config.recovery_pending, config.recovery_approvals, config.recovery_executes_at) == (False, 0, 0)
    # one cancel landed (an attempt whose send was lost is re-sent, or renewed once provably expired), nothing else
    assert set(RecoveryAttempt.objects.filter(request=request).values_list("phase", flat=True)) == {"start", "cancel"}
    cancels = list(RecoveryAttempt.objects.filter(request=request, phase="cancel").order_by("number")
                   .values_list("status", flat=True))
    assert cancels[-1] == "landed"
    assert set(cancels[:-1]) <= {"expired"}
    submitted = RecoveryEvent.objects.get(request=request, kind="chain_cancel_submitted")
    assert (submitted.actor, submitted.note) == ("system", f"signed by the custody key (request {ended})")
    assert RecoveryEvent.objects.filter(request=request, kind="chain_cancelled").count() == 1
    assert not RecoveryEvent.objects.filter(request=request, kind="chain_cancel_needs_owner").exists()
    # when the chain's clock is past the start's executes_at and anyone sends recovery_execute
    if started_executes_at:
        assert wait_until(lambda: _chain_clock() > started_executes_at, timeout=60)
    refusal = _send_signed(chain.execute_instructions(request=request, recovery_id=config.recovery_id))
    # then the program refuses it: nothing is pending there; the owner's passkey still owns the wallet
    assert refusal == ProgramErrorCode.NO_RECOVERY_PENDING
    after = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert after == config  # the refused transaction changed nothing
    assert after.authority(owner_key).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
    assert after.authority(bytes(request.pending_public_key)) is None
    assert list(Authenticator.objects.filter(user=owner.user).values_list("data__name", flat=True)) == ["Laptop"]
    assert RecoveryRequest.objects.get(pk=request.pk).status == ended


def test_an_operators_freeze_is_carried_out_on_chain_by_the_custody_key(celery_worker: Any, make_user: Any) -> None:
    # given a wallet Numpay protected (the owner's passkey owns it; the custody key spends and may cancel) whose
    # guardians started a recovery on-chain: its clock runs there (2 s), Numpay's own execution is an hour away
    owner, guardians = _family(make_user)
    owner_key = _protected_by_numpay(owner)
    request = _started(owner, guardians, approving=2)
    started = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert started.recovery_pending
    assert started.recovery_executes_at > 0
    # when an operator freezes it in the admin (the owner did nothing)
    from accounts.models import User

    operator = User.objects.create_superuser(email="ops@example.com", password="pw-Numpay-1")
    admin = Client()
    admin.force_login(operator)
    admin.post("/admin/recovery/recoveryrequest/", {"action": "freeze", "_selected_action": [str(request.id)]})
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.FROZEN
    # then the sweep's custody-signed cancel clears it on-chain, and nobody can execute it there
    _stopped_on_chain_by_the_custody_key(request, owner=owner, owner_key=owner_key,
                                         started_executes_at=started.recovery_executes_at, ended=Status.FROZEN)
    assert not RecoveryAttempt.objects.filter(request=request, phase="execute").exists()


def test_an_expired_request_started_on_chain_is_cancelled_there_by_the_custody_key(celery_worker: Any,
                                                                                    make_user: Any) -> None:
    # given a protected wallet with 4 guardians (threshold 3): 3 approve here, the start carries the 2 that fit
    # in one transaction, so the chain holds the request but its clock waits for the third guardian's on-chain
    # approval, which never comes
    owner = person(make_user, "owner@example.com")
    guardians = [person(make_user, f"guardian{n}@example.com") for n in range(4)]
    for guardian in guardians:
        add_guardian(owner, guardian)
    RecoverySetup.objects.filter(user=owner.user).update(threshold=3)
    owner_key = _protected_by_numpay(owner)
    request = _started(owner, guardians, approving=3)
    started = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert (started.recovery_pending, len(started.recovery_approving_slots), started.recovery_executes_at) == (
        True, 2, 0)
    assert request.executes_at is None
    # when its expiry passes (moved into the past: the request's clock, not the test's)
    RecoveryRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # then beat expires it and the sweep's custody-signed cancel clears it on-chain
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).status == Status.EXPIRED, timeout=60)
    _stopped_on_chain_by_the_custody_key(request, owner=owner, owner_key=owner_key, started_executes_at=0,
                                         ended=Status.EXPIRED)
    # and the third guardian's on-chain approval is no longer asked for: nothing is pending there
    assert services.recovery_approve_options(request_id=request.id, user=guardians[2].user) is None


def test_a_freezes_cancel_whose_send_was_lost_is_still_sent_once(celery_worker: Any, make_user: Any,
                                                                   monkeypatch: Any) -> None:
    from celery import current_app

    from relayer import outbox

    # given a protected wallet whose recovery started on-chain
    owner, guardians = _family(make_user)
    owner_key = _protected_by_numpay(owner)
    request = _started(owner, guardians, approving=2)
    started = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    # and every "send after commit" message lost from now on (a broker restarted without its queue)
    lost: list[Any] = []
    monkeypatch.setattr(outbox, "enqueue_send", lambda kind, owner_id: lost.append(owner_id))
    with current_app.connection_for_write() as connection:
        connection.default_channel.queue_purge("default")
    # when an operator freezes it
    from accounts.models import User

    services.recovery_freeze(request_id=request.id, operator=User.objects.create_superuser(
        email="ops@example.com", password="pw-Numpay-1"), reason="suspicious")
    # then the stored cancel is found and sent by the outbox's poller: it lands once, the chain is cleared
    _stopped_on_chain_by_the_custody_key(request, owner=owner, owner_key=owner_key,
                                         started_executes_at=started.recovery_executes_at, ended=Status.FROZEN)
    assert request.pk in lost


def test_the_owners_session_is_enough_when_the_custody_key_can_cancel_on_chain(celery_worker: Any,
                                                                                 make_user: Any) -> None:
    # given a wallet Numpay protected whose recovery started on-chain
    owner, guardians = _family(make_user)
    owner_key = _protected_by_numpay(owner)
    request = _started(owner, guardians, approving=2)
    started = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    # then no on-chain passkey challenge is needed to cancel (the custody key can cancel there)
    assert chain.owner_cancel_terms(client=get_chain_client(), request=request, expires_at=2**40) is None
    # when the owner cancels with their session
    services.recovery_cancel(request_id=request.id, session_user=owner.user)
    # then the sweep's custody-signed cancel clears it on-chain
    _stopped_on_chain_by_the_custody_key(request, owner=owner, owner_key=owner_key,
                                         started_executes_at=started.recovery_executes_at, ended=Status.CANCELLED)
