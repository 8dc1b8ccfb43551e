"""Guardians (issue 10 item 1): invitations by email, acceptance with the guardian's passkey, additions and
removals that take effect only after ``NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS`` (Argent: 36 h) and that the
owner can cancel until then; the owner's recovery rules (threshold m of n, timelock, payment hold).

Whatever strengthens an attacker (inviting, removing a guardian, changing the rules) needs the owner's
passkey: a WebAuthn assertion over a single-use challenge naming the change
(:func:`recovery.digests.guardian_change_challenge`). Cancelling a pending change only needs the owner's
session: it can only keep things as they were.

In protected mode (the custody key holds no ``manage`` on-chain) the guardian set is the wallet program's:
an accepted guardian waits for the owner's passkey confirmation, and each change (and the cancel of one
already approved for the chain, which anyone could otherwise complete there) is the owner's passkey over
the program's delayed proposal: :mod:`recovery.services.onchain_guardians`.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from numpay.core.errors import ApplicationError
from wallets.models import Wallet

from .. import digests
from ..app_settings import app_settings
from ..models import Guardian, GuardianInvitation, RecoveryApproval, RecoveryRequest, RecoverySetup
from ..passkeys import assertion_verify, authenticator_key, request_options
from . import onchain_guardians
from .common import event_record, locked_wallet, new_secret, notify_user, public_url, secret_hash
from .sync import sync_mark_locked

#: At most this many live (pending or active) guardians per owner (the config has 8 authority slots:
#: custody key, owner passkeys and guardians share them).
MAX_GUARDIANS = 5
LIVE_STATUSES = (Guardian.Status.PENDING, Guardian.Status.ACTIVE)


def recovery_setup(*, user: Any) -> RecoverySetup:
    """The owner's recovery rules, created with the defaults on first use."""
    setup, _ = RecoverySetup.objects.get_or_create(
        user=user, defaults={"timelock_seconds": app_settings.DEFAULT_TIMELOCK_SECONDS,
                             "hold_payments": app_settings.HOLD_PAYMENTS})
    return setup


def threshold_of(*, setup: RecoverySetup, guardian_count: int) -> int:
    """Approvals needed with ``guardian_count`` active guardians: the owner's m, else a majority (pure)."""
    return setup.threshold if setup.threshold else guardian_count // 2 + 1


# --- the owner's passkey over a change -------------------------------------------------------------------
def _nonce_key(owner: Any, action: str, subject: str) -> str:
    return f"recovery:owner-nonce:{owner.pk}:{action}:{subject}"


def owner_change_options(*, owner: Any, action: str, subject: str) -> dict[str, Any]:
    """WebAuthn request options for the owner's passkey to approve one guardian change (single use, valid
    for ``WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS``).

    :param action: ``invite`` (subject: the email), ``remove`` (the guardian id) or ``settings`` (the
        canonical text of the new rules, :func:`settings_subject`). A removal from a wallet in protected mode
        signs the program's ``guardians_propose`` challenge instead
        (:func:`recovery.services.onchain_guardians.guardian_change_options`).
    :raises ApplicationError: ``passkey_required``; for a protected removal the refusals of
        :func:`~recovery.services.onchain_guardians.guardian_change_options`.
    """
    from accounts.app_settings import app_settings as accounts_settings

    if action == "remove" and _removal_on_chain(owner, subject):  # the program's challenge of the proposal
        return onchain_guardians.guardian_change_options(owner=owner, purpose="remove", guardian_id=subject)
    if action == "settings" and _protected(owner):  # the program's challenge of set_settings
        return onchain_guardians.settings_options(owner=owner, subject=subject)
    nonce = secrets.token_hex(16)
    cache.set(_nonce_key(owner, action, subject), nonce, accounts_settings.WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS)
    challenge = digests.guardian_change_challenge(owner_id=owner.pk, action=action, subject=subject, nonce=nonce)
    return request_options(user=owner, challenge=challenge)


def _protected(owner: Any) -> bool:
    """Whether ``owner``'s wallet is in protected mode (its guardians change on-chain by the owner's passkey).

    :raises ChainUnavailableError: the chain could not be read.
    """
    return onchain_guardians.is_protected(wallet=Wallet.objects.filter(user=owner).first())


def _removal_on_chain(owner: Any, guardian_id: Any) -> bool:
    """Whether removing the guardian ``guardian_id`` changes ``owner``'s wallet on-chain: protected mode, and
    the guardian is active or an addition the owner confirmed (an unconfirmed one has nothing on-chain).

    :raises ChainUnavailableError: the chain could not be read.
    """
    try:
        guardian = Guardian.objects.filter(owner=owner, pk=uuid.UUID(str(guardian_id))).first()
    except ValueError:
        return False
    if guardian is None or (guardian.status == Guardian.Status.PENDING and guardian.owner_confirmed_at is None):
        return False
    return _protected(owner)


