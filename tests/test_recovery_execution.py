"""Recovery execution with the real parts: a Celery worker and beat on the configured broker, the localnet
chain, the relayer's outbox. The beat sweep finds due recoveries, the on-chain step lands through the
outbox, the new passkey signs in and the old one does not; a lost send (broker restarted) is found again;
two sweeps never execute one request twice (PostgreSQL row locks, interleaved deterministically); a guardian
removal racing an approval."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone
from solders.pubkey import Pubkey

from numpay.core.errors import ApplicationError
from numpay.core.solana import get_chain_client
from recovery import digests, services
from recovery.models import (
    Guardian,
    RecoveryApproval,
    RecoveryAttempt,
    RecoveryEvent,
    RecoveryRequest,
    RecoverySetup,
)
from recovery.services.common import locked_wallet
from relayer import outbox
from tests.helpers import wait_until
from tests.races import postgresql_only, wait_for_lock_waiters
from tests.recovery_support import add_guardian, owner_sign, person, recovery_outbox, sign, start_collecting
from wallets.models import Wallet
from wallets.program import ProgramErrorCode
from wallets.program.instructions import PERMISSION_GUARDIAN, PERMISSION_MANAGE, PERMISSION_SPEND
from wallets.smart import wallet_config_read

Status = RecoveryRequest.Status
API = "/_allauth/browser/v1"
JSON = "application/json"


@pytest.fixture(autouse=True)
def _short_delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 2


def _family(make_user: Any) -> tuple[Any, list[Any]]:
    owner = person(make_user, "owner@example.com")
    guardians = [person(make_user, f"guardian{n}@example.com") for n in range(3)]
    for guardian in guardians:
        add_guardian(owner, guardian)
    return owner, guardians


def _approved(owner: Any, guardians: list[Any], *, timelock: int | None = None) -> tuple[RecoveryRequest, Any]:
    if timelock is not None:
        RecoverySetup.objects.filter(user=owner.user).update(timelock_seconds=timelock)
    request, _token, new_soft = start_collecting(owner)
    for guardian in guardians[:2]:
        services.recovery_approve(request_id=request.id, user=guardian.user,
                                  credential=sign(guardian, digests.approval_challenge(request)))
    request.refresh_from_db()
    assert request.status == Status.TIMELOCKED
    return request, new_soft


def _custody_manage_refusal(wallet: Any) -> int | None:
    """Send a manage action signed by the wallet's custody key; the program's error code, or ``None``."""
    from numpay.core.solana import PreflightFailure
    from numpay.core.transactions import assemble, compile_message
    from relayer.signer import get_fee_payer
    from wallets.program import Authority, add_authority
    from wallets.services import wallet_sign
    from wallets.smart import wallet_program_id

    custody, payer = Pubkey.from_string(wallet.signing_address), get_fee_payer()
    intruder = Authority(Pubkey.new_unique(), PERMISSION_MANAGE | PERMISSION_SPEND)
    client = get_chain_client()
    message = compile_message(instructions=[add_authority(wallet_program_id(), custody, custody, intruder)],
                              fee_payer=payer.pubkey(), blockhash=client.latest_blockhash().blockhash)
    tx = assemble(message=message, signatures={payer.pubkey(): payer.sign_message(bytes(message)),
                                               custody: wallet_sign(wallet=wallet, message=bytes(message))})
    try:
        client.send_raw_transaction(bytes(tx), skip_preflight=False)
    except PreflightFailure as failure:
        return failure.err["InstructionError"][1]["Custom"]
    return None


def _passkey_login(client: Any, soft: Any) -> int:
    options = client.get(f"{API}/auth/webauthn/login").json()["data"]["request_options"]["publicKey"]
    return client.post(f"{API}/auth/webauthn/login", {"credential": soft.get(options)}, content_type=JSON).status_code


def test_guardians_are_written_on_chain_when_changes_take_effect(celery_worker: Any, make_user: Any) -> None:
    import hashlib

    # given an owner (custodial mode) whose two guardians just became active
    owner = person(make_user, "owner@example.com")
    guardians = [person(make_user, f"guardian{n}@example.com") for n in range(2)]
    for guardian in guardians:
        add_guardian(owner, guardian)
    # then beat writes them in the wallet's config: guardian passkeys, a majority threshold, the timelock, RP ID
    setup = _wait_synced(owner)
    config = wallet_config_read(client=get_chain_client(), wallet=owner.user.wallet)
    keys = {bytes(Guardian.objects.get(guardian_user=g.user).authority_key) for g in guardians}
    assert {bytes(e.key) for e in config.authorities if e.permissions == PERMISSION_GUARDIAN} == keys
    assert (config.guardian_threshold, config.recovery_timelock) == (2, setup.timelock_seconds)
    assert config.rp_id_hash == hashlib.sha256(b"localhost").digest()
    # when the owner removes one (with their passkey) and the change takes effect
    leaving = Guardian.objects.get(guardian_user=guardians[1].user)
    services.guardian_remove(owner=owner.user, guardian_id=leaving.pk,
                             credential=owner_sign(owner, action="remove", subject=str(leaving.pk)))
    services.guardian_changes_apply()
    # then the chain follows: one guardian, threshold 1
    _wait_synced(owner)
    config = wallet_config_read(client=get_chain_client(), wallet=owner.user.wallet)
    assert {bytes(e.key) for e in config.authorities if e.permissions == PERMISSION_GUARDIAN} == {
        bytes(Guardian.objects.get(guardian_user=guardians[0].user).authority_key)}
    assert config.guardian_threshold == 1


def test_a_full_recovery_by_worker_and_beat(celery_worker: Any, make_user: Any, client: Any) -> None:
    # given an owner with 3 guardians, signed in somewhere, who lost their passkey; 2 guardians approve
    owner, guardians = _family(make_user)
    old_session = type(client)()
    old_session.force_login(owner.user)
    request, new_soft = _approved(owner, guardians)
    # when the 2 s timelock passes: beat's sweep submits the on-chain step through the outbox and it lands
    executed = wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).status == Status.EXECUTED, timeout=90)
    # then the request started and executed on-chain (the guardians written there before): one landed attempt each
    assert executed, RecoveryRequest.objects.get(pk=request.pk).status
    attempts = set(RecoveryAttempt.objects.filter(request=request).values_list("phase", "status"))
    assert {("execute", "landed"), ("start", "landed")} <= attempts <= {("execute", "landed"), ("start", "landed"),
                                                                         ("sync", "landed")}
    request.refresh_from_db()
    assert request.chain_phase == "executed"
    # the new passkey is the on-chain owner; the guardians stay; the custody key only spends (within its caps)
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert config.authority(bytes(request.pending_public_key)).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
    custody = Pubkey.from_string(request.wallet.signing_address)
    assert config.authority(custody).permissions == PERMISSION_SPEND
    assert {bytes(e.key) for e in config.authorities if e.permissions == PERMISSION_GUARDIAN} == {
        bytes(Guardian.objects.get(guardian_user=g.user).authority_key) for g in guardians}
    assert not config.recovery_pending
    # the old owner authority is refused on-chain: the custody key can no longer manage the wallet
    assert _custody_manage_refusal(request.wallet) == ProgramErrorCode.PERMISSION_DENIED
    # the new passkey is the account's only passkey; the old sessions are gone; an audit record exists
    names = list(Authenticator.objects.filter(user=owner.user).values_list("data__name", flat=True))
    assert names == ["Recovered passkey"]
    assert old_session.get(f"{API}/auth/session").status_code == 401
    assert RecoveryEvent.objects.filter(request=request, kind="request_executed").count() == 1
    # the new passkey signs in; the old one is refused
    assert _passkey_login(type(client)(), owner.soft) == 400
    assert _passkey_login(client, new_soft) == 200
    assert any(m.subject == "Your Numpay account was recovered" for m in recovery_outbox())


def _send_signed(instructions: list[Any], *, wallet: Any | None = None) -> int | None:
    """Send ``instructions`` paid by the fee payer (and signed by ``wallet``'s custody key when given); the
    program's error code of a refusal, or ``None`` when it landed."""
    from numpay.core.solana import PreflightFailure
    from numpay.core.transactions import assemble, compile_message
    from relayer.signer import get_fee_payer
    from wallets.services import wallet_sign

    payer, client = get_fee_payer(), get_chain_client()
    message = compile_message(instructions=instructions, fee_payer=payer.pubkey(),
                              blockhash=client.latest_blockhash().blockhash)
    signatures = {payer.pubkey(): payer.sign_message(bytes(message))}
    if wallet is not None:
        signatures[Pubkey.from_string(wallet.signing_address)] = wallet_sign(wallet=wallet, message=bytes(message))
    try:
        signature = client.send_raw_transaction(bytes(assemble(message=message, signatures=signatures)),
                                                skip_preflight=False)
    except PreflightFailure as failure:
        return failure.err["InstructionError"][1]["Custom"]
    def landed() -> bool:
        status = client.signature_statuses([signature])[0]
        return status is not None and status.err is None and client.is_at_commitment(status)

    assert wait_until(landed, timeout=30)
    return None


def _wait_synced(owner: Any) -> RecoverySetup:
    """Wait until beat's sweep wrote the owner's latest guardian set on-chain."""
    def synced() -> bool:
        setup = RecoverySetup.objects.get(user=owner.user)
        return setup.chain_sync == "" and setup.chain_synced_version == setup.chain_sync_version
    assert wait_until(synced, timeout=60), RecoverySetup.objects.get(user=owner.user).chain_sync_error
    return RecoverySetup.objects.get(user=owner.user)


def _protect(owner: Any, guardians: list[Any], *, timelock: int) -> bytes:
    """Have the guardians written (threshold 2, ``timelock``) by the custody key, then make the owner's passkey the
    on-chain owner and take ``manage`` from the custody key (protected mode). :returns: the owner's key."""
    from recovery.passkeys import authenticator_key
    from wallets.program import SOL_MINT, Authority, Limit, add_authority, set_limits, set_permissions
    from wallets.smart import wallet_program_id

    wallet = owner.user.wallet
    program, custody = wallet_program_id(), Pubkey.from_string(wallet.signing_address)
    old_key = authenticator_key(Authenticator.objects.get(user=owner.user))
    setup = RecoverySetup.objects.get(user=owner.user)
    with transaction.atomic():
        RecoverySetup.objects.filter(pk=setup.pk).update(timelock_seconds=timelock)
        services.sync.sync_mark_locked(setup)
    _wait_synced(owner)
    assert _send_signed([
        add_authority(program, custody, custody, Authority.passkey(old_key, PERMISSION_MANAGE | PERMISSION_SPEND)),
        set_limits(program, custody, custody, old_key, Limit(SOL_MINT, 10**9, 10**9)),
        set_permissions(program, custody, custody, custody, PERMISSION_SPEND)], wallet=wallet) is None
    assert wallet_config_read(client=get_chain_client(), wallet=wallet).authority(old_key).permissions == (
        PERMISSION_MANAGE | PERMISSION_SPEND)
    return old_key


def test_a_protected_wallet_is_recovered_and_the_old_passkey_is_refused_on_chain(celery_worker: Any,
                                                                                  make_user: Any) -> None:
    from tests.webauthn_support import b64u
    from wallets.program import (
        Authority,
        PasskeyAssertion,
        add_authority,
        approval_challenge,
        approve_with_passkeys,
    )
    from wallets.smart import wallet_program_id

    # given an owner whose passkey is the on-chain owner (protected mode: the custody key only spends), with
    # three guardians written on-chain while the custody key could still manage
    owner, guardians = _family(make_user)
    wallet = owner.user.wallet
    program, custody = wallet_program_id(), Pubkey.from_string(wallet.signing_address)
    old_key = _protect(owner, guardians, timelock=2)
    # when two guardians approve and the timelock passes (the sweep starts and executes it on-chain)
    request, new_soft = _approved(owner, guardians)
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).status == Status.EXECUTED, timeout=120), (
        RecoveryRequest.objects.get(pk=request.pk).end_reason)
    assert not RecoveryAttempt.objects.filter(request=request, phase="sync").exists()  # nothing to write: protected
    # then the new passkey is the on-chain owner and the old passkey is gone
    config = wallet_config_read(client=get_chain_client(), wallet=wallet)
    assert config.authority(bytes(request.pending_public_key)).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
    assert config.authority(old_key) is None
    # and an action approved by the old passkey is refused on-chain (unknown authority)
    action = add_authority(program, custody, custody, Authority.passkey(old_key, PERMISSION_MANAGE))
    expires_at = int(timezone.now().timestamp()) + 300
    challenge = approval_challenge(program, Pubkey.from_string(wallet.config_address), config.nonce, expires_at, action)
    answer = owner.soft.get({"challenge": b64u(challenge), "rpId": "localhost"})
    from tests.webauthn_support import unb64u

    assertion = PasskeyAssertion(old_key, unb64u(answer["response"]["authenticatorData"]),
                                 unb64u(answer["response"]["clientDataJSON"]), unb64u(answer["response"]["signature"]))
    refusal = _send_signed(approve_with_passkeys(action, [assertion], expires_at=expires_at))
    assert refusal == ProgramErrorCode.UNKNOWN_AUTHORITY
    # while the new passkey signs in
    assert _passkey_login(Client(), new_soft) == 200


