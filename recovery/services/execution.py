"""Carrying recoveries out (issue 10 item 4): the beat sweep reconciles each request with the chain, one
step at a time, every step a transaction stored in the relayer's outbox in the same DB transaction that
moves the request (:mod:`relayer.outbox`: sent after commit, re-sent, renewed, confirmed):

1. a request whose guardians reached the threshold (``timelocked``) on a smart wallet gets its on-chain
   **start** (:func:`recovery.chain.start_instructions`) carrying as many approvals as fit in one transaction
   (about two); when those reach the threshold the chain's clock starts. Otherwise ``executes_at`` stays unset
   and each further counted guardian whose bit the chain has not set is asked to approve on-chain with their
   passkey (``recovery_approve`` at the config's nonce then); the sweep sends those **approve** steps one at a
   time (each bumps the nonce: one signed against a nonce that has moved is dropped and the guardian asked
   again). ``executes_at`` is set from the chain's own once its approvals reach the threshold;
2. a request whose timelock has passed (``executes_at <= now``) gets its **execute** and moves to
   ``executing``; when it lands, the account is handed over (:func:`recovery_complete_locked`). The execute is
   permissionless on-chain: when someone else's landed first (:func:`chain_executed`), the sweep sends none
   and hands over at once, and an execute of ours then refused hands over all the same;
3. a request started on-chain one of whose guardians withdrew with their passkey gets that guardian's
   **withdraw** (``recovery_withdraw`` approved by the guardian's passkey), before anything else: the chain
   clears the guardian's bit and stops its clock below the threshold; the approval is withdrawn here when it
   lands. One at a time: each passkey approval bumps the config's nonce, so a withdrawal signed against a
   nonce that has moved is never sent (the guardian is asked again);
4. a request started on-chain that is no longer going ahead (cancelled, frozen by an operator, expired,
   withdrawn below the threshold) gets its on-chain **cancel**, so nobody can execute it on-chain
   (``recovery_execute`` is permissionless): signed by the custody key when it holds ``manage`` (custodial
   mode) or ``recovery_cancel`` (protected mode: the switch gives it that bit), or approved by the owner's
   passkey when the owner gave one. A wallet protected before the bit existed has neither: the owner is
   asked, on every channel, to stop it with their passkey (``stuck`` until they do). A request the chain shows
   executed by someone else before its cancel (:func:`chain_executed`, checked before the cancel is sent and when
   it is refused) is handed over instead, once, and the owner told their cancel came too late. The cancel is one
   outbox step like the others (stored before it is sent, found again after a restart, never two live
   attempts) and the request's timeline records who signed it and when it landed.

Each due request is taken ``FOR UPDATE SKIP LOCKED`` (a request another sweep holds is skipped, never
waited for), then its wallet ``FOR UPDATE SKIP LOCKED`` (no waiting while holding a lock: no deadlock with
the services, which lock wallet then request); its state is re-read under the locks. So two sweeps never
take the same step twice, and nothing is lost when the broker or a worker restarts: the state is in the
database (a step whose send message was lost is in flight with a stored attempt, which the outbox poller
and its sweep pick up). A keypair wallet has nothing on-chain: it is handed over at its ``executes_at``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from allauth.mfa.models import Authenticator
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from solders.instruction import Instruction
from solders.pubkey import Pubkey

from numpay.core.errors import ApplicationError, ChainRequestError, ChainUnavailableError
from numpay.core.solana import Blockhash, ChainClient, SignatureStatus, get_chain_client
from numpay.core.transactions import assemble, compile_message
from relayer import outbox
from relayer import services as relayer
from relayer.outbox import OutboxKind
from wallets.program.instructions import PERMISSION_MANAGE
from wallets.services import wallet_sign
from wallets.smart import wallet_config_read

from .. import chain
from ..lock_objects import recovery_request_qs_due_for_update, wallet_qs_select_for_update
from ..models import Guardian, RecoveryApproval, RecoveryAttempt, RecoveryRequest, RecoverySetup
from ..passkeys import passkey_install
from .common import cancel_link, event_record, notify_user, public_url

logger = logging.getLogger(__name__)
Status = RecoveryRequest.Status
Phase = RecoveryRequest.ChainPhase
GOING_AHEAD = (Status.TIMELOCKED, Status.EXECUTING)
#: A Solana transaction's wire size limit (bytes), checked before anything is stored.
MAX_TRANSACTION_BYTES = 1232


def recovery_due_sweep(*, now: datetime | None = None, limit: int = 20, client: ChainClient | None = None) -> int:
    """Take every due step (start, execute, cancel) of every request (the beat job).

    :returns: how many steps began.
    :raises ChainUnavailableError: no blockhash (nothing changed; the next sweep retries).
    """
    now = now or timezone.now()
    due_start = Q(status=Status.TIMELOCKED, chain_phase=Phase.NONE, chain_nonce__isnull=False)
    due_execute = Q(status=Status.TIMELOCKED, executes_at__lte=now) & (
        Q(chain_phase=Phase.STARTED) | Q(chain_nonce__isnull=True))
    due_cancel = (Q(chain_phase=Phase.STARTED) | Q(chain_phase=Phase.CANCEL_FAILED, chain_cancel_approval__isnull=False)
                  ) & ~Q(status__in=GOING_AHEAD)
    due_withdraw = Q(chain_phase=Phase.STARTED, approvals__withdrawn_at__isnull=True,
                     approvals__chain_withdraw_approval__isnull=False)
    due_approve = Q(chain_phase=Phase.STARTED, status=Status.TIMELOCKED, approvals__withdrawn_at__isnull=True,
                    approvals__chain_approve_approval__isnull=False)
    due = list(RecoveryRequest.objects.filter(due_start | due_execute | due_cancel | due_withdraw | due_approve)
               .distinct()
               .order_by("updated_at").values_list("pk", "updated_at")[:limit])
    due = [pk for pk, _updated_at in due]
    if not due:
        return 0
    client = client or get_chain_client()
    blockhash = client.latest_blockhash()
    begun = 0
    for request_id in due:
        with transaction.atomic():
            request = recovery_request_qs_due_for_update().filter(pk=request_id).first()
            if request is None:
                continue  # another sweep has it
            if not wallet_qs_select_for_update().select_for_update(skip_locked=True).filter(
                    pk=request.wallet_id).exists():
                continue  # a payment or a guardian service holds the wallet: next sweep
            request = RecoveryRequest.objects.select_related("user", "wallet").get(pk=request_id)
            step = _step_of(request, now=now)
            if step is None:
                continue
            try:
                with transaction.atomic():
                    step(request, blockhash=blockhash, client=client)
            except (ChainUnavailableError, ChainRequestError):
                raise  # transient: nothing changed (the savepoint rolled back); the next sweep retries
            except (ValueError, ApplicationError) as error:  # not possible on-chain: end it, never loop
                request.refresh_from_db()
                _end_impossible(request, reason=getattr(error, "message", None) or str(error))
            begun += 1
    return begun


def _end_impossible(request: RecoveryRequest, *, reason: str) -> None:
    logger.warning("recovery %s: on-chain step impossible: %s", request.pk, reason)
    event_record(owner=request.user, request=request, kind="chain_step_impossible", actor="system", note=reason)
    if request.status in GOING_AHEAD:
        request.status, request.ended_at = Status.FAILED, timezone.now()
        request.end_reason = f"The recovery could not be written on-chain: {reason}"[:255]
        request.save()


def _step_of(request: RecoveryRequest, *, now: datetime) -> Callable[..., None] | None:
    """The step ``request`` needs now (re-decided under its locks), or ``None``."""
    if request.chain_phase == Phase.STARTED and pending_chain_withdrawal(request) is not None:
        return _begin_withdraw  # first: a guardian taking back an approval the chain counts
    if request.status == Status.TIMELOCKED and request.chain_phase == Phase.STARTED and (
            pending_chain_approve(request) is not None):
        return _begin_approve
    if request.status == Status.TIMELOCKED and request.chain_phase == Phase.NONE and request.chain_nonce is not None:
        syncing = RecoverySetup.objects.filter(user_id=request.user_id, chain_sync__in=(
            RecoverySetup.ChainSync.PENDING, RecoverySetup.ChainSync.IN_FLIGHT)).exists()
        return None if syncing else _begin_start  # the guardian set being written goes first
    if request.status == Status.TIMELOCKED and request.executes_at is not None and request.executes_at <= now and (
            request.chain_phase == Phase.STARTED or request.chain_nonce is None):
        return _begin_execute
    if request.status not in GOING_AHEAD and (request.chain_phase == Phase.STARTED or (
            request.chain_phase == Phase.CANCEL_FAILED and request.chain_cancel_approval)):
        return _begin_cancel
    return None


def _begin_start(request: RecoveryRequest, *, blockhash: Blockhash, client: ChainClient) -> None:
    """The guardian sync first when the chain does not hold the guardians and rules yet, else the start."""
    needs_sync = bool(_instructions(SYNC_OUTBOX, request, client=client, fee_payer=relayer.fee_payer_pubkey()))
    kind = SYNC_OUTBOX if needs_sync else START_OUTBOX
    request.chain_phase = Phase.SYNC if needs_sync else Phase.START
    request.save(update_fields=["chain_phase", "updated_at"])
    event_record(owner=request.user, request=request, kind=f"chain_{kind.phase}_submitted", actor="system")
    _submit(kind, request, blockhash=blockhash, client=client)


def pending_chain_withdrawal(request: RecoveryRequest) -> RecoveryApproval | None:
    """The live approval whose guardian withdrew it with their passkey, waiting for (or in) its on-chain
    ``recovery_withdraw`` (the earliest approved first; one at a time), or ``None``."""
    return (RecoveryApproval.objects.filter(request=request, withdrawn_at__isnull=True,
                                            chain_withdraw_approval__isnull=False)
            .select_related("guardian__guardian_user").order_by("approved_at", "pk").first())


def _withdrawal_stale(approval: RecoveryApproval, *, note: str) -> None:
    """Drop a guardian's on-chain withdrawal that can no longer land and ask them to withdraw again."""
    request = approval.request
    approval.chain_withdraw_approval = None
    approval.save(update_fields=["chain_withdraw_approval"])
    event_record(owner=request.user, request=request, guardian=approval.guardian, kind="chain_withdraw_stale",
                 actor="system", note=note[:255])
    notify_user(user=approval.guardian.guardian_user, subject="Withdraw your recovery approval again", body=(
        "Your approval of a Numpay account recovery could not be withdrawn on the wallet yet (the wallet changed "
        "in the meantime). Please withdraw it again with your passkey: "
        f"{public_url(f'/recovery/approve/{request.id}/')}\n"))


