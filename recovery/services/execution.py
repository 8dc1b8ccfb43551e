"""Executing recoveries (issue 10 item 4): the beat sweep takes requests whose timelock has passed
(``executes_at <= now``) with ``select_for_update(skip_locked=True)``, stores the signed on-chain recovery as
an outbox attempt (:class:`RecoveryOutbox`, :mod:`relayer.outbox`) and moves the request to ``executing`` in
the same transaction, then sends it after commit. When the transaction lands, the account is handed over:
the pending passkey becomes the account's only passkey, the old passkeys and every session are revoked, the
password is made unusable, and the audit record is written. An on-chain failure ends the request ``failed``.

Nothing is lost if the broker or the worker restarts: the sweep reads the database (a request whose send
task was lost is ``executing`` with a stored attempt, which the outbox poller and its sweep pick up), and
the status moves under the row locks, so two sweeps never execute one request twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from allauth.mfa.models import Authenticator
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from solders.pubkey import Pubkey

from numpay.core.solana import Blockhash, ChainClient, SignatureStatus, get_chain_client
from numpay.core.transactions import assemble, compile_message
from relayer import outbox
from relayer import services as relayer
from relayer.outbox import OutboxKind
from wallets.services import wallet_sign

from .. import chain
from ..lock_objects import (
    recovery_request_qs_due_for_update,
    recovery_request_qs_select_for_update,
    wallet_qs_select_for_update,
)
from ..models import RecoveryAttempt, RecoveryRequest
from ..passkeys import passkey_install
from .common import event_record, notify_user

logger = logging.getLogger(__name__)
Status = RecoveryRequest.Status


def recovery_due_sweep(*, now: datetime | None = None, limit: int = 20, client: ChainClient | None = None) -> int:
    """Begin the execution of every request whose timelock has passed (the beat job).

    Each due request is taken ``FOR UPDATE SKIP LOCKED`` (a request another sweep holds is skipped, never
    waited for), then its wallet ``FOR UPDATE SKIP LOCKED`` (never waiting on a lock while holding one, so
    no deadlock with the services that lock wallet then request), and its status is re-read under the lock.

    :returns: how many executions began.
    :raises ChainUnavailableError: no blockhash (nothing changed; the next sweep retries).
    """
    now = now or timezone.now()
    due = list(RecoveryRequest.objects.filter(status=Status.TIMELOCKED, executes_at__lte=now)
               .order_by("executes_at").values_list("pk", flat=True)[:limit])
    if not due:
        return 0
    client = client or get_chain_client()
    blockhash = client.latest_blockhash()
    begun = 0
    for request_id in due:
        with transaction.atomic():
            request = recovery_request_qs_due_for_update().filter(
                pk=request_id, status=Status.TIMELOCKED, executes_at__lte=now).first()
            if request is None:
                continue  # another sweep has it, or it moved on (cancelled, withdrawn below the threshold)
            if not wallet_qs_select_for_update().select_for_update(skip_locked=True).filter(
                    pk=request.wallet_id).exists():
                continue  # a payment or a guardian holds the wallet: next sweep
            request = RecoveryRequest.objects.select_related("user", "wallet").get(pk=request_id)
            recovery_execute_begin_locked(request, blockhash=blockhash, client=client)
            begun += 1
    return begun


def recovery_execute_begin_locked(request: RecoveryRequest, *, blockhash: Blockhash, client: ChainClient) -> None:
    """Move ``request`` to ``executing`` and store its on-chain step (attempt 1), sent after commit; a wallet
    with nothing to change on-chain (:func:`recovery.chain.execution_instructions` is empty) is handed over
    at once. The caller holds the request's and its wallet's row locks."""
    request.status = Status.EXECUTING
    request.save(update_fields=["status", "updated_at"])
    event_record(owner=request.user, request=request, kind="execution_started", actor="system")
    fee_payer = relayer.fee_payer_pubkey()
    if not chain.execution_instructions(request=request, fee_payer=fee_payer, client=client):
        recovery_complete_locked(request, note="no on-chain change needed (keypair wallet)")
        return
    attempt = sign_attempt(request=request, blockhash=blockhash, number=1, reserve=True, client=client)
    request.signature = attempt.signature
    request.save(update_fields=["signature", "updated_at"])
    outbox.enqueue_send(RECOVERY_OUTBOX, request.pk)


def sign_attempt(*, request: RecoveryRequest, blockhash: Blockhash, number: int, reserve: bool,
                 client: ChainClient | None = None) -> RecoveryAttempt:
    """Compile, validate and co-sign (relayer: the account's sponsorship budget, reference = the request id),
    sign (custody key) and store one attempt of the request's on-chain recovery.

    :raises ApplicationError: the relayer's refusals (``transaction_not_allowed``, ...).
    """
    fee_payer = relayer.fee_payer_pubkey()
    instructions = chain.execution_instructions(request=request, fee_payer=fee_payer, client=client or get_chain_client())
    message = compile_message(instructions=instructions, fee_payer=fee_payer, blockhash=blockhash.blockhash)
    cosigned = relayer.relayer_cosign(user=request.user, message=message, reference=request.id, reserve=reserve)
    signatures = {fee_payer: cosigned.signature}
    custody_key = Pubkey.from_string(request.wallet.signing_address)
    if custody_key in message.account_keys[:message.header.num_required_signatures]:
        signatures[custody_key] = wallet_sign(wallet=request.wallet, message=bytes(message))
    tx = assemble(message=message, signatures=signatures)
    return RecoveryAttempt.objects.create(
        request=request, number=number, signed_transaction=bytes(tx), signature=str(tx.signatures[0]),
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


class RecoveryOutbox(OutboxKind):
    """Recovery executions as an outbox kind (registered in :class:`recovery.apps.RecoveryConfig`)."""

    name = "recovery"
    attempt_model = RecoveryAttempt
    owner_field = "request"
    owner_model = RecoveryRequest

    def in_flight(self) -> QuerySet[RecoveryRequest]:
        return RecoveryRequest.objects.filter(status=Status.EXECUTING).order_by("updated_at")

    def lock(self, owner_id: Any) -> RecoveryRequest | None:
        wallet_id = RecoveryRequest.objects.filter(pk=owner_id).values_list("wallet_id", flat=True).first()
        if wallet_id is None:
            return None
        wallet_qs_select_for_update().filter(pk=wallet_id).exists()
        return recovery_request_qs_select_for_update().select_related("user", "wallet").filter(pk=owner_id).first()

    def is_open(self, owner: RecoveryRequest) -> bool:
        return owner.status == Status.EXECUTING

    def sign_attempt(self, owner: RecoveryRequest, *, blockhash: Blockhash, number: int) -> RecoveryAttempt:
        attempt = sign_attempt(request=owner, blockhash=blockhash, number=number, reserve=False)
        owner.signature = attempt.signature
        owner.save(update_fields=["signature", "updated_at"])
        return attempt

    def on_landed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        relayer.sponsorship_settle(reference=owner.id, actual_lamports=fee_payer_cost)
        recovery_complete_locked(owner, note=f"on-chain recovery landed at slot {status.slot} ({attempt.signature})")

    def on_failed(self, owner: RecoveryRequest, attempt: RecoveryAttempt, *, err: Any, landed: bool,
                  slot: int | None, fee_payer_cost: int | None) -> None:
        if landed:
            relayer.sponsorship_settle(reference=owner.id, actual_lamports=fee_payer_cost)
        else:
            relayer.sponsorship_release(reference=owner.id)
        sentence = chain.explain_error(err) or "The network refused the recovery."
        owner.status, owner.ended_at, owner.end_reason, owner.error_detail = (
            Status.FAILED, timezone.now(), sentence[:255], err)
        owner.save()
        event_record(owner=owner.user, request=owner, kind="request_failed", actor="system", note=sentence)
        logger.warning("recovery %s failed on-chain: %s", owner.pk, err)

    def on_expired(self, owner: RecoveryRequest, attempt: RecoveryAttempt) -> None:  # pragma: no cover
        raise AssertionError("recovery attempts are always renewed (may_renew is True)")

    def touch(self, owner_ids: Iterable[Any]) -> None:
        RecoveryRequest.objects.filter(pk__in=list(owner_ids), status=Status.EXECUTING).update(
            updated_at=timezone.now())

    def stale_count(self, *, older_than: datetime) -> int:
        return RecoveryRequest.objects.filter(status=Status.EXECUTING, updated_at__lt=older_than).count()


RECOVERY_OUTBOX = RecoveryOutbox()

__all__ = ["RECOVERY_OUTBOX", "RecoveryOutbox", "recovery_complete_locked",
           "recovery_due_sweep", "sessions_revoke", "sign_attempt"]