def test_a_protected_owner_cancels_on_chain_with_their_passkey(celery_worker: Any, make_user: Any) -> None:
    # given a protected wallet whose guardians started a recovery on-chain (an hour's timelock)
    owner, guardians = _family(make_user)
    _protect(owner, guardians, timelock=3600)
    request, _soft = _approved(owner, guardians, timelock=3600)
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "started", timeout=60)
    # when the owner tries with their session alone: refused (the custody key cannot cancel on-chain)
    with pytest.raises(ApplicationError) as refused:
        services.recovery_cancel(request_id=request.id, session_user=owner.user)
    assert refused.value.code == "owner_passkey_required"
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.TIMELOCKED
    # then with their passkey, signing the program's challenge of the cancel
    options = services.recovery_cancel_options(request_id=request.id)
    services.recovery_cancel(request_id=request.id, credential=owner.soft.get(options["publicKey"]))
    # the sweep cancels it on-chain with that approval: nobody can execute it there any more
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "cancelled", timeout=60), (
        RecoveryRequest.objects.get(pk=request.pk).chain_phase)
    assert not wallet_config_read(client=get_chain_client(), wallet=request.wallet).recovery_pending
    assert not RecoveryAttempt.objects.filter(request=request, phase="execute").exists()


def test_a_protected_withdrawal_after_the_start_asks_the_owners_passkey_to_stop_it_on_chain(
        celery_worker: Any, make_user: Any) -> None:
    # given a protected wallet whose recovery started on-chain
    owner, guardians = _family(make_user)
    _protect(owner, guardians, timelock=3600)
    request, _soft = _approved(owner, guardians, timelock=3600)
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "started", timeout=60)
    # when a guardian withdraws below the threshold (with their passkey: it lands on-chain, the clock stops);
    # the custody key cannot cancel on-chain, so nothing doomed is sent; the owner is asked to clear it with
    # their passkey
    _withdraw_with_passkey(request, guardians[1])
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "stuck", timeout=60)
    assert not RecoveryAttempt.objects.filter(request=request, phase="cancel").exists()
    assert any(m.subject == "Stop the recovery of your wallet with your passkey" for m in recovery_outbox())
    # then the owner's passkey stops it on-chain
    options = services.recovery_cancel_options(request_id=request.id)
    services.recovery_cancel(request_id=request.id, credential=owner.soft.get(options["publicKey"]))
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "cancelled", timeout=60)
    assert not wallet_config_read(client=get_chain_client(), wallet=request.wallet).recovery_pending
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.CANCELLED