def _begin_withdraw(request: RecoveryRequest, *, blockhash: Blockhash, client: ChainClient) -> None:
    """Send the earliest pending guardian withdrawal, if it still matches the chain (nonce, request, expiry);
    otherwise drop it and ask the guardian again (never a transaction doomed to fail with 6035)."""
    approval = pending_chain_withdrawal(request)
    if approval is None:
        return
    terms = approval.chain_withdraw_approval
    config = wallet_config_read(client=client, wallet=request.wallet)
    if config is None or not config.recovery_pending or config.recovery_id != terms["recovery_id"]:
        # the chain no longer holds the request this approval was for: nothing to take back there
        _withdrawal_stale(approval, note="nothing pending on-chain for this withdrawal")
        return
    if config.nonce != terms["nonce"] or terms["expires_at"] <= int(timezone.now().timestamp()) + 30:
        _withdrawal_stale(approval, note=f"signed at nonce {terms['nonce']}, the wallet is at {config.nonce}")
        return
    request.chain_phase = Phase.WITHDRAW
    request.save(update_fields=["chain_phase", "updated_at"])
    event_record(owner=request.user, request=request, guardian=approval.guardian, kind="chain_withdraw_submitted",
                 actor="system")
    _submit(WITHDRAW_OUTBOX, request, blockhash=blockhash, client=client)


