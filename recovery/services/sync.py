"""Writing an owner's guardians and recovery rules into their wallet's on-chain config (issue 10 item 1: "the
guardian set is written on-chain"), as soon as a change takes effect.

A change (a guardian activated or removed, new rules) marks the owner's :class:`~recovery.models.RecoverySetup`
``chain_sync = pending`` and bumps its version, in the transaction of the change. The beat sweep
(:func:`guardian_sync_sweep`) then writes the difference (:func:`recovery.chain.guardian_sync_instructions`:
``set_settings``, ``add_authority`` / ``remove_authority`` of guardian passkeys, the config created if needed),
signed by the custody key, through the relayer's outbox (:class:`GuardianSyncOutbox`). An attempt that lands
for an older version leaves the setup pending, so the latest change is always written. In protected mode the
custody key cannot manage the wallet: the same outbox kind carries the owner's passkey-approved
``guardians_propose`` / ``guardians_cancel`` and, once due, the permissionless ``guardians_apply``
(:mod:`recovery.services.onchain_guardians`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from solders.pubkey import Pubkey

from numpay.core.errors import ApplicationError, ChainRequestError, ChainUnavailableError
from numpay.core.solana import Blockhash, ChainClient, SignatureStatus, get_chain_client
from numpay.core.transactions import assemble, compile_message, message_signers
from relayer import outbox
from relayer import services as relayer
from relayer.outbox import OutboxKind
from wallets.lock_objects import wallet_qs_select_for_update
from wallets.models import Wallet
from wallets.program import ProgramErrorCode
from wallets.services import wallet_sign
from wallets.smart import wallet_config_read

from .. import chain
from ..models import Guardian, GuardianSyncAttempt, RecoverySetup
from . import onchain_guardians
from .common import event_record

logger = logging.getLogger(__name__)
Sync = RecoverySetup.ChainSync
MAX_TRANSACTION_BYTES = 1232


def sync_mark_locked(setup: RecoverySetup) -> None:
    """Ask for the owner's guardians and rules to be written on-chain (the caller holds the wallet lock)."""
    RecoverySetup.objects.filter(pk=setup.pk).update(chain_sync_version=F("chain_sync_version") + 1,
                                                     chain_sync=Sync.PENDING)


def _wanted(setup: RecoverySetup) -> tuple[list[bytes], int]:
    active = list(Guardian.objects.filter(owner_id=setup.user_id, status=Guardian.Status.ACTIVE)
                  .values_list("authority_key", flat=True))
    from .guardians import threshold_of

    return [bytes(key) for key in active], (threshold_of(setup=setup, guardian_count=len(active)) if active else 0)


def _instructions(setup: RecoverySetup, wallet: Wallet, *, client: ChainClient) -> list[Any]:
    keys, threshold = _wanted(setup)
    config = wallet_config_read(client=client, wallet=wallet)
    return chain.guardian_sync_instructions(wallet=wallet, config=config, guardian_keys=keys, threshold=threshold,
                                            timelock_seconds=setup.timelock_seconds,
                                            fee_payer=relayer.fee_payer_pubkey())


def guardian_sync_sweep(*, client: ChainClient | None = None, limit: int = 20) -> int:
    """Write every pending guardian set (the beat job). Each owner's wallet row is taken ``FOR UPDATE SKIP
    LOCKED``; the setup is re-read under it.

    :returns: how many syncs were sent.
    :raises ChainUnavailableError: the chain could not be read (nothing changed; the next sweep retries).
    """
    # protected mode: a proposal on-chain whose effective_at has passed (or is not read yet) is due to apply
    RecoverySetup.objects.filter(chain_sync=Sync.NONE, chain_change_step=RecoverySetup.ChainChangeStep.APPLY).filter(
        Q(chain_change_effective_at__isnull=True) | Q(chain_change_effective_at__lte=timezone.now())).update(
        chain_sync=Sync.PENDING)
    _cancelled_follow_chain(client=client, limit=limit)
    pending = list(RecoverySetup.objects.filter(chain_sync=Sync.PENDING).values_list("pk", "user_id")[:limit])
    if not pending:
        return 0
    client = client or get_chain_client()
    blockhash = client.latest_blockhash()
    sent = 0
    for setup_id, user_id in pending:
        with transaction.atomic():
            wallet = wallet_qs_select_for_update().select_for_update(skip_locked=True).filter(user_id=user_id).first()
            setup = RecoverySetup.objects.select_for_update().filter(pk=setup_id, chain_sync=Sync.PENDING).first()
            if setup is None or (wallet is None and Wallet.objects.filter(user_id=user_id).exists()):
                continue  # done meanwhile, or the wallet is busy: next sweep
            if wallet is None or not chain.is_on_chain(wallet):
                setup.chain_sync = Sync.NONE  # a keypair wallet has nothing on-chain
                setup.save(update_fields=["chain_sync", "updated_at"])
                continue
            try:
                with transaction.atomic():
                    if _begin(setup, wallet, blockhash=blockhash, client=client):
                        sent += 1
            except (ChainUnavailableError, ChainRequestError):
                raise
            except (ValueError, ApplicationError) as error:
                sentence = getattr(error, "message", None) or str(error)
                if setup.chain_change_step:
                    onchain_guardians.change_failed_locked(setup, sentence=sentence)
                    continue
                setup.chain_sync, setup.chain_sync_error = Sync.FAILED, sentence[:255]
                setup.save(update_fields=["chain_sync", "chain_sync_error", "updated_at"])
                event_record(owner=setup.user, kind="guardians_sync_failed", actor="system", note=setup.chain_sync_error)
    return sent