def test_a_recovery_whose_send_was_lost_is_found_again(celery_worker: Any, make_user: Any, monkeypatch: Any) -> None:
    # given every "send after commit" message lost (a broker restarted without its queue)
    owner, guardians = _family(make_user)
    lost: list[Any] = []
    monkeypatch.setattr(outbox, "enqueue_send", lambda kind, owner_id: lost.append(owner_id))
    from celery import current_app

    with current_app.connection_for_write() as connection:
        connection.default_channel.queue_purge("default")
    request, _soft = _approved(owner, guardians)
    # when the sweeps store the guardian sync, the start and the execute, but no send message ever arrives
    # then the outbox's poller (restarted by its beat sweep) sends the stored attempts and the recovery completes
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).status == Status.EXECUTED, timeout=120)
    assert set(lost) >= {request.pk}  # (the guardian sync's, the start's and the execute's sends)
    # (resent while its blockhash lived, or replaced once provably expired: one landed per step either way)
    for phase in ("start", "execute"):
        statuses = list(RecoveryAttempt.objects.filter(request=request, phase=phase).order_by("number")
                        .values_list("status", flat=True))
        assert statuses[-1] == "landed"
        assert set(statuses[:-1]) <= {"expired"}


def test_a_cancelled_recovery_is_cancelled_on_chain_and_never_executes(celery_worker: Any, make_user: Any) -> None:
    # given a recovery the guardians approved, started on-chain (the chain's clock runs)
    owner, guardians = _family(make_user)
    request, _soft = _approved(owner, guardians, timelock=3600)
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "started", timeout=60)
    assert wallet_config_read(client=get_chain_client(), wallet=request.wallet).recovery_pending
    # when the owner cancels (their session)
    services.recovery_cancel(request_id=request.id, session_user=owner.user)
    # then the sweep cancels it on-chain too (recovery_execute is permissionless there), and nothing executes
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "cancelled", timeout=60)
    assert not wallet_config_read(client=get_chain_client(), wallet=request.wallet).recovery_pending
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.CANCELLED
    assert not RecoveryAttempt.objects.filter(request=request, phase="execute").exists()
    assert list(Authenticator.objects.filter(user=owner.user).values_list("data__name", flat=True)) == ["Laptop"]


