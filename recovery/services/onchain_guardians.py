"""Guardian changes of a wallet in protected mode, written on-chain (issue 10: "the guardian set is written
on-chain"; docs/wallet-program.md "12–14 Guardian changes").

In protected mode the custody key holds no ``manage``: only the owner's passkey can change the wallet's
guardians. Each change is one owner-passkey approval of the program's delayed ``guardians_propose`` of the
whole **wanted set** (:func:`wanted_set`: active guardians without a removal asked, plus additions the owner
confirmed, with this change applied), at the config's nonce read from the chain:

- **addition**: a guardian who accepts stays ``pending`` (``change_on_chain``) and the owner is asked (email,
  the guardians page, the API's ``needs_owner_confirmation``) to confirm with their passkey
  (:func:`guardian_change_options` / :func:`guardian_confirm`);
- **removal**: the owner's removal ceremony signs the proposal of the set without that guardian
  (:func:`guardian_remove_on_chain`); until it is applied the guardian still counts;
- **cancel** of a pending change: ``guardians_apply`` is permissionless, so a change written on-chain can only
  be stopped there by the owner's passkey: the ceremony signs ``guardians_cancel`` of the pending proposal
  when the remaining wanted set is what the chain holds, else a new ``guardians_propose`` of the remaining
  set (which replaces the pending one). A session alone is refused ``guardian_cancel_passkey_required``;
- **rules** (threshold, timelock): the owner's settings ceremony signs a passkey-approved ``set_settings``
  (:func:`settings_options`; the guardian threshold for the guardians on-chain now, the timelock and the
  guardian change delay; RP ID hash and joint threshold kept), refused ``guardian_change_in_flight`` while a
  guardian change is under way (its proposal carries its own threshold, computed from the rules when it was
  approved).

The approval is stored on the owner's :class:`~recovery.models.RecoverySetup` (``chain_change_step`` =
``propose`` / ``cancel``) in the transaction of the change, and the beat sweep
(:func:`recovery.services.sync.guardian_sync_sweep`) sends it through the relayer's outbox (outbox kind
``guardian_sync``: stored before it is sent, re-sent, never two live attempts). When the proposal lands the
step becomes ``apply``: the sweep reads the chain's ``effective_at`` (``change_effective_at`` of the
guardians concerned) and, once it has passed, sends ``guardians_apply`` (only the fee payer signs); when that
lands the confirmed additions become ``active`` and the removed guardians ``removed``
(:func:`apply_landed_locked`). A refused or stale approval ends the step ``failed`` and the owner is asked
again; the next change re-proposes the whole wanted set, so the chain converges to it.

Limits: the delay is the chain's ``guardian_change_delay``, written when the wallet switches to protected mode
(:func:`payments.protection.protection_instructions`) or by a custodial sync; a wallet protected before that
field existed has 0 there (its changes apply at once) until the owner's next settings ceremony writes it.
A cancel of a change the chain already holds (step ``apply``) changes the database only once it lands (until
then the owner sees "cancelling", :func:`cancelling_of`); a refused one leaves the change pending, as on-chain,
and the owner is told to cancel again. The sweep reconciles guardians cancelled here while a proposal with
them may still be applied on-chain (:func:`cancelled_follow_chain`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from solders.instruction import Instruction

from numpay.core.errors import ApplicationError
from numpay.core.solana import ChainClient, get_chain_client
from wallets.models import Wallet
from wallets.smart import wallet_config_read

from .. import chain
from ..models import Guardian, RecoverySetup
from ..passkeys import assertion_verify, authenticator_key, request_options
from .common import event_record, locked_wallet, notify_user, public_url

Sync = RecoverySetup.ChainSync
Step = RecoverySetup.ChainChangeStep
#: How long the owner has to answer a guardian change challenge, and how long its approval stays good (s).
CHANGE_TTL_SECONDS = 600
PURPOSES = ("confirm", "remove", "cancel")


def is_protected(*, wallet: Any, client: ChainClient | None = None) -> bool:
    """Whether ``wallet``'s guardians are changed on-chain by the owner's passkey: a smart wallet whose custody
    key does not hold ``manage`` on-chain (protected mode).

    :raises ChainUnavailableError: the chain could not be read.
    """
    return bool(wallet is not None and chain.is_on_chain(wallet)
                and not chain.custody_manages(client=client or get_chain_client(), wallet=wallet))


def wanted_set(*, owner: Any, setup: RecoverySetup, include: Any = None, exclude: Any = None) -> tuple[list[str], int]:
    """The guardian set the wallet should hold: active guardians without a removal asked and additions the
    owner confirmed, plus the guardian ``include`` and minus ``exclude`` (ids), in the order they joined.

    :returns: ``(hex keys, threshold)``; the threshold is the owner's m (or a majority) capped at the count,
        0 without guardians.
    """
    keys = []
    for guardian in Guardian.objects.filter(owner=owner, status__in=(Guardian.Status.PENDING, Guardian.Status.ACTIVE)
                                            ).order_by("created_at", "id"):
        if guardian.pk == exclude:
            continue
        counted = (guardian.pk == include
                   or (guardian.status == Guardian.Status.ACTIVE and guardian.removal_requested_at is None)
                   or (guardian.status == Guardian.Status.PENDING and guardian.owner_confirmed_at is not None))
        if counted:
            keys.append(bytes(guardian.authority_key).hex())
    if not keys:
        return [], 0
    from .guardians import threshold_of

    return keys, min(threshold_of(setup=setup, guardian_count=len(keys)), len(keys))


def _terms_key(owner: Any, purpose: str, guardian_id: Any) -> str:
    return f"recovery:guardian-change-terms:{owner.pk}:{purpose}:{guardian_id}"


def _target(*, owner: Any, purpose: str, guardian_id: Any, lock: bool = False) -> tuple[Guardian, dict[str, Any]]:
    """The guardian a ``purpose`` ceremony is about and how it changes the wanted set (``include`` /
    ``exclude``).

    :raises ApplicationError: ``guardian_not_found``, ``guardian_confirmation_not_needed``,
        ``guardian_change_pending``, ``guardian_change_not_pending``.
    """
    queryset = Guardian.objects.select_for_update() if lock else Guardian.objects
    guardian = queryset.filter(owner=owner, pk=guardian_id, status__in=(Guardian.Status.PENDING,
                                                                        Guardian.Status.ACTIVE)).first()
    if guardian is None or purpose not in PURPOSES:
        raise ApplicationError("guardian_not_found")
    pending = guardian.status == Guardian.Status.PENDING
    if purpose == "confirm":
        if not (pending and guardian.change_on_chain and guardian.owner_confirmed_at is None):
            raise ApplicationError("guardian_confirmation_not_needed")
        return guardian, {"include": guardian.pk}
    if purpose == "remove":
        if not pending and guardian.removal_requested_at is not None:
            raise ApplicationError("guardian_change_pending")
        return guardian, {"exclude": guardian.pk}
    if pending:  # cancel an addition
        return guardian, {"exclude": guardian.pk}
    if guardian.removal_requested_at is None:
        raise ApplicationError("guardian_change_not_pending")
    return guardian, {"include": guardian.pk}  # cancel a removal


def _change_terms(*, wallet: Wallet, keys: list[str], threshold: int, client: ChainClient) -> dict[str, Any]:
    """What the owner's passkey signs to make the chain's guardian set ``keys`` / ``threshold``: a
    ``guardians_cancel`` of the pending proposal when the chain already holds that set, else a
    ``guardians_propose`` of it; bound to the config's nonce now.

    :raises ChainUnavailableError: the chain could not be read.
    """
    config = wallet_config_read(client=client, wallet=wallet)
    if config is None:
        raise ApplicationError("wallet_not_found")
    terms: dict[str, Any] = {"action": "propose", "keys": keys, "threshold": threshold, "nonce": config.nonce,
                             "expires_at": int(timezone.now().timestamp()) + CHANGE_TTL_SECONDS}
    on_chain, on_chain_threshold = chain.chain_guardians(config)
    if config.guardian_change_pending and on_chain == {bytes.fromhex(key) for key in keys} and (
            on_chain_threshold == threshold):
        terms.update(action="cancel", hash=bytes(config.guardian_change_hash).hex())
    return terms


def guardian_change_options(*, owner: Any, purpose: str, guardian_id: Any) -> dict[str, Any]:
    """WebAuthn request options for the owner's passkey to approve one guardian change of a protected wallet
    on-chain: ``purpose`` ``confirm`` (an accepted guardian's addition), ``remove`` or ``cancel`` (a pending
    change). The challenge is the program's approval challenge of the ``guardians_propose`` (or
    ``guardians_cancel``) that makes the chain's guardian set the wanted one after this change; its terms are
    kept for ``CHANGE_TTL_SECONDS``.

    :raises ApplicationError: the refusals of :func:`_target`, ``guardian_change_in_flight``,
        ``passkey_required``, ``wallet_not_found``.
    :raises ChainUnavailableError: the config could not be read.
    """
    guardian, change = _target(owner=owner, purpose=purpose, guardian_id=guardian_id)
    setup = _setup(owner)
    if setup.chain_sync == Sync.IN_FLIGHT or cancelling_of(setup):
        raise ApplicationError("guardian_change_in_flight")
    wallet = Wallet.objects.get(user=owner)
    keys, threshold = wanted_set(owner=owner, setup=setup, **change)
    terms = _change_terms(wallet=wallet, keys=keys, threshold=threshold, client=get_chain_client())
    cache.set(_terms_key(owner, purpose, guardian.pk), terms, CHANGE_TTL_SECONDS)
    return request_options(user=owner, challenge=chain.change_challenge(wallet, terms))


def _setup(owner: Any) -> RecoverySetup:
    from .guardians import recovery_setup

    return recovery_setup(user=owner)


def _approval(*, owner: Any, purpose: str, guardian_id: Any, credential: Any) -> dict[str, Any]:
    """The owner's verified assertion over the stored terms (single use).

    :raises ApplicationError: ``owner_passkey_required``, ``passkey_required``, ``passkey_assertion_invalid``.
    """
    if not credential:
        raise ApplicationError("owner_passkey_required")
    key = _terms_key(owner, purpose, guardian_id)
    terms = cache.get(key)
    if terms is None:
        raise ApplicationError("owner_passkey_required")
    wallet = Wallet.objects.get(user=owner)
    assertion = assertion_verify(user=owner, challenge=chain.change_challenge(wallet, terms), credential=credential)
    if not cache.delete(key):  # single use: a concurrent use of the same challenge lost
        raise ApplicationError("owner_passkey_required")
    return {**terms, "public_key": authenticator_key(assertion.authenticator).hex(),
            "authenticator_data": assertion.authenticator_data.hex(),
            "client_data_json": assertion.client_data_json.hex(), "signature": assertion.signature.hex()}


def guardian_change_approve(*, owner: Any, purpose: str, guardian_id: Any, credential: Any) -> Guardian:
    """Carry out a guardian change of a protected wallet approved by the owner's passkey over
    :func:`guardian_change_options`' challenge, and store the approval for the sweep to send on-chain:

    - ``confirm``: the guardian's addition is confirmed (it becomes active when ``guardians_apply`` lands);
    - ``remove``: an active guardian's removal is asked (it counts until applied); a pending one is cancelled;
    - ``cancel``: a pending addition is cancelled, or a removal asked is withdrawn.

    :raises ApplicationError: the refusals of :func:`_target` and :func:`_approval`,
        ``guardian_change_in_flight``, ``recovery_threshold_invalid``, ``owner_passkey_required`` (the guardians
        changed since the challenge: confirm again).
    """
    approval = _approval(owner=owner, purpose=purpose, guardian_id=guardian_id, credential=credential)
    now = timezone.now()
    with transaction.atomic():
        locked_wallet(user=owner)
        guardian, change = _target(owner=owner, purpose=purpose, guardian_id=guardian_id, lock=True)
        setup = RecoverySetup.objects.select_for_update().get(pk=_setup(owner).pk)
        if setup.chain_sync == Sync.IN_FLIGHT or cancelling_of(setup):
            raise ApplicationError("guardian_change_in_flight")
        if wanted_set(owner=owner, setup=setup, **change) != (approval["keys"], approval["threshold"]):
            raise ApplicationError("owner_passkey_required", "Your guardians changed meanwhile: confirm again "
                                                             "with your passkey.")
        if purpose == "remove" and guardian.status == Guardian.Status.ACTIVE and setup.threshold and (
                len(approval["keys"]) < setup.threshold):
            raise ApplicationError("recovery_threshold_invalid", f"Lower your threshold first: {len(approval['keys'])}"
                                   f" guardians would remain for {setup.threshold} approvals.")
        if _cancels_chain_proposal(setup, guardian, purpose):
            # the chain holds a proposal with this change and anyone may apply it once due: the database
            # cancels it only when the owner's cancel (or re-proposal) lands (:func:`change_landed_locked`)
            approval = {**approval, "cancel_of": {"guardian": str(guardian.pk), "purpose": purpose},
                        "previous_change": setup.chain_change}
            kind = "guardian_change_cancel_requested"
        else:
            kind = _apply_ceremony_locked(guardian, purpose=purpose, now=now)
        _store_locked(setup, approval)
        event_record(owner=owner, guardian=guardian, kind=kind, actor="owner", actor_user=owner,
                     note=f"on-chain {approval['action']} at nonce {approval['nonce']}")
    return guardian


def _cancels_chain_proposal(setup: RecoverySetup, guardian: Guardian, purpose: str) -> bool:
    """Whether this ceremony undoes a change the chain already holds as its pending proposal (step ``apply``):
    a cancel, or the removal of a confirmed pending addition."""
    if setup.chain_change_step != Step.APPLY:
        return False
    return purpose == "cancel" or (purpose == "remove" and guardian.status == Guardian.Status.PENDING
                                   and guardian.owner_confirmed_at is not None)


def cancelling_of(setup: RecoverySetup) -> str | None:
    """The id (str) of the guardian whose change the owner cancelled with their passkey and whose cancel has not
    landed on-chain yet (the owner sees "cancelling"), else ``None``."""
    approval = setup.chain_change_approval or {}
    return (approval.get("cancel_of") or {}).get("guardian")


def _apply_ceremony_locked(guardian: Guardian, *, purpose: str, now: datetime) -> str:
    """The database side of an approved change (the caller holds the wallet lock). :returns: the event kind."""
    if purpose == "confirm":
        guardian.owner_confirmed_at = now
        guardian.save(update_fields=["owner_confirmed_at"])
        return "guardian_confirmed"
    if guardian.status == Guardian.Status.PENDING:  # remove or cancel a pending addition
        guardian.status, guardian.removed_at, guardian.change_effective_at = Guardian.Status.CANCELLED, now, None
        guardian.save(update_fields=["status", "removed_at", "change_effective_at"])
        return "guardian_addition_cancelled"
    if purpose == "remove":
        guardian.removal_requested_at, guardian.change_on_chain, guardian.change_effective_at = now, True, None
        guardian.save(update_fields=["removal_requested_at", "change_on_chain", "change_effective_at"])
        notify_user(user=guardian.owner, subject="A guardian will be removed from your Numpay account", body=(
            f"{guardian.guardian_user.email} stops being your guardian once the waiting time written on your "
            f"wallet has passed. Not you? Cancel it with your passkey: {public_url('/recovery/guardians/')}\n"))
        return "guardian_removal_requested"
    guardian.removal_requested_at = guardian.change_effective_at = None
    guardian.change_on_chain = False
    guardian.save(update_fields=["removal_requested_at", "change_effective_at", "change_on_chain"])
    return "guardian_removal_cancelled"


def _store_locked(setup: RecoverySetup, approval: dict[str, Any]) -> None:
    """Keep the owner's approval for the sweep (``chain_change_step`` propose / cancel) and ask for a sync."""
    setup.chain_change_step = Step.CANCEL if approval["action"] == "cancel" else Step.PROPOSE
    if setup.chain_change_step == Step.PROPOSE:
        setup.chain_change = {"keys": approval["keys"], "threshold": approval["threshold"]}
    setup.chain_change_approval, setup.chain_change_effective_at, setup.chain_sync_error = approval, None, ""
    setup.chain_sync = Sync.PENDING
    setup.chain_sync_version = F("chain_sync_version") + 1
    setup.save(update_fields=["chain_change_step", "chain_change", "chain_change_approval",
                              "chain_change_effective_at", "chain_sync", "chain_sync_version", "chain_sync_error",
                              "updated_at"])
    setup.refresh_from_db()