def _cancelled_follow_chain(*, client: ChainClient | None, limit: int) -> None:
    """Reconcile the owners with guardians cancelled here while a proposal with them may still be applied
    on-chain (:func:`recovery.services.onchain_guardians.cancelled_follow_chain`), when no change of theirs is
    under way; each wallet row ``FOR UPDATE SKIP LOCKED``."""
    owners = list(Guardian.objects.filter(status=Guardian.Status.CANCELLED, change_on_chain=True).values_list(
        "owner_id", flat=True).distinct()[:limit])
    setups = RecoverySetup.objects.filter(user_id__in=owners, chain_change_step=RecoverySetup.ChainChangeStep.NONE,
                                          chain_sync__in=(Sync.NONE, Sync.FAILED))
    for setup_id, user_id in setups.values_list("pk", "user_id"):
        client = client or get_chain_client()
        with transaction.atomic():
            wallet = wallet_qs_select_for_update().select_for_update(skip_locked=True).filter(user_id=user_id).first()
            setup = RecoverySetup.objects.select_for_update().select_related("user").filter(
                pk=setup_id, chain_change_step=RecoverySetup.ChainChangeStep.NONE,
                chain_sync__in=(Sync.NONE, Sync.FAILED)).first()
            if wallet is None or setup is None or not chain.is_on_chain(wallet):
                continue
            onchain_guardians.cancelled_follow_chain(setup, wallet, client=client)


def _instructions_now(setup: RecoverySetup, wallet: Wallet, *, client: ChainClient) -> list[Any]:
    """The sync's instructions: custodial mode: the custody key's diff; protected mode (the custody key holds no
    ``manage``): the next step of the owner-approved guardian change, if any."""
    if setup.chain_change_step or not chain.custody_manages(client=client, wallet=wallet):
        return onchain_guardians.change_instructions(setup, wallet, client=client)
    return _instructions(setup, wallet, client=client)


def _begin(setup: RecoverySetup, wallet: Wallet, *, blockhash: Blockhash, client: ChainClient) -> bool:
    if not _instructions_now(setup, wallet, client=client):
        setup.chain_sync, setup.chain_synced_version = Sync.NONE, setup.chain_sync_version
        setup.save(update_fields=["chain_sync", "chain_synced_version", "updated_at"])
        return False
    setup.chain_sync, setup.chain_sync_reference, setup.chain_sync_error = Sync.IN_FLIGHT, uuid.uuid4(), ""
    setup.save(update_fields=["chain_sync", "chain_sync_reference", "chain_sync_error", "updated_at"])
    _sign(setup, wallet, blockhash=blockhash, number=1, reserve=True, client=client)
    event_record(owner=setup.user, kind="guardians_sync_submitted", actor="system",
                 note=f"version {setup.chain_sync_version}")
    outbox.enqueue_send(GUARDIAN_SYNC_OUTBOX, setup.pk)
    return True


def _sign(setup: RecoverySetup, wallet: Wallet, *, blockhash: Blockhash, number: int, reserve: bool,
          client: ChainClient) -> GuardianSyncAttempt:
    fee_payer = relayer.fee_payer_pubkey()
    message = compile_message(instructions=_instructions_now(setup, wallet, client=client), fee_payer=fee_payer,
                              blockhash=blockhash.blockhash)
    if not message.instructions:
        raise ValueError("nothing to write on-chain")
    cosigned = relayer.relayer_cosign(user=setup.user, message=message, reference=setup.chain_sync_reference,
                                      reserve=reserve)
    custody = Pubkey.from_string(wallet.signing_address)
    signatures = {fee_payer: cosigned.signature}
    if custody in message_signers(message):  # custodial mode; protected-mode steps need only the fee payer
        signatures[custody] = wallet_sign(wallet=wallet, message=bytes(message))
    tx = assemble(message=message, signatures=signatures)
    if len(bytes(tx)) > MAX_TRANSACTION_BYTES:
        raise ValueError(f"the guardian sync is {len(bytes(tx))} bytes, above Solana's {MAX_TRANSACTION_BYTES}")
    return GuardianSyncAttempt.objects.create(
        setup=setup, reference=setup.chain_sync_reference, version=setup.chain_sync_version, number=number,
        signed_transaction=bytes(tx), signature=str(tx.signatures[0]), blockhash=str(blockhash.blockhash),
        last_valid_block_height=blockhash.last_valid_block_height)