def test_a_withdrawal_below_the_threshold_after_the_start_stops_the_chains_clock(celery_worker: Any,
                                                                                  make_user: Any) -> None:
    owner, guardians = _family(make_user)
    request, _soft = _approved(owner, guardians, timelock=3600)
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "started", timeout=60)
    _withdraw_with_passkey(request, guardians[1])
    # the on-chain request is cancelled; the guardians approve again, bound to the next nonce
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "", timeout=60)
    request.refresh_from_db()
    assert (request.status, request.executes_at) == (Status.COLLECTING, None)
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert not config.recovery_pending
    assert request.chain_nonce == config.nonce
    assert services.live_approvals(request) == 0


def _withdraw_with_passkey(request: RecoveryRequest, guardian: Any) -> None:
    """``guardian`` withdraws their approval with their passkey, over the program's ``recovery_withdraw``
    challenge (the request is pending on-chain and counts their approval)."""
    options = services.recovery_withdraw_options(request_id=request.id, user=guardian.user)
    assert options is not None
    services.recovery_approval_withdraw(request_id=request.id, user=guardian.user,
                                        credential=guardian.soft.get(options["publicKey"]))


def _chain_clock() -> int:
    """The chain's Clock sysvar ``unix_timestamp`` (what the program compares ``executes_at`` with)."""
    import struct

    data = get_chain_client().get_account_data(Pubkey.from_string("SysvarC1ock11111111111111111111111111111111"))
    return struct.unpack_from("<q", data, 32)[0]