def _owner_passkey_check(*, owner: Any, action: str, subject: str, credential: Any) -> None:
    """:raises ApplicationError: ``owner_passkey_required`` (no assertion / no open challenge),
    ``passkey_required``, ``passkey_assertion_invalid``."""
    if not credential:
        raise ApplicationError("owner_passkey_required")
    key = _nonce_key(owner, action, subject)
    nonce = cache.get(key)
    if nonce is None:
        raise ApplicationError("owner_passkey_required")
    challenge = digests.guardian_change_challenge(owner_id=owner.pk, action=action, subject=subject, nonce=nonce)
    assertion_verify(user=owner, challenge=challenge, credential=credential)
    if not cache.delete(key):  # single use: a concurrent use of the same challenge lost
        raise ApplicationError("owner_passkey_required")


def settings_subject(*, threshold: int | None, timelock_seconds: int, hold_payments: bool) -> str:
    """The canonical text of recovery rules that the owner's passkey signs."""
    return f"threshold={threshold or 0};timelock={timelock_seconds};hold={int(hold_payments)}"


# --- invitations -----------------------------------------------------------------------------------------
def guardian_invite(*, owner: Any, email: str, credential: Any) -> tuple[GuardianInvitation, str]:
    """Invite ``email`` to be one of ``owner``'s guardians (owner's passkey, action ``invite``, subject the
    lower-cased email). The invitation is emailed with a link holding its token.

    :returns: ``(invitation, token)``; only the token's hash is stored.
    :raises ApplicationError: ``guardian_is_owner``, ``guardian_limit_reached``, ``guardian_already_invited``,
        the owner-passkey refusals (:func:`_owner_passkey_check`), ``wallet_not_found``.
    """
    email = email.strip().lower()
    if owner.email and owner.email.lower() == email:
        raise ApplicationError("guardian_is_owner")
    _owner_passkey_check(owner=owner, action="invite", subject=email, credential=credential)
    now = timezone.now()
    with transaction.atomic():
        locked_wallet(user=owner)
        live = Guardian.objects.filter(owner=owner, status__in=LIVE_STATUSES)
        open_invitations = GuardianInvitation.objects.filter(owner=owner, status=GuardianInvitation.Status.PENDING,
                                                             expires_at__gt=now)
        if live.count() + open_invitations.count() >= MAX_GUARDIANS:
            raise ApplicationError("guardian_limit_reached")
        if open_invitations.filter(email=email).exists() or live.filter(guardian_user__email__iexact=email).exists():
            raise ApplicationError("guardian_already_invited")
        token, token_hash = new_secret()
        invitation = GuardianInvitation.objects.create(
            owner=owner, email=email, token_hash=token_hash,
            expires_at=now + timedelta(seconds=app_settings.INVITATION_TTL_SECONDS))
        event_record(owner=owner, kind="guardian_invited", actor="owner", actor_user=owner, note=email)
        from .common import email_on_commit

        email_on_commit(to=email, subject=f"{owner.email or 'A Numpay user'} asks you to be their guardian", body=(
            f"{owner.email or 'A Numpay user'} would like you to help them get their Numpay wallet back if they "
            "ever lose their passkey. A guardian approves a recovery with their own passkey; nobody can move "
            "money with it.\n\n"
            f"Accept (or sign up first with this email address): {public_url(f'/recovery/invitations/{token}/')}\n"
            f"The invitation expires on {invitation.expires_at:%d %B %Y at %H:%M} UTC.\n"))
    return invitation, token


def invitation_by_token(token: str) -> GuardianInvitation:
    """:raises NotFoundError: ``guardian_invitation_not_found``."""
    invitation = GuardianInvitation.objects.select_related("owner").filter(token_hash=secret_hash(token)).first()
    if invitation is None:
        raise ApplicationError("guardian_invitation_not_found")
    return invitation


def invitation_accept_options(*, token: str, user: Any) -> dict[str, Any]:
    """WebAuthn request options for ``user``'s passkey to accept the invitation.

    :raises ApplicationError: ``guardian_invitation_not_found``, ``passkey_required``.
    """
    invitation = invitation_by_token(token)
    return request_options(user=user, challenge=digests.invitation_challenge(invitation.id))