def change_instructions(setup: RecoverySetup, wallet: Wallet, *, client: ChainClient,
                        now: datetime | None = None) -> list[Instruction]:
    """The next on-chain step of a protected wallet's guardian change, or ``[]`` when there is nothing to send
    now (no change; the proposal's delay has not passed: its ``effective_at`` is recorded on the setup and on
    the guardians concerned).

    :raises ValueError: the owner's approval can no longer land (the nonce moved, it expired), the chain
        does not hold the proposal to apply, or (no change under way) the chain's guardians are not the active
        ones here (a guardian activated by the clock before the wallet went protected: shown as ``failed``).
    :raises ChainUnavailableError: the chain could not be read.
    """
    now = now or timezone.now()
    step = setup.chain_change_step
    config = wallet_config_read(client=client, wallet=wallet)
    if step == Step.NONE:
        active = {bytes(key) for key in Guardian.objects.filter(owner_id=setup.user_id, status=Guardian.Status.ACTIVE)
                  .values_list("authority_key", flat=True)}
        if active != chain.chain_guardians(config)[0]:  # e.g. activated by the clock before protected mode
            raise ValueError("Your guardians on your wallet differ from your guardians here: only your passkey can "
                             "change them on the wallet now (remove and invite them again).")
        return []
    if config is None:
        raise ValueError("the wallet's config is not on-chain")
    if step in (Step.PROPOSE, Step.CANCEL, Step.SETTINGS):
        approval = setup.chain_change_approval
        if config.nonce != approval["nonce"] or approval["expires_at"] <= int(now.timestamp()):
            raise ValueError("Your passkey approval of the guardian change can no longer be used (the wallet "
                             "changed or it expired): confirm again.")
        return chain.change_instructions(wallet=wallet, approval=approval)
    keys = [bytes.fromhex(key) for key in setup.chain_change["keys"]]
    threshold = setup.chain_change["threshold"]
    if not config.guardian_change_pending or bytes(config.guardian_change_hash) != chain.change_hash(keys, threshold):
        raise ValueError(_dropped_reason(setup))
    effective_at = datetime.fromtimestamp(config.guardian_change_effective_at, tz=UTC)
    if setup.chain_change_effective_at != effective_at:
        setup.chain_change_effective_at = effective_at
        setup.save(update_fields=["chain_change_effective_at", "updated_at"])
        Guardian.objects.filter(owner_id=setup.user_id, change_on_chain=True, status=Guardian.Status.PENDING,
                                owner_confirmed_at__isnull=False).update(change_effective_at=effective_at)
        Guardian.objects.filter(owner_id=setup.user_id, change_on_chain=True, status=Guardian.Status.ACTIVE,
                                removal_requested_at__isnull=False).update(change_effective_at=effective_at)
    if effective_at > now:
        return []
    return chain.apply_instructions(wallet=wallet, keys=keys, threshold=threshold)


