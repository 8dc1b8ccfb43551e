"""``recovery_execute`` is permissionless on-chain: anyone may send it once the chain's clock passed. When
someone else does it before Numpay's sweep, the sweep notices that the chain executed the request (nothing
pending, the new owner key holds ``manage``, the recovery id is the request's) and completes the hand-over
here exactly once: the old passkeys and sessions revoked, the new passkey signs in, the audit record written.

The localnet chain and the real Celery worker carry the start; the sweeps are called by the test (no beat), so
the stranger's execute lands before any sweep could send one (or, in the second test, before the sweep's own
signed execute is sent)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone
from solders.keypair import Keypair

from numpay.core.solana import PreflightFailure, get_chain_client
from numpay.core.transactions import assemble, compile_message
from recovery import chain, services
from recovery.models import RecoveryAttempt, RecoveryEvent, RecoveryRequest
from recovery.services import execution
from relayer import outbox
from tests.helpers import wait_until
from tests.recovery_support import recovery_outbox, sweep_until_started, worker_without_beat  # noqa: F401
from tests.test_recovery_execution import _approved, _family, _passkey_login
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND
from wallets.smart import wallet_config_read

Status = RecoveryRequest.Status
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _short_delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 2


def _execute_as(stranger: Keypair, request: RecoveryRequest) -> int | None:
    """``recovery_execute`` of the wallet's pending request, paid and signed by ``stranger`` alone; the program's
    error code of a refusal, or ``None`` once it landed."""
    client = get_chain_client()
    recovery_id = chain.pending_recovery_id(client=client, wallet=request.wallet)
    message = compile_message(instructions=chain.execute_instructions(request=request, recovery_id=recovery_id),
                              fee_payer=stranger.pubkey(), blockhash=client.latest_blockhash().blockhash)
    tx = assemble(message=message, signatures={stranger.pubkey(): stranger.sign_message(bytes(message))})
    try:
        signature = client.send_raw_transaction(bytes(tx), skip_preflight=False)
    except PreflightFailure as failure:
        return failure.err["InstructionError"][1]["Custom"]
    client.wait_for_confirmation(signature)
    return None


@pytest.mark.usefixtures("worker_without_beat")
def test_an_execution_by_someone_else_is_followed_by_the_hand_over_once(make_user: Any) -> None:
    # given an owner signed in somewhere, 2 of 3 guardians approved, and the request started on-chain (the
    # guardian set written first) by sweeps run here
    owner, guardians = _family(make_user)
    old_session = Client()
    old_session.force_login(owner.user)
    request, new_soft = _approved(owner, guardians)

    assert sweep_until_started(request)
    request.refresh_from_db()
    client = get_chain_client()
    pending = wallet_config_read(client=client, wallet=request.wallet)
    assert pending.recovery_pending
    assert request.chain_recovery_id == pending.recovery_id
    assert request.status == Status.TIMELOCKED
    # when a stranger (a throwaway fee payer funded on localnet) sends recovery_execute as soon as the chain's
    # clock allows it (refused 6042 until then), before any sweep
    stranger = Keypair()
    client.wait_for_confirmation(client.request_airdrop(stranger.pubkey(), 1_000_000_000))
    assert wait_until(lambda: _execute_as(stranger, request) is None, timeout=60, interval=0.2)
    executed = wallet_config_read(client=client, wallet=request.wallet)
    assert not executed.recovery_pending
    assert executed.authority(bytes(request.pending_public_key)).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.TIMELOCKED  # Numpay does not know yet
    # then the next sweep due to execute notices it and hands the account over, without sending an execute
    later = request.executes_at + timedelta(seconds=1)
    assert services.recovery_due_sweep(now=later) == 1
    request.refresh_from_db()
    assert (request.status, request.chain_phase) == (Status.EXECUTED, RecoveryRequest.ChainPhase.EXECUTED)
    assert not RecoveryAttempt.objects.filter(request=request, phase=RecoveryAttempt.Phase.EXECUTE).exists()
    assert list(Authenticator.objects.filter(user=owner.user).values_list("data__name", flat=True)) == [
        "Recovered passkey"]
    assert old_session.get("/_allauth/browser/v1/auth/session").status_code == 401
    assert _passkey_login(Client(), owner.soft) == 400
    assert _passkey_login(Client(), new_soft) == 200
    # and only once: later sweeps find nothing, one audit record, one email
    assert services.recovery_due_sweep(now=later + timedelta(days=1)) == 0
    assert RecoveryEvent.objects.filter(request=request, kind="chain_executed_elsewhere").count() == 1
    assert RecoveryEvent.objects.filter(request=request, kind="request_executed").count() == 1
    assert [m.subject for m in recovery_outbox() if m.subject == "Your Numpay account was recovered"] == [
        "Your Numpay account was recovered"]


@pytest.mark.usefixtures("worker_without_beat")
def test_our_execute_refused_after_someone_elses_landed_still_hands_over_once(make_user: Any) -> None:
    # given a request started on-chain whose timelock has passed, and the sweep's own execute signed (the
    # request executing) but not sent yet
    owner, guardians = _family(make_user)
    request, new_soft = _approved(owner, guardians)

    assert sweep_until_started(request)
    request.refresh_from_db()
    assert wait_until(lambda: timezone.now() >= request.executes_at, timeout=30)
    client = get_chain_client()
    with transaction.atomic():
        locked = RecoveryRequest.objects.select_for_update().select_related("user", "wallet").get(pk=request.pk)
        locked.status = Status.EXECUTING
        locked.save(update_fields=["status", "updated_at"])
        ours = execution.sign_attempt(kind=execution.EXECUTE_OUTBOX, request=locked, blockhash=client.latest_blockhash(),
                                      number=1, reserve=True, client=client)
    # when a stranger's recovery_execute lands first, and then ours is sent
    stranger = Keypair()
    client.wait_for_confirmation(client.request_airdrop(stranger.pubkey(), 1_000_000_000))
    assert wait_until(lambda: _execute_as(stranger, request) is None, timeout=30, interval=0.2)
    outbox.enqueue_send(execution.EXECUTE_OUTBOX, request.pk)
    # then ours is refused (nothing pending) and the outbox hands the account over all the same, once
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).status != Status.EXECUTING, timeout=30)
    request.refresh_from_db()
    assert (request.status, request.chain_phase) == (Status.EXECUTED, RecoveryRequest.ChainPhase.EXECUTED)
    ours.refresh_from_db()
    assert ours.status == RecoveryAttempt.Status.FAILED
    assert list(Authenticator.objects.filter(user=owner.user).values_list("data__name", flat=True)) == [
        "Recovered passkey"]
    assert _passkey_login(Client(), new_soft) == 200
    assert services.recovery_due_sweep(now=request.created_at + timedelta(days=30)) == 0
    assert RecoveryEvent.objects.filter(request=request, kind="chain_executed_elsewhere").count() == 1
    assert RecoveryEvent.objects.filter(request=request, kind="request_executed").count() == 1


@pytest.mark.usefixtures("worker_without_beat")
def test_an_owner_cancel_after_someone_else_executed_on_chain_completes_the_hand_over_once(make_user: Any) -> None:
    # given a request started on-chain, executed by a stranger once the chain's clock allowed it (before any sweep)
    owner, guardians = _family(make_user)
    request, new_soft = _approved(owner, guardians)
    assert sweep_until_started(request)
    request.refresh_from_db()
    client = get_chain_client()
    stranger = Keypair()
    client.wait_for_confirmation(client.request_airdrop(stranger.pubkey(), 1_000_000_000))
    assert wait_until(lambda: _execute_as(stranger, request) is None, timeout=60, interval=0.2)
    # when the owner, not knowing it, cancels in Numpay (their session; the request is still timelocked here)
    services.recovery_cancel(request_id=request.id, session_user=owner.user)
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.CANCELLED
    # then the next sweep sees the chain executed it: the hand-over is completed, no cancel is sent
    assert services.recovery_due_sweep() == 1
    request.refresh_from_db()
    assert (request.status, request.chain_phase) == (Status.EXECUTED, RecoveryRequest.ChainPhase.EXECUTED)
    assert not RecoveryAttempt.objects.filter(request=request).exclude(phase=RecoveryAttempt.Phase.START).exists()
    executed = wallet_config_read(client=client, wallet=request.wallet)
    assert executed.authority(bytes(request.pending_public_key)).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
    assert list(Authenticator.objects.filter(user=owner.user).values_list("data__name", flat=True)) == [
        "Recovered passkey"]
    assert _passkey_login(Client(), owner.soft) == 400
    assert _passkey_login(Client(), new_soft) == 200
    # and the owner is told their cancel came too late; only once
    assert services.recovery_due_sweep(now=request.created_at + timedelta(days=30)) == 0
    assert RecoveryEvent.objects.filter(request=request, kind="chain_executed_elsewhere").count() == 1
    assert RecoveryEvent.objects.filter(request=request, kind="request_executed").count() == 1
    subjects = [m.subject for m in recovery_outbox()]
    assert subjects.count("Your cancel came too late: your account was recovered") == 1
    assert subjects.count("Your Numpay account was recovered") == 1


@pytest.mark.usefixtures("worker_without_beat")
def test_our_cancel_refused_after_someone_elses_execute_landed_hands_over_once(make_user: Any) -> None:
    # given a request started on-chain that the owner cancelled here, its on-chain cancel signed but not sent
    owner, guardians = _family(make_user)
    request, new_soft = _approved(owner, guardians)
    assert sweep_until_started(request)
    request.refresh_from_db()
    services.recovery_cancel(request_id=request.id, session_user=owner.user)
    client = get_chain_client()
    with transaction.atomic():
        locked = RecoveryRequest.objects.select_for_update().select_related("user", "wallet").get(pk=request.pk)
        locked.chain_phase = RecoveryRequest.ChainPhase.CANCEL
        locked.save(update_fields=["chain_phase", "updated_at"])
        ours = execution.sign_attempt(kind=execution.CANCEL_OUTBOX, request=locked, blockhash=client.latest_blockhash(),
                                      number=1, reserve=True, client=client)
    # when a stranger's recovery_execute lands first (once the chain's clock allows it), and then ours is sent
    stranger = Keypair()
    client.wait_for_confirmation(client.request_airdrop(stranger.pubkey(), 1_000_000_000))
    assert wait_until(lambda: _execute_as(stranger, request) is None, timeout=60, interval=0.2)
    outbox.enqueue_send(execution.CANCEL_OUTBOX, request.pk)
    # then ours is refused (nothing pending) and the hand-over follows the chain, once; the owner is told
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase != "cancel", timeout=30)
    request.refresh_from_db()
    assert (request.status, request.chain_phase) == (Status.EXECUTED, RecoveryRequest.ChainPhase.EXECUTED)
    ours.refresh_from_db()
    assert ours.status == RecoveryAttempt.Status.FAILED
    assert _passkey_login(Client(), new_soft) == 200
    assert services.recovery_due_sweep(now=request.created_at + timedelta(days=30)) == 0
    assert RecoveryEvent.objects.filter(request=request, kind="request_executed").count() == 1
    subjects = [m.subject for m in recovery_outbox()]
    assert subjects.count("Your cancel came too late: your account was recovered") == 1