def guardian_invitation_accept(*, token: str, user: User, credential: Any) -> Guardian:
    """``user`` (signed in, with the invited email) accepts with their passkey over
    :func:`recovery.digests.invitation_challenge`. The guardian counts only after the change delay.

    In protected mode the guardian waits (``change_on_chain``, no ``change_effective_at``) for the owner to
    confirm with their passkey (:func:`recovery.services.onchain_guardians.guardian_change_approve`); the owner
    is asked by email and on the guardians page.

    :raises ApplicationError: ``guardian_invitation_not_found``, ``guardian_invitation_expired``,
        ``guardian_invitation_used``, ``guardian_invitation_wrong_account``, ``guardian_is_owner``,
        ``passkey_required``, ``passkey_assertion_invalid``.
    :raises ChainUnavailableError: the owner's wallet could not be read (nothing changed).
    """
    invitation = invitation_by_token(token)
    if not user.email or user.email.lower() != invitation.email:
        raise ApplicationError("guardian_invitation_wrong_account")
    if user.pk == invitation.owner_id:
        raise ApplicationError("guardian_is_owner")
    assertion = assertion_verify(user=user, challenge=digests.invitation_challenge(invitation.id), credential=credential)
    on_chain = _protected(invitation.owner)
    now = timezone.now()
    with transaction.atomic():
        locked_wallet(user=invitation.owner)
        invitation = GuardianInvitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.status != GuardianInvitation.Status.PENDING:
            raise ApplicationError("guardian_invitation_used")
        if invitation.expires_at <= now:
            raise ApplicationError("guardian_invitation_expired")
        if Guardian.objects.filter(owner=invitation.owner, guardian_user=user, status__in=LIVE_STATUSES).exists():
            raise ApplicationError("guardian_invitation_used")
        effective_at = None if on_chain else now + timedelta(seconds=app_settings.GUARDIAN_CHANGE_DELAY_SECONDS)
        guardian = Guardian.objects.create(
            owner=invitation.owner, guardian_user=user, passkey=assertion.authenticator,
            authority_key=authenticator_key(assertion.authenticator), invitation=invitation,
            change_effective_at=effective_at, change_on_chain=on_chain)
        invitation.status, invitation.accepted_by, invitation.accepted_at = (
            GuardianInvitation.Status.ACCEPTED, user, now)
        invitation.save(update_fields=["status", "accepted_by", "accepted_at"])
        if on_chain:  # protected mode: the owner's passkey writes the addition on-chain
            event_record(owner=invitation.owner, guardian=guardian, kind="guardian_accepted", actor="guardian",
                         actor_user=user, note="waiting for the owner's passkey confirmation")
            notify_user(user=invitation.owner, subject=f"Confirm {user.email} as your guardian with your passkey",
                        body=(f"{user.email} accepted your invitation. To make them your guardian, confirm with your "
                              f"passkey: {public_url('/recovery/guardians/')}\nThe change is written on your wallet "
                              "and takes effect after its waiting time. If you did not invite them, cancel it.\n"))
            return guardian
        event_record(owner=invitation.owner, guardian=guardian, kind="guardian_accepted", actor="guardian",
                     actor_user=user, note=f"counts from {effective_at.isoformat()}")
        notify_user(user=invitation.owner, subject=f"{user.email} will become your guardian", body=(
            f"{user.email} accepted your invitation. They become your guardian on "
            f"{effective_at:%d %B %Y at %H:%M} UTC. If you did not invite them, cancel it: "
            f"{public_url('/recovery/guardians/')}\n"))
    return guardian