def pending_chain_approve(request: RecoveryRequest) -> RecoveryApproval | None:
    """The live approval whose guardian approved ``recovery_approve`` with their passkey, waiting for (or in)
    its on-chain landing (the earliest approved first; one at a time), or ``None``."""
    return (RecoveryApproval.objects.filter(request=request, withdrawn_at__isnull=True,
                                            guardian__status=Guardian.Status.ACTIVE,
                                            chain_approve_approval__isnull=False)
            .select_related("guardian__guardian_user").order_by("approved_at", "pk").first())


def _ask_chain_approval(approval: RecoveryApproval, *, again: bool) -> None:
    """Ask the guardian of ``approval`` to approve on the wallet with their passkey (``recovery_approve`` at
    the config's nonce then; their approval page offers it)."""
    request = approval.request
    notify_user(user=approval.guardian.guardian_user, subject=(
        "Approve the recovery again with your passkey" if again else "One more step: approve on the wallet"), body=(
        f"Your approval of the recovery of {request.user.email or request.user}'s Numpay account counts here, but "
        "the wallet needs it too (one transaction cannot carry every guardian's approval). Please approve on the "
        f"wallet with your passkey: {public_url(f'/recovery/approve/{request.id}/')}\n"))


def _approve_stale(approval: RecoveryApproval, *, note: str) -> None:
    """Drop a guardian's on-chain approval that can no longer land and ask them to sign again."""
    request = approval.request
    approval.chain_approve_approval = None
    approval.save(update_fields=["chain_approve_approval"])
    event_record(owner=request.user, request=request, guardian=approval.guardian, kind="chain_approve_stale",
                 actor="system", note=note[:255])
    _ask_chain_approval(approval, again=True)


def chain_approvals_follow(request: RecoveryRequest, *, client: ChainClient | None = None,
                           landed_at: datetime | None = None) -> None:
    """After a start or an approve landed: set ``executes_at`` from the chain's clock (its ``executes_at``,
    never earlier than ``landed_at`` + the timelock by Numpay's clock) when the chain's approvals reach the
    threshold, else leave it unset and ask each counted guardian whose bit the chain has not set (and who has
    not signed yet) to approve there. The caller holds the request's row lock and saves it.

    :raises ChainUnavailableError: the config could not be read.
    """
    config = wallet_config_read(client=client or get_chain_client(), wallet=request.wallet)
    if config is not None and config.recovery_pending and request.pending_public_key and (
            bytes(config.recovery_new_owner or b"") == bytes(request.pending_public_key)):
        request.chain_recovery_id = config.recovery_id  # how an execution by anyone is recognised as ours
    if request.status != Status.TIMELOCKED:
        return
    if config is None or not config.recovery_pending:  # not visible yet: never earlier than the chain's clock
        request.executes_at = max(request.executes_at or timezone.now(),
                                  timezone.now() + timedelta(seconds=request.timelock_seconds))
        return
    if config.recovery_executes_at > 0:
        on_chain = datetime.fromtimestamp(config.recovery_executes_at, tz=UTC)
        earliest = (landed_at or timezone.now()) + timedelta(seconds=request.timelock_seconds)
        request.executes_at = max(on_chain, earliest)
        return
    request.executes_at = None
    approving = set(config.recovery_approving_slots)
    for approval in (RecoveryApproval.objects.filter(request=request, withdrawn_at__isnull=True,
                                                     guardian__status=Guardian.Status.ACTIVE,
                                                     chain_approve_approval__isnull=True)
                     .select_related("guardian__guardian_user", "request__user")):
        entry = config.authority(bytes(approval.guardian.authority_key or b""))
        if entry is not None and entry.slot not in approving:
            _ask_chain_approval(approval, again=False)