def test_a_guardians_passkey_withdrawal_lands_on_chain_and_nothing_executes(celery_worker: Any,
                                                                              make_user: Any) -> None:
    from recovery import chain

    # given a protected wallet (a 2 s timelock on-chain; Numpay's own execution is an hour away) whose two
    # guardians of three started a recovery on-chain
    owner, guardians = _family(make_user)
    owner_key = _protect(owner, guardians, timelock=2)
    request, _soft = _approved(owner, guardians, timelock=3600)
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "started", timeout=60)
    started = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert started.recovery_pending
    assert started.recovery_executes_at > 0
    assert len(started.recovery_approving_slots) == 2
    leaving_key = bytes(Guardian.objects.get(guardian_user=guardians[1].user).authority_key)
    # when that guardian withdraws with their session alone: refused, nothing stored
    with pytest.raises(ApplicationError) as refused:
        services.recovery_approval_withdraw(request_id=request.id, user=guardians[1].user)
    assert refused.value.code == "guardian_passkey_required"
    assert services.live_approvals(request) == 2
    assert not RecoveryApproval.objects.filter(request=request, chain_withdraw_approval__isnull=False).exists()
    # and a guardian who approves nothing on-chain needs no passkey (nothing to take back there)
    assert services.recovery_withdraw_options(request_id=request.id, user=guardians[2].user) is None
    # then with their passkey over the program's recovery_withdraw challenge
    _withdraw_with_passkey(request, guardians[1])
    # the sweep's recovery_withdraw lands: the chain cleared their bit and stopped its clock
    assert wait_until(lambda: RecoveryAttempt.objects.filter(request=request, phase="withdraw", status="landed")
                      .exists(), timeout=60), RecoveryRequest.objects.get(pk=request.pk).chain_phase
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert config.recovery_pending
    assert config.recovery_executes_at == 0
    assert config.authority(leaving_key).slot not in config.recovery_approving_slots
    assert len(config.recovery_approving_slots) == 1
    assert config.nonce == started.nonce + 1
    # and Numpay follows what landed: the approval is withdrawn, the clock stopped
    request.refresh_from_db()
    assert services.live_approvals(request) == 1
    assert (request.status, request.executes_at) == (Status.COLLECTING, None)
    assert RecoveryEvent.objects.filter(request=request, kind="approval_withdrawn", actor="guardian").count() == 1
    # when the chain's clock passes the start's executes_at and anyone sends recovery_execute
    assert wait_until(lambda: _chain_clock() > started.recovery_executes_at, timeout=60)
    refusal = _send_signed(chain.execute_instructions(request=request, recovery_id=config.recovery_id))
    # then the program refuses it and nothing executed: the owner's passkey still owns the wallet
    assert refusal == ProgramErrorCode.RECOVERY_NOT_READY
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert config.authority(owner_key).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
    assert config.authority(bytes(request.pending_public_key)) is None
    assert not RecoveryAttempt.objects.filter(request=request, phase="execute").exists()
    assert RecoveryRequest.objects.get(pk=request.pk).status != Status.EXECUTED
    assert list(Authenticator.objects.filter(user=owner.user).values_list("data__name", flat=True)) == ["Laptop"]


