"""How a wallet's switch to protected mode (:class:`~payments.models.WalletProtection`) is confirmed: its signed
transaction goes through the relayer's outbox like a payment's (kind ``wallet_protect``), and the switch
reacts here: sent -> ``submitted``; landed -> ``confirmed`` (the wallet is protected from then on; sponsorship
settled); failed -> ``failed`` (the wallet stays custodial; a new passkey registration may try again);
never landed past ``expires_at`` -> ``expired``. A passkey-approved change too long for one transaction
continues in ``held`` rows: the next is submitted when one lands, and they fail when one does not
(:mod:`payments.passkey_limits`). Registration of a passkey starts it
(:func:`passkey_registered`, after commit, in the worker: :func:`payments.tasks.wallet_protect`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from numpay.core.solana import Blockhash, SignatureStatus, get_chain_client
from relayer import services as relayer
from relayer.outbox import OutboxKind
from wallets.program import error_sentence

from .models import WalletProtection, WalletProtectionAttempt
from .passkey_limits import fail_held, release_next
from .protection import protection_sign_attempt

Status = WalletProtection.Status


class WalletProtectionOutbox(OutboxKind):
    """Switches to protected mode as an outbox kind (registered in :class:`payments.apps.PaymentsConfig`)."""

    name = "wallet_protect"
    attempt_model = WalletProtectionAttempt
    owner_field = "protection"
    owner_model = WalletProtection

    def in_flight(self) -> QuerySet[WalletProtection]:
        return WalletProtection.objects.filter(status__in=WalletProtection.IN_FLIGHT_STATUSES).order_by("updated_at")

    def lock(self, owner_id: Any) -> WalletProtection | None:
        return (WalletProtection.objects.select_for_update(of=("self",)).select_related("wallet", "wallet__user")
                .filter(pk=owner_id).first())

    def is_open(self, owner: WalletProtection) -> bool:
        return owner.status in WalletProtection.IN_FLIGHT_STATUSES

    def may_renew(self, owner: WalletProtection) -> bool:
        return owner.expires_at > timezone.now()

    def sign_attempt(self, owner: WalletProtection, *, blockhash: Blockhash, number: int) -> WalletProtectionAttempt:
        attempt = protection_sign_attempt(protection=owner, blockhash=blockhash, number=number, reserve=False,
                                          client=get_chain_client())
        owner.signature = attempt.signature
        owner.save(update_fields=["signature", "updated_at"])
        return attempt

    def on_sent(self, owner: WalletProtection, attempt: WalletProtectionAttempt) -> None:
        if owner.status == Status.SIGNED:
            owner.status = Status.SUBMITTED
            owner.save(update_fields=["status", "updated_at"])

    def on_landed(self, owner: WalletProtection, attempt: WalletProtectionAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        owner.status, owner.signature, owner.slot, owner.confirmed_at = (
            Status.CONFIRMED, attempt.signature, status.slot, timezone.now())
        owner.save()
        relayer.sponsorship_settle(reference=owner.id, actual_lamports=fee_payer_cost)
        release_next(owner)  # the next part of a passkey-approved chain, held until this one landed

    def on_failed(self, owner: WalletProtection, attempt: WalletProtectionAttempt, *, err: Any, landed: bool,
                  slot: int | None, fee_payer_cost: int | None) -> None:
        owner.status, owner.signature, owner.slot = Status.FAILED, attempt.signature, slot
        owner.error_message = _explain(err)[:300]
        owner.save()
        if landed:
            relayer.sponsorship_settle(reference=owner.id, actual_lamports=fee_payer_cost)
        else:
            relayer.sponsorship_release(reference=owner.id)
        fail_held(owner)

    def on_expired(self, owner: WalletProtection, attempt: WalletProtectionAttempt) -> None:
        owner.status, owner.error_message = Status.EXPIRED, "The switch could not reach the network in time."
        owner.save()
        relayer.sponsorship_release(reference=owner.id)
        fail_held(owner)

    def touch(self, owner_ids: Iterable[Any]) -> None:
        WalletProtection.objects.filter(pk__in=list(owner_ids), status__in=WalletProtection.IN_FLIGHT_STATUSES) \
            .update(updated_at=timezone.now())

    def stale_count(self, *, older_than: datetime) -> int:
        return WalletProtection.objects.filter(status__in=WalletProtection.IN_FLIGHT_STATUSES,
                                               updated_at__lt=older_than).count()


def _explain(err: Any) -> str:
    """A plain sentence for a failed switch (the program's error sentence when it is one of its codes)."""
    try:
        sentence = error_sentence(int(err["InstructionError"][1]["Custom"]))
    except (KeyError, IndexError, TypeError, ValueError):
        sentence = None
    return sentence or f"The network refused the transaction: {err}"


def passkey_registered(sender: Any, request: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    """allauth's ``authenticator_added`` (the only hook of its passkey registration): after commit, switch the
    user's wallet to protected mode in the worker (chain reads and signing stay out of the request)."""
    if authenticator.type != "webauthn":
        return
    from . import app_settings
    from .tasks import wallet_protect

    if app_settings.protect_on_passkey():
        authenticator_id = authenticator.pk
        transaction.on_commit(lambda: wallet_protect.delay(authenticator_id))