def _begin_approve(request: RecoveryRequest, *, blockhash: Blockhash, client: ChainClient) -> None:
    """Send the earliest pending guardian ``recovery_approve``, if it still matches the chain (nonce, request,
    expiry, the guardian's bit not set); otherwise drop it and ask the guardian again."""
    approval = pending_chain_approve(request)
    if approval is None:
        return
    terms = approval.chain_approve_approval
    config = wallet_config_read(client=client, wallet=request.wallet)
    if config is None or not config.recovery_pending or config.recovery_id != terms["recovery_id"]:
        _approve_stale(approval, note="nothing pending on-chain for this approval")
        return
    entry = config.authority(bytes.fromhex(terms["public_key"]))
    if entry is None or entry.slot in config.recovery_approving_slots or config.recovery_executes_at > 0:
        # counted there already, no longer a guardian there, or the chain's clock runs: nothing more needed
        approval.chain_approve_approval = None
        approval.save(update_fields=["chain_approve_approval"])
        return
    if config.nonce != terms["nonce"] or terms["expires_at"] <= int(timezone.now().timestamp()) + 30:
        _approve_stale(approval, note=f"signed at nonce {terms['nonce']}, the wallet is at {config.nonce}")
        return
    request.chain_phase = Phase.APPROVE
    request.save(update_fields=["chain_phase", "updated_at"])
    event_record(owner=request.user, request=request, guardian=approval.guardian, kind="chain_approve_submitted",
                 actor="system")
    _submit(APPROVE_OUTBOX, request, blockhash=blockhash, client=client)


def _begin_execute(request: RecoveryRequest, *, blockhash: Blockhash, client: ChainClient) -> None:
    request.status = Status.EXECUTING
    request.save(update_fields=["status", "updated_at"])
    event_record(owner=request.user, request=request, kind="execution_started", actor="system")
    if request.chain_nonce is None:
        recovery_complete_locked(request, note="keypair wallet: nothing on-chain to change")
        return
    if chain_executed(request=request, client=client):  # recovery_execute is permissionless: someone was first
        _complete_executed_on_chain(request, note="recovery_execute landed, sent by someone else")
        return
    _submit(EXECUTE_OUTBOX, request, blockhash=blockhash, client=client)


def chain_executed(*, request: RecoveryRequest, client: ChainClient | None = None) -> bool:
    """Whether the wallet's config shows ``request`` executed on-chain, by anyone (``recovery_execute`` is
    permissionless, docs/wallet-program.md): nothing is pending, the config's ``recovery_id`` is the request's
    (recorded when its start landed; not checked for a request started before it was recorded) and the
    request's new owner key is an authority holding ``manage`` (the execute's effect).

    :raises ChainUnavailableError: the config could not be read.
    """
    if request.chain_nonce is None or not request.pending_public_key:
        return False
    config = wallet_config_read(client=client or get_chain_client(), wallet=request.wallet)
    if config is None or config.recovery_pending:
        return False
    if request.chain_recovery_id is not None and config.recovery_id != request.chain_recovery_id:
        return False
    entry = config.authority(bytes(request.pending_public_key))
    return entry is not None and bool(entry.permissions & PERMISSION_MANAGE)


def _complete_executed_on_chain(request: RecoveryRequest, *, note: str) -> None:
    """The chain executed ``request`` (seen by :func:`chain_executed`): settle its sponsorship and hand the
    account over, once (the caller holds the request's row lock; the request then is ``executed``)."""
    relayer.sponsorship_settle(reference=request.id, actual_lamports=None)
    request.chain_phase = Phase.EXECUTED
    event_record(owner=request.user, request=request, kind="chain_executed_elsewhere", actor="system", note=note)
    recovery_complete_locked(request, note=note)


def _complete_after_late_cancel(request: RecoveryRequest) -> None:
    """A request stopped here (cancelled, frozen, expired) that the chain shows executed (:func:`chain_executed`:
    ``recovery_execute`` is permissionless, someone sent it before the cancel took effect): the chain handed the
    wallet over, so the hand-over is completed here, once (the request becomes ``executed``; the caller holds its
    row lock), and the owner is told plainly that the cancel came too late."""
    was = request.status
    _complete_executed_on_chain(request, note=f"recovery_execute landed, sent by someone else, before the {was} "
                                              "request's on-chain cancel")
    notify_user(user=request.user, subject="Your cancel came too late: your account was recovered", body=(
        f"The recovery of your Numpay account was {was} here, but someone had already carried it out on your "
        "wallet (anyone may, once its waiting time has passed), so the new passkey now owns your wallet and your "
        "account follows it. If this was not you, contact support at once.\n"))