def test_a_withdrawal_signed_against_a_moved_nonce_is_never_sent(celery_worker: Any, make_user: Any) -> None:
    # given a protected wallet whose recovery started on-chain, and two guardians who both sign their
    # withdrawal against the same nonce
    owner, guardians = _family(make_user)
    _protect(owner, guardians, timelock=3600)
    request, _soft = _approved(owner, guardians, timelock=3600)
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "started", timeout=60)
    credentials = {}
    for guardian in guardians[:2]:
        options = services.recovery_withdraw_options(request_id=request.id, user=guardian.user)
        credentials[guardian.user.pk] = guardian.soft.get(options["publicKey"])
    for guardian in guardians[:2]:
        services.recovery_approval_withdraw(request_id=request.id, user=guardian.user,
                                            credential=credentials[guardian.user.pk])
    # when the sweep sends them one at a time: the first lands (the nonce moves) ...
    assert wait_until(lambda: RecoveryEvent.objects.filter(request=request, kind="chain_withdraw_stale").exists(),
                      timeout=60)
    # then the second is never sent (it would fail with 6035): exactly one withdraw attempt, the guardian is
    # asked again, and their approval still counts here as on-chain
    assert list(RecoveryAttempt.objects.filter(request=request, phase="withdraw").values_list("status", flat=True)) == [
        "landed"]
    assert any(m.subject == "Withdraw your recovery approval again" for m in recovery_outbox())
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert len(config.recovery_approving_slots) == 1
    request.refresh_from_db()
    assert services.live_approvals(request) == 1
    assert not RecoveryApproval.objects.filter(request=request, chain_withdraw_approval__isnull=False).exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_never_execute_one_request_twice(tokens: Any, make_user: Any, settings: Any) -> None:
    # given a request due later (a long timelock: a running beat never finds it due) of a wallet with nothing
    # on-chain, so that the step the sweeps race for is the hand-over itself
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 86_400
    owner, guardians = _family(make_user)
    Wallet.objects.filter(user=owner.user).update(kind=Wallet.Kind.KEYPAIR)
    request, _soft = _approved(owner, guardians)
    later = request.executes_at + timedelta(seconds=1)
    # when one sweep holds the request (its transaction is still open) and a second sweep runs
    held, release = threading.Event(), threading.Event()

    def first_sweep() -> None:
        try:
            with transaction.atomic():
                RecoveryRequest.objects.select_for_update().get(pk=request.pk)
                held.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_sweep)
    thread.start()
    assert held.wait(30)
    # then the second skips it (SKIP LOCKED: it neither waits nor executes)
    assert services.recovery_due_sweep(now=later) == 0
    assert not RecoveryAttempt.objects.exists()
    release.set()
    thread.join()
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.TIMELOCKED
    # once free, one sweep executes it and every later sweep finds nothing to do
    assert services.recovery_due_sweep(now=later) == 1
    assert services.recovery_due_sweep(now=later) == 0
    assert RecoveryEvent.objects.filter(request=request, kind="execution_started").count() == 1
    assert RecoveryEvent.objects.filter(request=request, kind="request_executed").count() == 1
    assert RecoveryRequest.objects.get(pk=request.pk).status == Status.EXECUTED


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_begin_one_execution(tokens: Any, make_user: Any, settings: Any) -> None:
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 86_400
    owner, guardians = _family(make_user)
    Wallet.objects.filter(user=owner.user).update(kind=Wallet.Kind.KEYPAIR)
    request, _soft = _approved(owner, guardians)
    later = request.executes_at + timedelta(seconds=1)
    barrier, results = threading.Barrier(2), []

    def sweep() -> None:
        try:
            barrier.wait(30)
            results.append(services.recovery_due_sweep(now=later))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1]
    assert RecoveryEvent.objects.filter(request=request, kind="request_executed").count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_guardian_removal_racing_an_approval(make_user: Any) -> None:
    # given a request with one approval (of 2 needed) and a second guardian whose removal is taking effect
    owner, guardians = _family(make_user)
    request, _token, _soft = start_collecting(owner)
    services.recovery_approve(request_id=request.id, user=guardians[0].user,
                              credential=sign(guardians[0], digests.approval_challenge(request)))
    leaving = Guardian.objects.get(guardian_user=guardians[1].user)
    credential = sign(guardians[1], digests.approval_challenge(request))
    removing, release, outcome = threading.Event(), threading.Event(), {}

    def remove() -> None:
        try:
            with transaction.atomic():
                locked_wallet(user=owner.user)
                guardian = Guardian.objects.select_for_update().get(pk=leaving.pk)
                removing.set()
                release.wait(30)
                services.guardians.guardian_removed_locked(guardian=guardian, now=timezone.now())
        finally:
            connections.close_all()

    def approve() -> None:
        try:
            services.recovery_approve(request_id=request.id, user=guardians[1].user, credential=credential)
            outcome["result"] = "approved"
        except ApplicationError as error:
            outcome["result"] = error.code
        finally:
            connections.close_all()

    remover = threading.Thread(target=remove)
    remover.start()
    assert removing.wait(30)
    # when the leaving guardian approves while the removal holds the wallet lock
    approver = threading.Thread(target=approve)
    approver.start()
    assert wait_for_lock_waiters(1)
    release.set()
    remover.join()
    approver.join()
    # then the approval waited for the removal and was refused: the clock never started
    assert outcome["result"] == "recovery_not_guardian"
    request.refresh_from_db()
    assert (request.status, request.executes_at) == (Status.COLLECTING, None)
    assert services.live_approvals(request) == 1