def _dropped_reason(setup: RecoverySetup) -> str:
    """Why the chain no longer holds the proposed change of ``setup``, in plain words: a recovery of the wallet
    executed since it was proposed (``recovery_execute`` clears a pending guardian change, docs/wallet-program.md),
    or some other change replaced it."""
    from ..models import RecoveryEvent, RecoveryRequest

    proposed = RecoveryEvent.objects.filter(owner_id=setup.user_id, kind="guardians_proposed_on_chain").order_by(
        "-created_at").values_list("created_at", flat=True).first()
    recovered = RecoveryRequest.objects.filter(user_id=setup.user_id, status=RecoveryRequest.Status.EXECUTED)
    if proposed is not None:
        recovered = recovered.filter(ended_at__gte=proposed)
    if recovered.exists():
        return ("Your account was recovered after this guardian change was proposed, and a recovery ends any "
                "pending guardian change on your wallet: it was not applied. Confirm it again with your passkey.")
    return ("The guardian change is no longer waiting on your wallet (another change replaced it), so it was not "
            "applied. Confirm it again with your passkey.")


def change_landed_locked(setup: RecoverySetup, *, now: datetime | None = None) -> None:
    """A guardian change step landed (the caller holds the wallet lock): a proposal goes on to ``apply`` (the
    next sweep reads its ``effective_at``), a cancel ends the change, an apply takes effect here."""
    now = now or timezone.now()
    step = setup.chain_change_step
    cancel_of = (setup.chain_change_approval or {}).get("cancel_of")
    if cancel_of:  # the owner's cancel landed: now the database cancels the change
        guardian = Guardian.objects.select_for_update().filter(
            pk=cancel_of["guardian"], status__in=(Guardian.Status.PENDING, Guardian.Status.ACTIVE)).first()
        if guardian is not None:
            kind = _apply_ceremony_locked(guardian, purpose=cancel_of["purpose"], now=now)
            event_record(owner=setup.user, guardian=guardian, kind=kind, actor="system", note="cancel landed on-chain")
    if step == Step.PROPOSE:
        _set(setup, chain_change_step=Step.APPLY, chain_change_approval=None, chain_sync=Sync.PENDING)
        event_record(owner=setup.user, kind="guardians_proposed_on_chain", actor="system")
    elif step == Step.CANCEL:
        _set(setup, chain_change_step=Step.NONE, chain_change=None, chain_change_approval=None,
             chain_change_effective_at=None, chain_sync=Sync.NONE)
        event_record(owner=setup.user, kind="guardian_change_cancelled_on_chain", actor="system")
    elif step == Step.SETTINGS:
        _set(setup, chain_change_step=Step.NONE, chain_change_approval=None, chain_sync=Sync.NONE)
        event_record(owner=setup.user, kind="settings_written_on_chain", actor="system")
    elif step == Step.APPLY:
        _set(setup, chain_change_step=Step.NONE, chain_change_approval=None, chain_change_effective_at=None,
             chain_sync=Sync.NONE)
        apply_landed_locked(setup, now=now)