def _begin_cancel(request: RecoveryRequest, *, blockhash: Blockhash, client: ChainClient) -> None:
    """Cancel on-chain: approved by the owner's passkey (``chain_cancel_approval``), else signed by the custody
    key when it holds ``manage`` or ``recovery_cancel`` (:func:`recovery.chain.custody_cancels`). A wallet
    protected before that bit, without the owner's approval: nothing can be sent; the owner is asked, on every
    channel, to stop it with their passkey (the cancel link)."""
    if chain_executed(request=request, client=client):  # someone executed it on-chain before the cancel
        _complete_after_late_cancel(request)
        return
    by_owner = bool(request.chain_cancel_approval)
    if not by_owner and not chain.custody_cancels(client=client, wallet=request.wallet):
        request.chain_phase = Phase.CANCEL_FAILED
        request.save(update_fields=["chain_phase", "updated_at"])
        event_record(owner=request.user, request=request, kind="chain_cancel_needs_owner", actor="system")
        if not request.cancel_nonce:
            request.cancel_nonce = secrets.token_hex(16)
            request.save(update_fields=["cancel_nonce", "updated_at"])
        notify_user(user=request.user, subject="Stop the recovery of your wallet with your passkey", body=(
            "A recovery of your Numpay account was stopped here, but it is still pending on your wallet, and only "
            f"your passkey can end it there. Use your passkey now: {cancel_link(request)}\n"))
        return
    request.chain_phase = Phase.CANCEL
    request.save(update_fields=["chain_phase", "updated_at"])
    event_record(owner=request.user, request=request, kind="chain_cancel_submitted", actor="system", note=(
        "approved by the owner's passkey" if by_owner else f"signed by the custody key (request {request.status})"))
    _submit(CANCEL_OUTBOX, request, blockhash=blockhash, client=client)


def _submit(kind: RecoveryPhaseOutbox, request: RecoveryRequest, *, blockhash: Blockhash, client: ChainClient) -> None:
    number = (kind.latest_attempt(request).number + 1) if kind.latest_attempt(request) else 1
    attempt = sign_attempt(kind=kind, request=request, blockhash=blockhash, number=number, reserve=True, client=client)
    request.signature = attempt.signature
    request.save(update_fields=["signature", "updated_at"])
    outbox.enqueue_send(kind, request.pk)


def _instructions(kind: RecoveryPhaseOutbox, request: RecoveryRequest, *, client: ChainClient,
                  fee_payer: Pubkey) -> list[Instruction]:
    if kind.phase in (RecoveryAttempt.Phase.SYNC, RecoveryAttempt.Phase.START):
        guardians = list(Guardian.objects.filter(owner_id=request.user_id, status=Guardian.Status.ACTIVE))
        approvals = list(RecoveryApproval.objects.filter(request=request, withdrawn_at__isnull=True,
                                                         guardian__status=Guardian.Status.ACTIVE)
                         .select_related("guardian").order_by("approved_at"))
        threshold = request.threshold or len(approvals)
        if kind.phase == RecoveryAttempt.Phase.SYNC:
            return chain.sync_instructions(request=request, guardian_keys=[bytes(g.authority_key) for g in guardians],
                                           threshold=threshold, client=client, fee_payer=fee_payer)
        carried = chain.start_fitting(request=request, approvals=approvals[:threshold], fee_payer=fee_payer,
                                      limit=MAX_TRANSACTION_BYTES)
        return chain.start_instructions(request=request, approvals=approvals[:carried])
    recovery_id = chain.pending_recovery_id(client=client, wallet=request.wallet)
    if recovery_id is None:
        raise ValueError("no recovery is pending on-chain")
    if kind.phase == RecoveryAttempt.Phase.EXECUTE:
        return chain.execute_instructions(request=request, recovery_id=recovery_id)
    if kind.phase == RecoveryAttempt.Phase.WITHDRAW:
        approval = pending_chain_withdrawal(request)
        if approval is None:
            raise ValueError("no guardian withdrawal is waiting")
        return chain.withdraw_instructions(request=request, approval=approval.chain_withdraw_approval)
    if kind.phase == RecoveryAttempt.Phase.APPROVE:
        approval = pending_chain_approve(request)
        if approval is None:
            raise ValueError("no guardian approval is waiting")
        return chain.approve_instructions(request=request, approval=approval.chain_approve_approval)
    return chain.cancel_instructions(request=request, recovery_id=recovery_id)