def test_a_threshold_of_three_starts_with_two_and_the_third_guardian_approves_on_chain(celery_worker: Any,
                                                                                       make_user: Any) -> None:
    # given an owner (custodial mode) with 4 guardians (threshold 3, written on-chain) and a 2 s timelock
    owner = person(make_user, "owner@example.com")
    guardians = [person(make_user, f"guardian{n}@example.com") for n in range(4)]
    for guardian in guardians:
        add_guardian(owner, guardian)
    assert _wait_synced(owner)
    request, _token, new_soft = start_collecting(owner)
    # when 3 guardians approve here (over the start's challenge)
    for guardian in guardians[:3]:
        services.recovery_approve(request_id=request.id, user=guardian.user,
                                  credential=sign(guardian, digests.approval_challenge(request)))
    request.refresh_from_db()
    assert (request.status, request.threshold) == (Status.TIMELOCKED, 3)
    # then the start lands carrying the 2 that fit in one transaction: the chain's clock does not run, and
    # Numpay's executes_at stays unset; the third guardian is asked to approve on the wallet
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "started", timeout=60)
    started = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert started.recovery_pending
    assert (len(started.recovery_approving_slots), started.recovery_executes_at) == (2, 0)
    request.refresh_from_db()
    assert request.executes_at is None
    assert list(RecoveryAttempt.objects.filter(request=request, phase="start").values_list("status", flat=True)) == [
        "landed"]
    asked = [m for m in recovery_outbox() if m.subject == "One more step: approve on the wallet"]
    assert [m.to for m in asked] == [[guardians[2].user.email]]
    # nothing is asked of a guardian the chain counts, nor of one who has not approved here
    assert services.recovery_approve_options(request_id=request.id, user=guardians[0].user) is None
    assert services.recovery_approve_options(request_id=request.id, user=guardians[3].user) is None
    # and nothing executes while the chain's approvals are below the threshold
    assert not RecoveryAttempt.objects.filter(request=request, phase__in=("approve", "execute")).exists()
    # and the approval page offers the on-chain approval to the third guardian only
    pages = {}
    for guardian in guardians[:3]:
        pages[guardian.user.pk] = Client()
        pages[guardian.user.pk].force_login(guardian.user)
    offered = [b"approve-options" in pages[g.user.pk].get(f"/recovery/approve/{request.id}/").content
               for g in guardians[:3]]
    assert offered == [False, False, True]
    # when the third guardian approves on-chain with their passkey at the config's nonce now (the page's API)
    third = pages[guardians[2].user.pk]
    options = third.get(f"/api/v1/recovery/requests/{request.id}/approve-options").json()["options"]
    assert options is not None
    answer = third.post(f"/api/v1/recovery/requests/{request.id}/chain-approve",
                        {"credential": guardians[2].soft.get(options["publicKey"])}, content_type=JSON)
    assert answer.status_code == 200, answer.content
    # then the approve lands, the chain's clock runs, Numpay follows it, and after the timelock the recovery
    # executes: the new passkey is the on-chain owner
    executed = wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).status == Status.EXECUTED, timeout=90)
    assert executed, RecoveryRequest.objects.get(pk=request.pk).status
    assert set(RecoveryAttempt.objects.filter(request=request).exclude(phase="sync").values_list("phase", "status")
               ) == {("start", "landed"), ("approve", "landed"), ("execute", "landed")}
    assert RecoveryEvent.objects.filter(request=request, kind="chain_approved").count() == 1
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert config.nonce >= started.nonce + 2  # the approve and the execute each bumped it
    assert not config.recovery_pending
    assert config.authority(bytes(request.pending_public_key)).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
    assert config.authority(Pubkey.from_string(request.wallet.signing_address)).permissions == PERMISSION_SPEND
    assert list(Authenticator.objects.filter(user=owner.user).values_list("data__name", flat=True)) == [
        "Recovered passkey"]