# --- changes ---------------------------------------------------------------------------------------------
def guardian_remove(*, owner: Any, guardian_id: Any, credential: Any) -> Guardian:
    """Ask for a guardian's removal (owner's passkey, action ``remove``, subject the guardian id). An active
    guardian still counts until ``change_effective_at``; a pending one is cancelled at once. In protected
    mode the passkey signs the program's proposal of the set without that guardian and the removal takes effect
    when ``guardians_apply`` lands (:func:`recovery.services.onchain_guardians.guardian_change_approve`).

    :raises ApplicationError: ``guardian_not_found``, ``guardian_change_pending``, ``recovery_threshold_invalid``
        (fewer guardians than the owner's threshold would remain), the owner-passkey refusals.
    """
    if _removal_on_chain(owner, guardian_id):
        return onchain_guardians.guardian_change_approve(owner=owner, purpose="remove", guardian_id=guardian_id,
                                                         credential=credential)
    _owner_passkey_check(owner=owner, action="remove", subject=str(guardian_id), credential=credential)
    now = timezone.now()
    with transaction.atomic():
        locked_wallet(user=owner)
        guardian = Guardian.objects.select_for_update().filter(owner=owner, pk=guardian_id,
                                                               status__in=LIVE_STATUSES).first()
        if guardian is None:
            raise ApplicationError("guardian_not_found")
        if guardian.status == Guardian.Status.PENDING:
            guardian.status, guardian.removed_at = Guardian.Status.CANCELLED, now
            guardian.save(update_fields=["status", "removed_at"])
            event_record(owner=owner, guardian=guardian, kind="guardian_addition_cancelled", actor="owner",
                         actor_user=owner)
            return guardian
        if guardian.removal_requested_at is not None:
            raise ApplicationError("guardian_change_pending")
        setup = recovery_setup(user=owner)
        remaining = Guardian.objects.filter(owner=owner, status__in=LIVE_STATUSES).exclude(pk=guardian.pk).count()
        if setup.threshold and remaining < setup.threshold:
            raise ApplicationError("recovery_threshold_invalid",
                                   f"Lower your threshold first: {remaining} guardians would remain for "
                                   f"{setup.threshold} approvals.")
        guardian.removal_requested_at = now
        guardian.change_effective_at = now + timedelta(seconds=app_settings.GUARDIAN_CHANGE_DELAY_SECONDS)
        guardian.save(update_fields=["removal_requested_at", "change_effective_at"])
        event_record(owner=owner, guardian=guardian, kind="guardian_removal_requested", actor="owner",
                     actor_user=owner, note=f"takes effect {guardian.change_effective_at.isoformat()}")
        notify_user(user=owner, subject="A guardian will be removed from your Numpay account", body=(
            f"{guardian.guardian_user.email} stops being your guardian on "
            f"{guardian.change_effective_at:%d %B %Y at %H:%M} UTC. Not you? Cancel it: "
            f"{public_url('/recovery/guardians/')}\n"))
    return guardian


def guardian_change_cancel(*, owner: Any, guardian_id: Any, credential: Any = None) -> Guardian:
    """Cancel a pending addition or removal (owner's session suffices: nothing gets weaker). A change of a
    protected wallet already approved for the chain (a confirmed addition, a removal) can only be stopped there
    by the owner's passkey (``guardians_apply`` is permissionless): with ``credential`` (an assertion over
    :func:`recovery.services.onchain_guardians.guardian_change_options`' ``cancel`` challenge) it is.

    :raises ApplicationError: ``guardian_not_found``, ``guardian_change_not_pending``,
        ``guardian_cancel_passkey_required`` (a session alone for an on-chain change), and with a credential the
        refusals of :func:`~recovery.services.onchain_guardians.guardian_change_approve`.
    """
    if credential:
        return onchain_guardians.guardian_change_approve(owner=owner, purpose="cancel", guardian_id=guardian_id,
                                                         credential=credential)
    now = timezone.now()
    with transaction.atomic():
        locked_wallet(user=owner)
        guardian = Guardian.objects.select_for_update().filter(owner=owner, pk=guardian_id).first()
        if guardian is None:
            raise ApplicationError("guardian_not_found")
        if guardian.change_on_chain and (guardian.owner_confirmed_at or guardian.removal_requested_at):
            raise ApplicationError("guardian_cancel_passkey_required")
        if guardian.status == Guardian.Status.PENDING:
            guardian.status, guardian.removed_at = Guardian.Status.CANCELLED, now
            guardian.save(update_fields=["status", "removed_at"])
            kind = "guardian_addition_cancelled"
        elif guardian.status == Guardian.Status.ACTIVE and guardian.removal_requested_at is not None:
            guardian.removal_requested_at = guardian.change_effective_at = None
            guardian.save(update_fields=["removal_requested_at", "change_effective_at"])
            kind = "guardian_removal_cancelled"
        else:
            raise ApplicationError("guardian_change_not_pending")
        event_record(owner=owner, guardian=guardian, kind=kind, actor="owner", actor_user=owner)
    return guardian


def guardian_changes_apply(*, now: Any = None) -> int:
    """Apply guardian changes whose delay has passed (the beat sweep): pending -> active; a requested
    removal -> removed (not the changes of protected wallets, ``change_on_chain``: those take effect when
    ``guardians_apply`` lands), its approvals of open requests withdrawn (the request's clock stops if it falls
    below the threshold). One owner at a time under their wallet lock.

    :returns: how many changes were applied.
    """
    now = now or timezone.now()
    due = list(Guardian.objects.filter(status__in=LIVE_STATUSES, change_effective_at__lte=now, change_on_chain=False)
               .values_list("pk", "owner_id"))
    applied = 0
    for guardian_id, owner_id in due:
        with transaction.atomic():
            locked_wallet(user=User(pk=owner_id))
            guardian = Guardian.objects.select_for_update().filter(
                pk=guardian_id, status__in=LIVE_STATUSES, change_effective_at__lte=now, change_on_chain=False).first()
            if guardian is None:
                continue
            if guardian.status == Guardian.Status.PENDING:
                guardian.status, guardian.activated_at, guardian.change_effective_at = Guardian.Status.ACTIVE, now, None
                guardian.save(update_fields=["status", "activated_at", "change_effective_at"])
                event_record(owner=guardian.owner, guardian=guardian, kind="guardian_activated", actor="system")
                sync_mark_locked(recovery_setup(user=guardian.owner))
            else:
                guardian_removed_locked(guardian=guardian, now=now)
            applied += 1
    return applied