def sign_attempt(*, kind: RecoveryPhaseOutbox, request: RecoveryRequest, blockhash: Blockhash, number: int,
                 reserve: bool, client: ChainClient | None = None) -> RecoveryAttempt:
    """Compile, validate and co-sign (relayer: the account's sponsorship budget, one charge per request),
    sign with the custody key when the transaction needs it, and store one attempt of ``kind``'s step.

    :param reserve: ``True`` for a step's first attempt (the relayer re-uses the request's charge when a
        step before it made one, reserving only any difference), ``False`` for a renewal.

    :raises ApplicationError: the relayer's refusals (``transaction_not_allowed``, ...).
    :raises ValueError: the step is not possible on-chain (nothing pending to execute or cancel).
    """
    client = client or get_chain_client()
    fee_payer = relayer.fee_payer_pubkey()
    message = compile_message(instructions=_instructions(kind, request, client=client, fee_payer=fee_payer),
                              fee_payer=fee_payer, blockhash=blockhash.blockhash)
    cosigned = relayer.relayer_cosign(user=request.user, message=message, reference=request.id, reserve=reserve)
    signatures = {fee_payer: cosigned.signature}
    custody_key = Pubkey.from_string(request.wallet.signing_address)
    if custody_key in message.account_keys[:message.header.num_required_signatures]:
        signatures[custody_key] = wallet_sign(wallet=request.wallet, message=bytes(message))
    tx = assemble(message=message, signatures=signatures)
    if len(bytes(tx)) > MAX_TRANSACTION_BYTES:
        raise ValueError(f"the {kind.phase} transaction is {len(bytes(tx))} bytes, above Solana's "
                         f"{MAX_TRANSACTION_BYTES}")
    return RecoveryAttempt.objects.create(
        request=request, phase=kind.phase, number=number, signed_transaction=bytes(tx), signature=str(tx.signatures[0]),
        blockhash=str(blockhash.blockhash), last_valid_block_height=blockhash.last_valid_block_height)


def recovery_complete_locked(request: RecoveryRequest, *, note: str) -> Authenticator:
    """Hand the account over (the caller holds the request's row lock): install the pending passkey, revoke
    the old passkeys, every session and the password, write the audit record, tell the user everywhere.

    :returns: the installed passkey.
    """
    user = request.user
    old = list(Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN))
    for authenticator in old:
        authenticator.delete()
    installed = passkey_install(user=user, credential=request.pending_credential, name="Recovered passkey")
    sessions_revoked = sessions_revoke(user_id=user.pk)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    request.status, request.ended_at, request.end_reason = Status.EXECUTED, timezone.now(), note[:255]
    request.cancel_nonce = ""
    request.save()
    # recovery_execute clears a pending guardian change on-chain: the next guardian sweep checks the change
    # under way against the chain (and ends it failed, with the reason, when it was dropped)
    RecoverySetup.objects.filter(user=user).exclude(chain_change_step="").exclude(
        chain_sync=RecoverySetup.ChainSync.IN_FLIGHT).update(chain_sync=RecoverySetup.ChainSync.PENDING)
    event_record(owner=user, request=request, kind="request_executed", actor="system", note=(
        f"{note}; {len(old)} passkeys and {sessions_revoked} sessions revoked, new passkey {installed.pk}")[:255])
    notify_user(user=user, subject="Your Numpay account was recovered", body=(
        "The recovery of your Numpay account is complete. Sign in with the new passkey; your old passkeys, "
        "password and sessions no longer work. If this was not you, contact support at once.\n"))
    return installed


def sessions_revoke(*, user_id: Any) -> int:
    """Delete every session (browser sessions and headless app session tokens) of ``user_id``.

    :returns: how many.
    """
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore
    count = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            store(session_key=session.session_key).delete()
            count += 1
    return count


def _fail(request: RecoveryRequest, *, err: Any, what: str) -> str:
    sentence = chain.explain_error(err) or f"The network refused the recovery's {what}."
    request.error_detail = err
    event_record(owner=request.user, request=request, kind=f"chain_{what}_failed", actor="system", note=sentence)
    logger.warning("recovery %s: on-chain %s failed: %s", request.pk, what, err)
    return sentence


class RecoveryPhaseOutbox(OutboxKind):
    """One on-chain step of recoveries as an outbox kind; its attempts are the ``phase`` rows of
    :class:`~recovery.models.RecoveryAttempt` (registered in :class:`recovery.apps.RecoveryConfig`)."""

    phase: ClassVar[str]
    attempt_model = RecoveryAttempt
    owner_field = "request"
    owner_model = RecoveryRequest

    def open_filter(self) -> Q:
        raise NotImplementedError

    def in_flight(self) -> QuerySet[RecoveryRequest]:
        return RecoveryRequest.objects.filter(self.open_filter()).order_by("updated_at")

    def lock(self, owner_id: Any) -> RecoveryRequest | None:
        wallet_id = RecoveryRequest.objects.filter(pk=owner_id).values_list("wallet_id", flat=True).first()
        if wallet_id is None:
            return None
        wallet_qs_select_for_update().filter(pk=wallet_id).exists()
        return RecoveryRequest.objects.select_for_update().select_related("user", "wallet").filter(pk=owner_id).first()

    def is_open(self, owner: RecoveryRequest) -> bool:
        return RecoveryRequest.objects.filter(self.open_filter(), pk=owner.pk).exists()

    def attempts(self, owners: Any) -> QuerySet[Any]:
        return super().attempts(owners).filter(phase=self.phase)

    def latest_attempt(self, owner: Any) -> RecoveryAttempt | None:
        return RecoveryAttempt.objects.filter(request=owner, phase=self.phase).order_by("-number").first()

    def sign_attempt(self, owner: RecoveryRequest, *, blockhash: Blockhash, number: int) -> RecoveryAttempt:
        attempt = sign_attempt(kind=self, request=owner, blockhash=blockhash, number=number, reserve=False)
        owner.signature = attempt.signature
        owner.save(update_fields=["signature", "updated_at"])
        return attempt

    def on_expired(self, owner: RecoveryRequest, attempt: RecoveryAttempt) -> None:  # pragma: no cover
        raise AssertionError("recovery attempts are always renewed (may_renew is True)")

    def touch(self, owner_ids: Iterable[Any]) -> None:
        RecoveryRequest.objects.filter(self.open_filter(), pk__in=list(owner_ids)).update(updated_at=timezone.now())

    def stale_count(self, *, older_than: datetime) -> int:
        return RecoveryRequest.objects.filter(self.open_filter(), updated_at__lt=older_than).count()