def test_two_further_approvals_signed_at_one_nonce_land_one_after_another(celery_worker: Any,
                                                                          make_user: Any) -> None:
    # given an owner with 5 guardians, threshold 4 (an hour's timelock): the start carries 2 of the 4 approvals
    owner = person(make_user, "owner@example.com")
    guardians = [person(make_user, f"guardian{n}@example.com") for n in range(5)]
    for guardian in guardians:
        add_guardian(owner, guardian)
    RecoverySetup.objects.filter(user=owner.user).update(threshold=4, timelock_seconds=3600)
    request, _token, _new_soft = start_collecting(owner)
    for guardian in guardians[:4]:
        services.recovery_approve(request_id=request.id, user=guardian.user,
                                  credential=sign(guardian, digests.approval_challenge(request)))
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).chain_phase == "started", timeout=60)
    started = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert (started.guardian_threshold, len(started.recovery_approving_slots)) == (4, 2)
    asked = sorted(m.to[0] for m in recovery_outbox() if m.subject == "One more step: approve on the wallet")
    assert asked == sorted(g.user.email for g in guardians[2:4])
    # when both further guardians sign recovery_approve at the same nonce
    credentials = {}
    for guardian in guardians[2:4]:
        options = services.recovery_approve_options(request_id=request.id, user=guardian.user)
        credentials[guardian.user.pk] = guardian.soft.get(options["publicKey"])
    for guardian in guardians[2:4]:
        services.recovery_chain_approve(request_id=request.id, user=guardian.user,
                                        credential=credentials[guardian.user.pk])
    # then the sweep sends one; the other (its nonce moved) is never sent, and that guardian is asked again
    assert wait_until(lambda: RecoveryEvent.objects.filter(request=request, kind="chain_approve_stale").exists(),
                      timeout=60)
    assert list(RecoveryAttempt.objects.filter(request=request, phase="approve").values_list("status", flat=True)) == [
        "landed"]
    again = [m.to[0] for m in recovery_outbox() if m.subject == "Approve the recovery again with your passkey"]
    assert len(again) == 1
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert (len(config.recovery_approving_slots), config.recovery_executes_at, config.nonce) == (3, 0, started.nonce + 1)
    request.refresh_from_db()
    assert (request.status, request.executes_at) == (Status.TIMELOCKED, None)
    # when that guardian approves again at the nonce now
    late = next(g for g in guardians[2:4] if g.user.email == again[0])
    options = services.recovery_approve_options(request_id=request.id, user=late.user)
    services.recovery_chain_approve(request_id=request.id, user=late.user, credential=late.soft.get(options["publicKey"]))
    # then it lands: the chain's clock runs, and Numpay's executes_at is the chain's (never earlier)
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).executes_at is not None, timeout=60)
    config = wallet_config_read(client=get_chain_client(), wallet=request.wallet)
    assert len(config.recovery_approving_slots) == 4
    assert config.recovery_executes_at > 0
    request.refresh_from_db()
    assert request.executes_at.timestamp() >= config.recovery_executes_at
    assert request.chain_phase == "started"
    assert not RecoveryAttempt.objects.filter(request=request, phase="execute").exists()