def guardian_removed_locked(*, guardian: Guardian, now: Any) -> None:
    """End a guardian (the caller holds the owner's wallet lock): removed, and each of its live approvals
    of an open request withdrawn."""
    from .requests import approval_withdraw_locked

    guardian.status, guardian.removed_at, guardian.change_effective_at = Guardian.Status.REMOVED, now, None
    guardian.save(update_fields=["status", "removed_at", "change_effective_at"])
    event_record(owner=guardian.owner, guardian=guardian, kind="guardian_removed", actor="system")
    sync_mark_locked(recovery_setup(user=guardian.owner))
    approvals = RecoveryApproval.objects.select_for_update().filter(
        guardian=guardian, withdrawn_at__isnull=True, request__status__in=RecoveryRequest.CANCELLABLE_STATUSES)
    for approval in approvals:
        approval_withdraw_locked(approval=approval, reason="the guardian was removed", actor="system")


def recovery_settings_update(*, owner: Any, threshold: int | None, timelock_seconds: int, hold_payments: bool,
                             credential: Any) -> RecoverySetup:
    """Change the owner's recovery rules (owner's passkey, action ``settings``, subject
    :func:`settings_subject`). In protected mode the passkey signs the program's challenge of a passkey-approved
    ``set_settings`` (:func:`recovery.services.onchain_guardians.settings_options`), which the sweep sends; it
    is refused ``guardian_change_in_flight`` while a guardian change is under way (that change carries its own
    threshold).

    :param threshold: approvals needed (1..live guardians), or ``None`` for a majority.
    :param timelock_seconds: within ``NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS`` .. ``..._MAX_...``.
    :raises ApplicationError: ``recovery_threshold_invalid``, ``recovery_timelock_out_of_range``,
        ``guardian_change_in_flight``, the owner-passkey refusals.
    """
    if not app_settings.MIN_TIMELOCK_SECONDS <= timelock_seconds <= app_settings.MAX_TIMELOCK_SECONDS:
        raise ApplicationError("recovery_timelock_out_of_range", (
            f"The timelock must be between {app_settings.MIN_TIMELOCK_SECONDS} and "
            f"{app_settings.MAX_TIMELOCK_SECONDS} seconds."))
    subject = settings_subject(threshold=threshold, timelock_seconds=timelock_seconds, hold_payments=hold_payments)
    chain_approval = None
    if _protected(owner):
        chain_approval = onchain_guardians.settings_approval(owner=owner, subject=subject, credential=credential)
    else:
        _owner_passkey_check(owner=owner, action="settings", credential=credential, subject=subject)
    with transaction.atomic():
        locked_wallet(user=owner)
        live = Guardian.objects.filter(owner=owner, status__in=LIVE_STATUSES).count()
        if threshold is not None and not 1 <= threshold <= max(live, 1):
            raise ApplicationError("recovery_threshold_invalid",
                                   f"Choose between 1 and {max(live, 1)} approvals.")
        setup = recovery_setup(user=owner)
        setup.threshold, setup.timelock_seconds, setup.hold_payments = threshold, timelock_seconds, hold_payments
        setup.save(update_fields=["threshold", "timelock_seconds", "hold_payments", "updated_at"])
        if chain_approval is not None:  # protected mode: the owner's passkey-approved set_settings
            onchain_guardians.settings_store_locked(setup, chain_approval)
        else:
            sync_mark_locked(setup)
        event_record(owner=owner, kind="settings_changed", actor="owner", actor_user=owner,
                     note=settings_subject(threshold=threshold, timelock_seconds=timelock_seconds,
                                           hold_payments=hold_payments))
    return setup


def invitations_expire(*, now: Any = None) -> int:
    """Mark invitations past ``expires_at`` expired (the beat sweep). :returns: how many."""
    now = now or timezone.now()
    return GuardianInvitation.objects.filter(status=GuardianInvitation.Status.PENDING, expires_at__lte=now).update(
        status=GuardianInvitation.Status.EXPIRED)