class SyncOutbox(RecoveryPhaseOutbox):
    """The custody key writes the guardians and the rules (custodial mode), before the start."""

    name = "recovery_sync"
    phase = RecoveryAttempt.Phase.SYNC

    def open_filter(self) -> Q:
        return Q(chain_phase=Phase.SYNC)

    def on_landed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        owner.chain_phase = Phase.NONE  # the next sweep sends the start
        owner.save()
        event_record(owner=owner.user, request=owner, kind="chain_synced", actor="system", note=f"slot {status.slot}")

    def on_failed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, err: Any, landed: bool,
                  slot: int | None, fee_payer_cost: int | None) -> None:
        sentence = _fail(owner, err=err, what="sync")
        owner.chain_phase = Phase.NONE
        if owner.status in GOING_AHEAD:
            owner.status, owner.ended_at, owner.end_reason, owner.executes_at = (
                Status.FAILED, timezone.now(), sentence[:255], None)
        owner.save()


class StartOutbox(RecoveryPhaseOutbox):
    """``recovery_start`` with the guardians' assertions: the chain's clock starts."""

    name = "recovery_start"
    phase = RecoveryAttempt.Phase.START

    def open_filter(self) -> Q:
        return Q(chain_phase=Phase.START)

    def on_landed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        # the start's passkey approvals bumped the nonce; the chain's clock runs only when the approvals it
        # carried reach the threshold (its executes_at: landing time + the timelock), else the further
        # guardians are asked to approve there
        owner.chain_phase = Phase.STARTED
        chain_approvals_follow(owner)
        owner.save()
        event_record(owner=owner.user, request=owner, kind="chain_started", actor="system",
                     note=f"slot {status.slot}; executes at {owner.executes_at}")

    def on_failed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, err: Any, landed: bool,
                  slot: int | None, fee_payer_cost: int | None) -> None:
        sentence = _fail(owner, err=err, what="start")
        owner.chain_phase = Phase.NONE
        if owner.status in (Status.TIMELOCKED, Status.COLLECTING):
            owner.status, owner.ended_at, owner.end_reason, owner.executes_at = (
                Status.FAILED, timezone.now(), sentence[:255], None)
        owner.save()


class ExecuteOutbox(RecoveryPhaseOutbox):
    """``recovery_execute`` after the timelock; on landing the account is handed over."""

    name = "recovery_execute"
    phase = RecoveryAttempt.Phase.EXECUTE

    def open_filter(self) -> Q:
        return Q(status=Status.EXECUTING, chain_phase=Phase.STARTED)

    def on_landed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        relayer.sponsorship_settle(reference=owner.id, actual_lamports=None)
        owner.chain_phase = Phase.EXECUTED
        recovery_complete_locked(owner, note=f"recovery_execute landed at slot {status.slot} ({attempt.signature})")

    def on_failed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, err: Any, landed: bool,
                  slot: int | None, fee_payer_cost: int | None) -> None:
        try:
            executed = chain_executed(request=owner)
        except ChainUnavailableError:  # cannot tell now: failed here, and the sweep's cancel finds it impossible
            executed = False
        if executed:  # someone else's recovery_execute landed before ours: the hand-over follows all the same
            _complete_executed_on_chain(owner, note=f"recovery_execute landed, sent by someone else (ours, "
                                                    f"{attempt.signature}, found nothing pending)")
            return
        sentence = _fail(owner, err=err, what="execute")
        owner.status, owner.ended_at, owner.end_reason = Status.FAILED, timezone.now(), sentence[:255]
        owner.save()  # still pending on-chain: the sweep cancels it there (chain_phase stays "started")