def _set(setup: RecoverySetup, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(setup, name, value)
    setup.save(update_fields=[*fields, "updated_at"])


def apply_landed_locked(setup: RecoverySetup, *, now: datetime) -> None:
    """``guardians_apply`` landed: confirmed additions in the applied set become active, guardians whose
    removal was asked and who are not in it are removed (their approvals of open requests withdrawn)."""
    from .guardians import guardian_removed_locked

    keys = set((setup.chain_change or {}).get("keys", []))
    for guardian in Guardian.objects.select_for_update().select_related("owner", "guardian_user").filter(
            owner_id=setup.user_id, change_on_chain=True, status__in=(Guardian.Status.PENDING,
                                                                      Guardian.Status.ACTIVE)):
        key = bytes(guardian.authority_key).hex()
        if guardian.status == Guardian.Status.PENDING and guardian.owner_confirmed_at and key in keys:
            guardian.status, guardian.activated_at, guardian.change_effective_at = Guardian.Status.ACTIVE, now, None
            guardian.change_on_chain = False
            guardian.save(update_fields=["status", "activated_at", "change_effective_at", "change_on_chain"])
            event_record(owner=guardian.owner, guardian=guardian, kind="guardian_activated", actor="system",
                         note="written on-chain")
        elif guardian.status == Guardian.Status.ACTIVE and guardian.removal_requested_at and key not in keys:
            guardian_removed_locked(guardian=guardian, now=now)
    RecoverySetup.objects.filter(pk=setup.pk).update(chain_change=None)
    notify_user(user=setup.user, subject="Your guardians changed", body=(
        "The guardian change you confirmed with your passkey is now written on your wallet. See your guardians: "
        f"{public_url('/recovery/guardians/')}\n"))


def change_failed_locked(setup: RecoverySetup, *, sentence: str) -> None:
    """A step of the change was refused (on-chain, or could not be sent): the change ends ``failed``; an
    addition or removal whose proposal was not written goes back to waiting for the owner's passkey.

    A refused cancel of a change the chain holds (:func:`cancelling_of`) leaves that change pending, as on-chain:
    the step goes back to ``apply`` of the previous proposal (applied once due, unless the owner cancels again),
    ``chain_sync_error`` says why, and the owner is told to try again.
    """
    step = setup.chain_change_step
    approval = setup.chain_change_approval or {}
    if approval.get("cancel_of") and approval.get("previous_change"):
        _cancel_refused_locked(setup, previous=approval["previous_change"], guardian_id=approval["cancel_of"]["guardian"],
                               sentence=sentence)
        return
    if step in (Step.PROPOSE, Step.APPLY):  # not written, or no longer held: the owner confirms again
        Guardian.objects.filter(owner_id=setup.user_id, change_on_chain=True, status=Guardian.Status.PENDING
                                ).update(owner_confirmed_at=None, change_effective_at=None)
        Guardian.objects.filter(owner_id=setup.user_id, change_on_chain=True, status=Guardian.Status.ACTIVE,
                                removal_requested_at__isnull=False).update(
            removal_requested_at=None, change_effective_at=None, change_on_chain=False)
    _set(setup, chain_change_step=Step.NONE, chain_change=None, chain_change_approval=None,
         chain_change_effective_at=None, chain_sync=Sync.FAILED, chain_sync_error=sentence[:255])
    event_record(owner=setup.user, kind="guardians_sync_failed", actor="system", note=sentence[:255])
    notify_user(user=setup.user, subject="A guardian change was not written on your wallet", body=(
        f"{sentence}\nCheck your guardians and confirm again with your passkey: "
        f"{public_url('/recovery/guardians/')}\n"))


def _cancel_refused_locked(setup: RecoverySetup, *, previous: dict[str, Any], guardian_id: str, sentence: str) -> None:
    """The owner's cancel of the pending proposal ``previous`` (``{"keys", "threshold"}``) was refused: the change
    stays pending (step ``apply``; the sweep reads its ``effective_at`` again and checks the chain still holds it)
    and the owner is told plainly, by email and on the guardians page (``chain_sync_error``)."""
    guardian = Guardian.objects.select_related("guardian_user").filter(pk=guardian_id).first()
    who = guardian.guardian_user.email if guardian else "the guardian"
    reason = f"Your cancel of the change of {who} was refused: {sentence} The change is still pending; cancel it again."
    _set(setup, chain_change_step=Step.APPLY, chain_change=previous, chain_change_approval=None,
         chain_change_effective_at=None, chain_sync=Sync.NONE, chain_sync_error=reason[:255])
    event_record(owner=setup.user, guardian=guardian, kind="guardian_change_cancel_refused", actor="system",
                 note=sentence[:255])
    notify_user(user=setup.user, subject="Your guardian change was NOT cancelled", body=(
        f"{reason}\nUntil you do, it takes effect on your wallet after its waiting time. Cancel it again with your "
        f"passkey: {public_url('/recovery/guardians/')}\n"))


def cancelled_follow_chain(setup: RecoverySetup, wallet: Wallet, *, client: ChainClient) -> None:
    """Reconcile the guardians cancelled here while a proposal with them may still be on-chain (status
    ``cancelled``, ``change_on_chain`` kept; the caller holds the wallet lock, no change is under way): once
    the chain holds no pending proposal, a cancelled guardian not on-chain is settled (``change_on_chain``
    cleared); one the chain applied anyway (``guardians_apply`` is permissionless) becomes active here, as on
    the chain, and the owner is alerted. While the chain's pending proposal is not the database's wanted set,
    ``chain_sync_error`` says so (the owner's next change, or a cancel, replaces it).

    :raises ChainUnavailableError: the chain could not be read.
    """
    config = wallet_config_read(client=client, wallet=wallet)
    if config is None:
        return
    cancelled = list(Guardian.objects.select_for_update().select_related("owner", "guardian_user").filter(
        owner_id=setup.user_id, status=Guardian.Status.CANCELLED, change_on_chain=True))
    on_chain = chain.chain_guardians(config)[0]
    now = timezone.now()
    for guardian in cancelled:
        if bytes(guardian.authority_key) in on_chain:
            if Guardian.objects.filter(owner_id=setup.user_id, authority_key=guardian.authority_key,
                                       status=Guardian.Status.ACTIVE).exists():
                guardian.change_on_chain = False
                guardian.save(update_fields=["change_on_chain"])
                continue
            guardian.status, guardian.activated_at, guardian.removed_at = Guardian.Status.ACTIVE, now, None
            guardian.change_on_chain, guardian.change_effective_at = False, None
            guardian.save(update_fields=["status", "activated_at", "removed_at", "change_on_chain",
                                         "change_effective_at"])
            event_record(owner=guardian.owner, guardian=guardian, kind="guardian_activated", actor="system",
                         note="applied on-chain although cancelled here: following the chain")
            notify_user(user=guardian.owner, subject="A guardian you cancelled is now on your wallet", body=(
                f"A guardian change with {guardian.guardian_user.email} was applied on your wallet although you "
                "had cancelled it here, so they are your guardian now. If you do not want them, remove them with "
                f"your passkey: {public_url('/recovery/guardians/')}\n"))
        elif not config.guardian_change_pending:
            guardian.change_on_chain = False
            guardian.save(update_fields=["change_on_chain"])
    if config.guardian_change_pending and cancelled:
        keys, threshold = wanted_set(owner=setup.user, setup=setup)
        if bytes(config.guardian_change_hash) != chain.change_hash([bytes.fromhex(k) for k in keys], threshold):
            _set(setup, chain_sync_error="Your wallet holds a pending guardian change you cancelled here: confirm "
                                         "or remove a guardian with your passkey to replace it.")


# --- the recovery rules of a protected wallet -----------------------------------------------------------
def _settings_key(owner: Any, subject: str) -> str:
    return f"recovery:settings-terms:{owner.pk}:{subject}"


def _parse_subject(subject: str) -> tuple[int | None, int]:
    """``threshold=N;timelock=S;hold=0|1`` (:func:`recovery.services.guardians.settings_subject`) ->
    ``(threshold or None, timelock seconds)``.

    :raises ApplicationError: ``recovery_threshold_invalid`` (not that form).
    """
    try:
        fields = dict(part.split("=", 1) for part in subject.split(";"))
        threshold, timelock = int(fields["threshold"]), int(fields["timelock"])
    except (KeyError, ValueError):
        raise ApplicationError("recovery_threshold_invalid") from None
    return (threshold or None), timelock


def settings_options(*, owner: Any, subject: str) -> dict[str, Any]:
    """WebAuthn request options for the owner's passkey to change the recovery rules of a protected wallet:
    the program's challenge of a passkey-approved ``set_settings`` writing the guardian threshold (for the
    guardians on-chain now, under the new rule), the timelock and the guardian change delay
    (``NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS``), keeping the RP ID hash and the joint threshold. Its terms are
    kept for ``CHANGE_TTL_SECONDS``.

    :raises ApplicationError: ``guardian_change_in_flight`` (a guardian change is under way: it carries its
        own threshold; change the rules once it is written or cancelled), ``recovery_threshold_invalid``,
        ``wallet_not_found``, ``passkey_required``.
    :raises ChainUnavailableError: the config could not be read.
    """
    setup = _setup(owner)
    if setup.chain_change_step or setup.chain_sync == Sync.IN_FLIGHT:
        raise ApplicationError("guardian_change_in_flight")
    threshold, timelock = _parse_subject(subject)
    wallet = Wallet.objects.get(user=owner)
    config = wallet_config_read(client=get_chain_client(), wallet=wallet)
    if config is None:
        raise ApplicationError("wallet_not_found")
    count = len(chain.chain_guardians(config)[0])
    terms = {"action": "settings", "rp_id_hash": bytes(config.rp_id_hash).hex(),
             "joint_threshold": config.joint_threshold,
             "threshold": min(threshold or count // 2 + 1, count) if count else 0, "timelock_seconds": timelock,
             "delay": chain.guardian_change_delay(), "nonce": config.nonce,
             "expires_at": int(timezone.now().timestamp()) + CHANGE_TTL_SECONDS}
    cache.set(_settings_key(owner, subject), terms, CHANGE_TTL_SECONDS)
    return request_options(user=owner, challenge=chain.change_challenge(wallet, terms))


def settings_approval(*, owner: Any, subject: str, credential: Any) -> dict[str, Any]:
    """The owner's verified assertion over :func:`settings_options`' challenge for ``subject`` (single use).

    :raises ApplicationError: ``owner_passkey_required``, ``passkey_required``, ``passkey_assertion_invalid``.
    """
    if not credential:
        raise ApplicationError("owner_passkey_required")
    key = _settings_key(owner, subject)
    terms = cache.get(key)
    if terms is None:
        raise ApplicationError("owner_passkey_required")
    wallet = Wallet.objects.get(user=owner)
    assertion = assertion_verify(user=owner, challenge=chain.change_challenge(wallet, terms), credential=credential)
    if not cache.delete(key):
        raise ApplicationError("owner_passkey_required")
    return {**terms, "public_key": authenticator_key(assertion.authenticator).hex(),
            "authenticator_data": assertion.authenticator_data.hex(),
            "client_data_json": assertion.client_data_json.hex(), "signature": assertion.signature.hex()}


def settings_store_locked(setup: RecoverySetup, approval: dict[str, Any]) -> None:
    """Keep the owner's approved ``set_settings`` for the sweep (the caller holds the wallet lock).

    :raises ApplicationError: ``guardian_change_in_flight``.
    """
    setup = RecoverySetup.objects.select_for_update().get(pk=setup.pk)
    if setup.chain_change_step or setup.chain_sync == Sync.IN_FLIGHT:
        raise ApplicationError("guardian_change_in_flight")
    setup.chain_change_step, setup.chain_change_approval, setup.chain_sync_error = Step.SETTINGS, approval, ""
    setup.chain_sync = Sync.PENDING
    setup.chain_sync_version = F("chain_sync_version") + 1
    setup.save(update_fields=["chain_change_step", "chain_change_approval", "chain_sync", "chain_sync_version",
                              "chain_sync_error", "updated_at"])