class GuardianSyncOutbox(OutboxKind):
    """Guardian syncs as an outbox kind; an owner's attempts are those of its current sync (``reference``)."""

    name = "guardian_sync"
    attempt_model = GuardianSyncAttempt
    owner_field = "setup"
    owner_model = RecoverySetup

    def in_flight(self) -> QuerySet[RecoverySetup]:
        return RecoverySetup.objects.filter(chain_sync=Sync.IN_FLIGHT).order_by("updated_at")

    def lock(self, owner_id: Any) -> RecoverySetup | None:
        user_id = RecoverySetup.objects.filter(pk=owner_id).values_list("user_id", flat=True).first()
        if user_id is None:
            return None
        wallet_qs_select_for_update().filter(user_id=user_id).exists()
        return RecoverySetup.objects.select_for_update().select_related("user").filter(pk=owner_id).first()

    def is_open(self, owner: RecoverySetup) -> bool:
        return owner.chain_sync == Sync.IN_FLIGHT

    def attempts(self, owners: Any) -> QuerySet[Any]:
        return super().attempts(owners).filter(reference=F("setup__chain_sync_reference"))

    def latest_attempt(self, owner: Any) -> GuardianSyncAttempt | None:
        return GuardianSyncAttempt.objects.filter(setup=owner, reference=owner.chain_sync_reference).order_by(
            "-number").first()

    def sign_attempt(self, owner: RecoverySetup, *, blockhash: Blockhash, number: int) -> GuardianSyncAttempt:
        return _sign(owner, Wallet.objects.get(user_id=owner.user_id), blockhash=blockhash, number=number,
                     reserve=False, client=get_chain_client())

    def on_landed(self, owner: RecoverySetup, attempt: GuardianSyncAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        relayer.sponsorship_settle(reference=attempt.reference, actual_lamports=fee_payer_cost)
        owner.chain_synced_version = attempt.version
        owner.chain_sync = Sync.PENDING if owner.chain_sync_version > attempt.version else Sync.NONE
        owner.save(update_fields=["chain_synced_version", "chain_sync", "updated_at"])
        if owner.chain_change_step:
            onchain_guardians.change_landed_locked(owner)
        event_record(owner=owner.user, kind="guardians_synced", actor="system",
                     note=f"version {attempt.version} at slot {status.slot}")

    def on_failed(self, owner: RecoverySetup, attempt: GuardianSyncAttempt, *, err: Any, landed: bool,
                  slot: int | None, fee_payer_cost: int | None) -> None:
        if landed:
            relayer.sponsorship_settle(reference=attempt.reference, actual_lamports=fee_payer_cost)
        else:
            relayer.sponsorship_release(reference=attempt.reference)
        sentence = chain.explain_error(err) or "The network refused the guardian update."
        step = owner.chain_change_step
        if step == RecoverySetup.ChainChangeStep.APPLY and chain.error_code(err) == (
                ProgramErrorCode.GUARDIAN_CHANGE_NOT_READY):
            owner.chain_sync = Sync.NONE  # the chain's clock is behind ours: the sweep applies it again later
            owner.save(update_fields=["chain_sync", "updated_at"])
            return
        if step:
            onchain_guardians.change_failed_locked(owner, sentence=sentence)
            return
        owner.chain_sync, owner.chain_sync_error = Sync.FAILED, sentence[:255]
        owner.save(update_fields=["chain_sync", "chain_sync_error", "updated_at"])
        event_record(owner=owner.user, kind="guardians_sync_failed", actor="system", note=sentence)

    def on_expired(self, owner: RecoverySetup, attempt: GuardianSyncAttempt) -> None:  # pragma: no cover
        raise AssertionError("guardian sync attempts are always renewed (may_renew is True)")

    def touch(self, owner_ids: Iterable[Any]) -> None:
        RecoverySetup.objects.filter(pk__in=list(owner_ids), chain_sync=Sync.IN_FLIGHT).update(updated_at=timezone.now())

    def stale_count(self, *, older_than: datetime) -> int:
        return RecoverySetup.objects.filter(chain_sync=Sync.IN_FLIGHT, updated_at__lt=older_than).count()


GUARDIAN_SYNC_OUTBOX = GuardianSyncOutbox()