class CancelOutbox(RecoveryPhaseOutbox):
    """``recovery_cancel`` (the custody key's or the owner's passkey's), for a started request that is no
    longer going ahead."""

    name = "recovery_cancel"
    phase = RecoveryAttempt.Phase.CANCEL

    def open_filter(self) -> Q:
        return Q(chain_phase=Phase.CANCEL)

    def on_landed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        if owner.status == Status.COLLECTING:
            # fell below the threshold after its start: the start's passkey approvals used the nonce up, so
            # the guardians approve again, bound to the next nonce
            owner.chain_phase, owner.chain_nonce = Phase.NONE, (owner.chain_nonce or 0) + 1
            RecoveryApproval.objects.filter(request=owner, withdrawn_at__isnull=True).update(
                withdrawn_at=timezone.now(), withdrawn_reason="the on-chain request was cancelled; approve again")
        else:
            owner.chain_phase = Phase.CANCELLED
            relayer.sponsorship_settle(reference=owner.id, actual_lamports=None)
        owner.save()
        event_record(owner=owner.user, request=owner, kind="chain_cancelled", actor="system", note=f"slot {status.slot}")

    def on_failed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, err: Any, landed: bool,
                  slot: int | None, fee_payer_cost: int | None) -> None:
        try:
            executed = owner.status not in GOING_AHEAD and chain_executed(request=owner)
        except ChainUnavailableError:  # cannot tell now: cancel_failed (shown to operators)
            executed = False
        if executed:  # someone's recovery_execute landed before our cancel: the hand-over follows, once
            _complete_after_late_cancel(owner)
            return
        _fail(owner, err=err, what="cancel")
        owner.chain_phase = Phase.CANCEL_FAILED  # never retried blindly: the admin shows it (e.g. a wallet
        owner.save()                             # whose custody key lost the permission since it was checked)


class WithdrawOutbox(RecoveryPhaseOutbox):
    """A guardian's passkey-approved ``recovery_withdraw``: on landing the approval is withdrawn here too (the
    chain cleared the guardian's bit and stopped its clock below the threshold)."""

    name = "recovery_withdraw"
    phase = RecoveryAttempt.Phase.WITHDRAW

    def open_filter(self) -> Q:
        return Q(chain_phase=Phase.WITHDRAW)

    def on_landed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        from .requests import approval_withdraw_locked

        approval = pending_chain_withdrawal(owner)
        owner.chain_phase = Phase.STARTED
        # the passkey approval bumped the config's nonce (the custody key's cancel, if one follows, does not)
        owner.chain_nonce = (owner.chain_nonce or 0) + 1
        if approval is None:  # pragma: no cover (the approval is only withdrawn here)
            owner.save()
            return
        approval.chain_withdraw_approval = None
        approval.save(update_fields=["chain_withdraw_approval"])
        approval_withdraw_locked(approval=approval, reason=f"withdrawn by the guardian's passkey on-chain (slot "
                                 f"{status.slot})", actor="guardian", actor_user=approval.guardian.guardian_user,
                                 request=owner)
        owner.save()

    def on_failed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, err: Any, landed: bool,
                  slot: int | None, fee_payer_cost: int | None) -> None:
        sentence = _fail(owner, err=err, what="withdraw")
        owner.chain_phase = Phase.STARTED  # a failed transaction changed nothing on-chain (nor the nonce)
        owner.save()
        approval = pending_chain_withdrawal(owner)
        if approval is not None:
            _withdrawal_stale(approval, note=sentence)


class ApproveOutbox(RecoveryPhaseOutbox):
    """A further guardian's passkey-approved ``recovery_approve`` (a threshold above what the start carried):
    on landing the chain counts it; once its approvals reach the threshold its clock runs and ``executes_at``
    is set from the chain's."""

    name = "recovery_approve"
    phase = RecoveryAttempt.Phase.APPROVE

    def open_filter(self) -> Q:
        return Q(chain_phase=Phase.APPROVE)

    def on_landed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        approval = pending_chain_approve(owner)
        owner.chain_phase = Phase.STARTED
        owner.chain_nonce = (owner.chain_nonce or 0) + 1  # the passkey approval bumped the config's nonce
        if approval is not None:
            approval.chain_approve_approval = None
            approval.save(update_fields=["chain_approve_approval"])
            event_record(owner=owner.user, request=owner, guardian=approval.guardian, kind="chain_approved",
                         actor="system", note=f"slot {status.slot}")
        chain_approvals_follow(owner)
        owner.save()

    def on_failed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, err: Any, landed: bool,
                  slot: int | None, fee_payer_cost: int | None) -> None:
        sentence = _fail(owner, err=err, what="approve")
        owner.chain_phase = Phase.STARTED  # a failed transaction changed nothing on-chain (nor the nonce)
        owner.save()
        approval = pending_chain_approve(owner)
        if approval is not None:
            _approve_stale(approval, note=sentence)


SYNC_OUTBOX, START_OUTBOX, EXECUTE_OUTBOX, CANCEL_OUTBOX, WITHDRAW_OUTBOX, APPROVE_OUTBOX = (
    SyncOutbox(), StartOutbox(), ExecuteOutbox(), CancelOutbox(), WithdrawOutbox(), ApproveOutbox())
RECOVERY_OUTBOXES = (SYNC_OUTBOX, START_OUTBOX, EXECUTE_OUTBOX, CANCEL_OUTBOX, WITHDRAW_OUTBOX, APPROVE_OUTBOX)

__all__ = ["APPROVE_OUTBOX", "CANCEL_OUTBOX", "EXECUTE_OUTBOX", "RECOVERY_OUTBOXES", "START_OUTBOX", "SYNC_OUTBOX",
           "WITHDRAW_OUTBOX", "chain_approvals_follow", "pending_chain_approve", "pending_chain_withdrawal",
           "recovery_complete_locked",
           "recovery_due_sweep", "sessions_revoke", "sign_attempt"]
