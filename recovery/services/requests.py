"""Recovery requests (issue 10 items 2 and 3): started from the sign-in page by someone who proves the
account's email or phone with a code, who then registers a new passkey (held pending); guardians approve
with their passkey over the request's digest and may withdraw until execution; reaching the threshold starts
the timelock (``executes_at``), falling below it stops the clock; the owner is told at once on every channel
with a signed single-use cancel link and can cancel with their passkey or session; operators may freeze.

Starting never reveals whether an account exists, has guardians or already has a request: the answer is
always a requester token, and the code (or the reason there is none) goes only to the account's own email or
phone.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from allauth.account.models import EmailAddress
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.models import User
from accounts.phones import phone_normalize
from accounts.services import sms_queue
from numpay.core.errors import ApplicationError
from numpay.core.solana import get_chain_client
from wallets.models import Wallet

from .. import chain, digests
from ..app_settings import app_settings
from ..lock_objects import recovery_request_qs_select_for_update
from ..models import Guardian, RecoveryApproval, RecoveryRequest
from ..passkeys import assertion_verify, registration_begin, registration_complete, request_options
from .common import (
    cancel_link,
    email_on_commit,
    event_record,
    locked_wallet,
    new_secret,
    notify_user,
    public_url,
    secret_hash,
)
from .guardians import recovery_setup, threshold_of

Status = RecoveryRequest.Status


# --- starting --------------------------------------------------------------------------------------------
def _rate_check(*, keys: list[str]) -> None:
    count, window = app_settings.START_RATE
    for key in keys:
        cache_key = f"recovery:start-rate:{secret_hash(key)}"
        cache.add(cache_key, 0, window)
        if cache.incr(cache_key) > count:
            raise ApplicationError("rate_limited", "Too many recovery requests; please wait an hour and try again.",
                                   extra={"retry_after": window})


def _account_of(identifier: str) -> tuple[User | None, str]:
    """The user whose verified email or phone is ``identifier`` and the channel (``email`` | ``phone``)."""
    if "@" in identifier:
        address = EmailAddress.objects.select_related("user").filter(email__iexact=identifier, verified=True).first()
        return (address.user if address else None), RecoveryRequest.Channel.EMAIL
    try:
        phone = phone_normalize(identifier)
    except (ValueError, ApplicationError):
        return None, RecoveryRequest.Channel.PHONE
    return User.objects.filter(phone=phone, phone_verified=True).first(), RecoveryRequest.Channel.PHONE


def _code_hash(request_id: Any, code: str) -> str:
    return salted_hmac("recovery.code", f"{request_id}:{code}", algorithm="sha256").hexdigest()


def _tell(*, user: User, channel: str, subject: str, body: str) -> None:
    if channel == RecoveryRequest.Channel.EMAIL:
        email_on_commit(to=user.email, subject=subject, body=body)
    else:
        sms_queue(to=user.phone, body=body)


def recovery_start(*, identifier: str, client_key: str) -> str:
    """Start a recovery of the account whose verified email or phone is ``identifier``: a 6-digit code is
    sent there (valid ``NUMPAY_RECOVERY_CODE_TTL_SECONDS``).

    No account, no active guardian, or a request already open: nothing is created, and the account (if any)
    is told why on that channel. The answer is the same token either way.

    :param client_key: the client's address (rate limit per client, as well as per identifier).
    :returns: the requester token (keep it: it follows the request; only its hash is stored).
    :raises ApplicationError: ``recovery_identifier_required``, ``rate_limited`` (429).
    """
    identifier = (identifier or "").strip().lower()
    if not identifier:
        raise ApplicationError("recovery_identifier_required")
    _rate_check(keys=[f"id:{identifier}", f"client:{client_key}"])
    token, token_hash = new_secret()
    user, channel = _account_of(identifier)
    if user is None:
        return token
    wallet = Wallet.objects.filter(user=user).first()
    active = Guardian.objects.filter(owner=user, status=Guardian.Status.ACTIVE).count()
    if wallet is None or active == 0:
        _tell(user=user, channel=channel, subject="Numpay account recovery", body=(
            "Someone asked to recover your Numpay account, but it has no guardians, so it cannot be recovered "
            "this way. If it was you, contact support.\n"))
        return token
    code = f"{secrets.randbelow(10**6):06d}"
    now = timezone.now()
    setup = recovery_setup(user=user)
    try:
        with transaction.atomic():
            locked_wallet(user=user)
            request = RecoveryRequest.objects.create(
                user=user, wallet=wallet, channel=channel, requester_token_hash=token_hash,
                code_expires_at=now + timedelta(seconds=app_settings.CODE_TTL_SECONDS),
                timelock_seconds=setup.timelock_seconds,
                expires_at=now + timedelta(seconds=app_settings.REQUEST_TTL_SECONDS))
            request.code_hash = _code_hash(request.id, code)
            request.save(update_fields=["code_hash"])
            event_record(owner=user, request=request, kind="request_started", actor="requester", note=f"by {channel}")
            _tell(user=user, channel=channel, subject="Your Numpay recovery code", body=(
                f"Your Numpay recovery code is {code}. It is valid for "
                f"{app_settings.CODE_TTL_SECONDS // 60} minutes. If you did not ask for it, your guardians "
                "will not approve anything without you; you can ignore this message.\n"))
    except IntegrityError:  # one open request per wallet (the unique index decides, not a prior read)
        _tell(user=user, channel=channel, subject="Numpay account recovery", body=(
            "Someone asked to recover your Numpay account, but a recovery is already under way. See its status "
            f"or cancel it at {public_url('/recovery/')}.\n"))
    return token


def request_by_token(token: str) -> RecoveryRequest:
    """:raises NotFoundError: ``recovery_request_not_found``."""
    request = RecoveryRequest.objects.select_related("user", "wallet").filter(
        requester_token_hash=secret_hash(token or "")).first()
    if request is None:
        raise ApplicationError("recovery_request_not_found")
    return request


def recovery_code_verify(*, token: str, code: str) -> dict[str, Any]:
    """Check the code; on success the requester may register their new passkey.

    :returns: the WebAuthn creation options of the new passkey (JSON form).
    :raises ApplicationError: ``recovery_code_invalid`` (wrong code, unknown token, too many attempts: the
        request then ends), ``recovery_code_expired``, ``recovery_not_verifying``.
    """
    request = RecoveryRequest.objects.filter(requester_token_hash=secret_hash(token or "")).first()
    if request is None:
        raise ApplicationError("recovery_code_invalid")
    with transaction.atomic():
        locked_wallet(user=request.user)
        request = recovery_request_qs_select_for_update().select_related("user").get(pk=request.pk)
        if request.status != Status.VERIFYING or request.verified_at is not None:
            raise ApplicationError("recovery_not_verifying")  # ended, or the code was already used
        if request.code_expires_at is None or request.code_expires_at <= timezone.now():
            raise ApplicationError("recovery_code_expired")
        if not constant_time_compare(request.code_hash, _code_hash(request.id, (code or "").strip())):
            request.code_attempts += 1
            if request.code_attempts >= app_settings.CODE_MAX_ATTEMPTS:
                _end(request, Status.EXPIRED, reason="too many wrong codes", actor="system")
            else:
                request.save(update_fields=["code_attempts", "updated_at"])
            invalid = True
        else:
            invalid = False
            options, state = registration_begin(user=request.user)
            request.verified_at, request.code_hash, request.registration_state = timezone.now(), "", state
            request.save(update_fields=["verified_at", "code_hash", "registration_state", "updated_at"])
            event_record(owner=request.user, request=request, kind="contact_verified", actor="requester",
                         note=request.channel)
    if invalid:
        raise ApplicationError("recovery_code_invalid")
    return options


def recovery_passkey_register(*, token: str, credential: Any) -> RecoveryRequest:
    """Register the requester's new passkey (held pending until execution) and ask the guardians: each is
    emailed (and texted where a phone is known) a link to approve; the owner is told at once on every
    channel with a cancel link.

    For a smart wallet the guardians' approvals are bound to the config's current nonce (read here).

    :raises ApplicationError: ``recovery_request_not_found``, ``recovery_not_verifying`` (no verified code
        yet, or a passkey already registered), ``passkey_registration_invalid``.
    :raises ChainUnavailableError: the config could not be read (nothing changed).
    """
    request = request_by_token(token)
    if request.status != Status.VERIFYING or request.verified_at is None or not request.registration_state:
        raise ApplicationError("recovery_not_verifying")
    public_key = registration_complete(state=request.registration_state, credential=credential)
    chain_nonce = chain.current_nonce(client=get_chain_client(), wallet=request.wallet) \
        if chain.is_on_chain(request.wallet) else None
    with transaction.atomic():
        locked_wallet(user=request.user)
        request = recovery_request_qs_select_for_update().select_related("user", "wallet").get(pk=request.pk)
        if request.status != Status.VERIFYING or request.verified_at is None:
            raise ApplicationError("recovery_not_verifying")
        request.pending_credential, request.pending_public_key = credential, public_key
        request.registration_state, request.chain_nonce = None, chain_nonce
        request.digest = digests.request_digest(
            wallet_key=request.wallet.config_address or request.wallet.address, request_id=request.id,
            new_owner_key=public_key, expires_at=int(request.expires_at.timestamp())).hex()
        request.cancel_nonce = secrets.token_hex(16)
        request.status = Status.COLLECTING
        request.save()
        event_record(owner=request.user, request=request, kind="new_passkey_registered", actor="requester")
        _notify_guardians(request)
        _notify_owner_started(request)
    return request


def _notify_guardians(request: RecoveryRequest) -> None:
    link = public_url(f"/recovery/approve/{request.id}/")
    for guardian in Guardian.objects.filter(owner=request.user, status=Guardian.Status.ACTIVE).select_related(
            "guardian_user"):
        notify_user(user=guardian.guardian_user, subject=f"{request.user.email or 'Someone'} asks for your help", body=(
            f"A recovery of the Numpay account of {request.user.email or request.user} was requested. Approve it "
            "with your passkey ONLY if you have confirmed with them, in person or by a call, that it is really "
            f"them: {link}\n"), sms=f"Numpay: a recovery of {request.user} needs your approval: {link}")
    event_record(owner=request.user, request=request, kind="guardians_notified", actor="system")


def _notify_owner_started(request: RecoveryRequest) -> None:
    channels = notify_user(user=request.user, subject="Someone is trying to recover your Numpay account", body=(
        "A recovery of your Numpay account was requested with a new passkey. If it was not you, cancel it now "
        f"(sign in or use your passkey): {cancel_link(request)}\n\nIf your guardians approve, it takes effect "
        f"{request.timelock_seconds // 3600} hours after the last approval unless you cancel it.\n"),
        sms=f"Numpay: someone is trying to recover your account. Not you? Cancel: {cancel_link(request)}")
    event_record(owner=request.user, request=request, kind="owner_notified", actor="system", note=",".join(channels))


# --- guardians -------------------------------------------------------------------------------------------
def _locked_open_request(request_id: Any) -> RecoveryRequest:
    request = RecoveryRequest.objects.filter(pk=request_id).only("user_id").first()
    if request is None:
        raise ApplicationError("recovery_request_not_found")
    locked_wallet(user=User(pk=request.user_id))
    return recovery_request_qs_select_for_update().select_related("user", "wallet").get(pk=request_id)


def guardian_of(*, request: RecoveryRequest, user: Any) -> Guardian:
    """:raises ApplicationError: ``recovery_not_guardian`` (403)."""
    guardian = Guardian.objects.filter(owner_id=request.user_id, guardian_user=user,
                                       status=Guardian.Status.ACTIVE).first()
    if guardian is None:
        raise ApplicationError("recovery_not_guardian")
    return guardian


def guardian_request(*, request_id: Any, user: Any,
                     refuse_while_starting: bool = True) -> tuple[RecoveryRequest, Guardian]:
    """The request ``request_id`` (with its owner and wallet) and ``user``'s active guardianship of its
    account: the first step of every guardian entry point (page, API, services). Read without locks: the
    writes re-read under the wallet and request locks (:func:`_locked_open_request`).

    :param refuse_while_starting: refuse while the on-chain ``recovery_start`` is in flight (chain phase
        ``start``): the on-chain terms a guardian would sign are not known yet. Pages that only show the
        request pass ``False``.
    :returns: ``(request, guardian)``.
    :raises ApplicationError: ``recovery_request_not_found`` (404), ``recovery_not_guardian`` (403),
        ``recovery_chain_busy`` (409, with ``refuse_while_starting``).
    """
    request = RecoveryRequest.objects.select_related("user", "wallet").filter(pk=request_id).first()
    if request is None:
        raise ApplicationError("recovery_request_not_found")
    guardian = guardian_of(request=request, user=user)
    if refuse_while_starting and request.chain_phase == RecoveryRequest.ChainPhase.START:
        raise ApplicationError("recovery_chain_busy")
    return request, guardian


def recovery_approve(*, request_id: Any, user: Any, credential: Any) -> RecoveryApproval:
    """``user``, an active guardian of the account, approves with the passkey they are guardian with,
    signing :func:`recovery.digests.approval_challenge` of the request. Reaching the threshold starts the
    timelock: ``executes_at`` = now + the request's timelock; the owner is told on every channel.

    :raises ApplicationError: ``recovery_request_not_found``, ``recovery_not_collecting``, ``recovery_not_guardian``,
        ``recovery_already_approved``, ``passkey_assertion_invalid`` (also: signed with another passkey than
        the guardian's), ``passkey_required``.
    """
    with transaction.atomic():
        request = _locked_open_request(request_id)
        if request.status not in (Status.COLLECTING, Status.TIMELOCKED) or (
                request.status == Status.COLLECTING and request.chain_phase):
            raise ApplicationError("recovery_not_collecting")  # (or its earlier on-chain start is being undone)
        guardian = guardian_of(request=request, user=user)
        if RecoveryApproval.objects.filter(request=request, guardian=guardian, withdrawn_at__isnull=True).exists():
            raise ApplicationError("recovery_already_approved")
        assertion = assertion_verify(user=user, challenge=digests.approval_challenge(request), credential=credential)
        if guardian.passkey_id is None or assertion.authenticator.pk != guardian.passkey_id:
            raise ApplicationError("passkey_assertion_invalid",
                                   "Approve with the passkey you became a guardian with.")
        approval = RecoveryApproval.objects.create(
            request=request, guardian=guardian, passkey=assertion.authenticator,
            authenticator_data=assertion.authenticator_data, client_data_json=assertion.client_data_json,
            signature=assertion.signature)
        event_record(owner=request.user, request=request, guardian=guardian, kind="approval_added",
                     actor="guardian", actor_user=user)
        threshold_evaluate_locked(request)
    return approval


def live_approvals(request: RecoveryRequest) -> int:
    """Approvals that count: not withdrawn, by guardians active now."""
    return RecoveryApproval.objects.filter(request=request, withdrawn_at__isnull=True,
                                           guardian__status=Guardian.Status.ACTIVE).count()


def threshold_evaluate_locked(request: RecoveryRequest) -> None:
    """Start or stop the request's clock from its live approvals (the caller holds the wallet lock)."""
    active = Guardian.objects.filter(owner_id=request.user_id, status=Guardian.Status.ACTIVE).count()
    threshold = threshold_of(setup=recovery_setup(user=request.user), guardian_count=active)
    approvals = live_approvals(request)
    request.threshold = threshold
    now = timezone.now()
    if request.status == Status.COLLECTING and active and approvals >= threshold:
        request.status, request.timelock_started_at = Status.TIMELOCKED, now
        request.executes_at = now + timedelta(seconds=request.timelock_seconds)
        request.save()
        event_record(owner=request.user, request=request, kind="timelock_started", actor="system",
                     note=f"{approvals} of {threshold}; executes at {request.executes_at.isoformat()}")
        notify_user(user=request.user, subject="Your Numpay account will be recovered unless you cancel", body=(
            f"Your guardians approved a recovery of your account. It takes effect on "
            f"{request.executes_at:%d %B %Y at %H:%M} UTC unless you cancel it: {cancel_link(request)}\n"
            "Outgoing payments are held until then.\n"),
            sms=f"Numpay: your account will be recovered on {request.executes_at:%d %b %H:%M} UTC. "
                f"Not you? Cancel: {cancel_link(request)}")
    elif request.status == Status.TIMELOCKED and approvals < threshold:
        request.status, request.timelock_started_at, request.executes_at = Status.COLLECTING, None, None
        request.save()
        event_record(owner=request.user, request=request, kind="timelock_stopped", actor="system",
                     note=f"{approvals} of {threshold}")
    else:
        request.save(update_fields=["threshold", "updated_at"])


#: How long a guardian has to answer an on-chain withdraw challenge, and how long its approval stays good.
WITHDRAW_TTL_SECONDS = 600
Phase = RecoveryRequest.ChainPhase


def _withdraw_terms_key(request_id: Any, guardian_id: Any) -> str:
    return f"recovery:withdraw-terms:{request_id}:{guardian_id}"


def _guardian_withdraw_terms(request: RecoveryRequest, guardian: Guardian) -> dict[str, int] | None:
    """The program's ``recovery_withdraw`` terms the guardian's passkey must sign, or ``None`` (the chain does
    not count this guardian's approval). :raises ChainUnavailableError:"""
    if request.chain_phase not in (Phase.STARTED, Phase.WITHDRAW) or not guardian.authority_key:
        return None
    return chain.guardian_withdraw_terms(client=get_chain_client(), request=request,
                                         guardian_key=bytes(guardian.authority_key),
                                         expires_at=int(timezone.now().timestamp()) + WITHDRAW_TTL_SECONDS)


def recovery_withdraw_options(*, request_id: Any, user: Any) -> dict[str, Any] | None:
    """WebAuthn request options for guardian ``user``'s passkey to withdraw their approval on-chain: the
    program's challenge of ``recovery_withdraw`` at the config's nonce now (terms kept
    ``WITHDRAW_TTL_SECONDS``), or ``None`` when the chain does not count their approval (their session
    suffices: :func:`recovery_approval_withdraw` without a credential).

    :raises ApplicationError: ``recovery_request_not_found``, ``recovery_not_guardian``,
        ``recovery_chain_busy`` (the start is in flight: the terms are not known yet), ``passkey_required``.
    :raises ChainUnavailableError: the config could not be read.
    """
    request, guardian = guardian_request(request_id=request_id, user=user)
    terms = _guardian_withdraw_terms(request, guardian)
    if terms is None:
        cache.delete(_withdraw_terms_key(request.id, guardian.pk))
        return None
    cache.set(_withdraw_terms_key(request.id, guardian.pk), terms, WITHDRAW_TTL_SECONDS)
    return request_options(user=user, challenge=chain.withdraw_challenge(request, terms))


def recovery_approval_withdraw(*, request_id: Any, user: Any, credential: Any = None) -> RecoveryApproval:
    """``user`` withdraws their approval. Allowed until execution; falling below the threshold stops the
    clock.

    Before the request is pending on-chain (or when the chain does not count this guardian's approval) their
    session suffices: it only weakens the request. Once the chain counts it, only the guardian's passkey can
    take it back there (``recovery_execute`` is permissionless): ``credential`` must be their assertion over
    :func:`recovery_withdraw_options`' challenge; it is kept for the sweep's on-chain ``recovery_withdraw``
    (:mod:`recovery.services.execution`), and the approval is withdrawn here when that lands.

    :raises ApplicationError: ``recovery_request_not_found``, ``recovery_not_collecting``,
        ``recovery_approval_not_found``, ``recovery_not_guardian``, ``guardian_passkey_required`` (no
        credential, or signed before the terms were asked for), ``passkey_assertion_invalid`` (also: another
        passkey than the guardian's), ``recovery_chain_busy`` (the on-chain state moved meanwhile: ask again).
    :raises ChainUnavailableError: the config could not be read (nothing changed).
    """
    request, guardian = guardian_request(request_id=request_id, user=user)
    seen_phase = request.chain_phase
    chain_approval = None
    needs_chain = _guardian_withdraw_terms(request, guardian) is not None
    if needs_chain:
        terms = cache.get(_withdraw_terms_key(request.id, guardian.pk))
        if not credential or terms is None:
            raise ApplicationError("guardian_passkey_required")
        assertion = assertion_verify(user=user, challenge=chain.withdraw_challenge(request, terms), credential=credential)
        if guardian.passkey_id is None or assertion.authenticator.pk != guardian.passkey_id:
            raise ApplicationError("passkey_assertion_invalid", "Withdraw with the passkey you became a guardian with.")
        chain_approval = {**terms, "public_key": bytes(guardian.authority_key).hex(),
                          "authenticator_data": assertion.authenticator_data.hex(),
                          "client_data_json": assertion.client_data_json.hex(), "signature": assertion.signature.hex()}
    with transaction.atomic():
        request = _locked_open_request(request_id)
        if request.status not in (Status.COLLECTING, Status.TIMELOCKED):
            raise ApplicationError("recovery_not_collecting")
        if request.chain_phase != seen_phase:
            raise ApplicationError("recovery_chain_busy")  # started (or moved) on-chain meanwhile: ask again
        approval = RecoveryApproval.objects.select_for_update().filter(
            request=request, guardian__guardian_user=user, withdrawn_at__isnull=True).first()
        if approval is None:
            raise ApplicationError("recovery_approval_not_found")
        if chain_approval is None:
            approval_withdraw_locked(approval=approval, reason="withdrawn by the guardian", actor="guardian",
                                     actor_user=user, request=request)
            return approval
        cache.delete(_withdraw_terms_key(request.id, guardian.pk))
        approval.chain_withdraw_approval = chain_approval
        approval.save(update_fields=["chain_withdraw_approval"])
        request.save(update_fields=["updated_at"])
        event_record(owner=request.user, request=request, guardian=approval.guardian, kind="chain_withdraw_approved",
                     actor="guardian", actor_user=user)
    return approval


def _approve_terms_key(request_id: Any, guardian_id: Any) -> str:
    return f"recovery:approve-terms:{request_id}:{guardian_id}"


def _guardian_approve_terms(request: RecoveryRequest, guardian: Guardian) -> dict[str, int] | None:
    """The program's ``recovery_approve`` terms the guardian's passkey must sign, or ``None`` (nothing to add
    on-chain: not started there, or the chain counts them already). :raises ChainUnavailableError:"""
    if request.status != Status.TIMELOCKED or request.chain_phase not in (Phase.STARTED, Phase.APPROVE) or (
            not guardian.authority_key):
        return None
    return chain.guardian_approve_terms(client=get_chain_client(), request=request,
                                        guardian_key=bytes(guardian.authority_key),
                                        expires_at=int(timezone.now().timestamp()) + WITHDRAW_TTL_SECONDS)


def recovery_approve_options(*, request_id: Any, user: Any) -> dict[str, Any] | None:
    """WebAuthn request options for guardian ``user``'s passkey to add their approval on-chain, when the
    start could not carry it (one transaction holds about two): the program's challenge of
    ``recovery_approve`` at the config's nonce now (terms kept ``WITHDRAW_TTL_SECONDS``), or ``None`` when
    the chain needs nothing from them (not started there, or it counts their approval already), or they have
    not approved here (approve first: :func:`recovery_approve`).

    :raises ApplicationError: ``recovery_request_not_found``, ``recovery_not_guardian``,
        ``recovery_chain_busy`` (the start is in flight: the terms are not known yet), ``passkey_required``.
    :raises ChainUnavailableError: the config could not be read.
    """
    request, guardian = guardian_request(request_id=request_id, user=user)
    approved = RecoveryApproval.objects.filter(request=request, guardian=guardian, withdrawn_at__isnull=True).exists()
    terms = _guardian_approve_terms(request, guardian) if approved else None
    if terms is None:
        cache.delete(_approve_terms_key(request.id, guardian.pk))
        return None
    cache.set(_approve_terms_key(request.id, guardian.pk), terms, WITHDRAW_TTL_SECONDS)
    return request_options(user=user, challenge=chain.approve_challenge(request, terms))


def recovery_chain_approve(*, request_id: Any, user: Any, credential: Any) -> RecoveryApproval:
    """Guardian ``user``, whose approval counts here but not yet on-chain, approves the pending on-chain
    request with their passkey: ``credential`` is their assertion over :func:`recovery_approve_options`'
    challenge; it is kept for the sweep's ``recovery_approve`` (:mod:`recovery.services.execution`), which
    sends it only while the config's nonce is still the one signed (else the guardian is asked again).

    :raises ApplicationError: ``recovery_request_not_found``, ``recovery_not_collecting`` (not going ahead,
        or the chain needs nothing from them), ``recovery_approval_not_found`` (approve here first),
        ``recovery_not_guardian``, ``guardian_passkey_required`` (no credential, or signed before the terms
        were asked for), ``passkey_assertion_invalid`` (also: another passkey than the guardian's),
        ``recovery_chain_busy`` (the on-chain state moved meanwhile: ask again).
    :raises ChainUnavailableError: the config could not be read (nothing changed).
    """
    request, guardian = guardian_request(request_id=request_id, user=user)
    terms = cache.get(_approve_terms_key(request.id, guardian.pk))
    if not credential or terms is None:
        raise ApplicationError("guardian_passkey_required")
    if _guardian_approve_terms(request, guardian) is None:
        raise ApplicationError("recovery_not_collecting")
    assertion = assertion_verify(user=user, challenge=chain.approve_challenge(request, terms), credential=credential)
    if guardian.passkey_id is None or assertion.authenticator.pk != guardian.passkey_id:
        raise ApplicationError("passkey_assertion_invalid", "Approve with the passkey you became a guardian with.")
    chain_approval = {**terms, "public_key": bytes(guardian.authority_key).hex(),
                      "authenticator_data": assertion.authenticator_data.hex(),
                      "client_data_json": assertion.client_data_json.hex(), "signature": assertion.signature.hex()}
    with transaction.atomic():
        request = _locked_open_request(request_id)
        if request.status != Status.TIMELOCKED:
            raise ApplicationError("recovery_not_collecting")
        if request.chain_phase not in (Phase.STARTED, Phase.APPROVE):
            raise ApplicationError("recovery_chain_busy")
        approval = RecoveryApproval.objects.select_for_update().filter(
            request=request, guardian=guardian, withdrawn_at__isnull=True).first()
        if approval is None:
            raise ApplicationError("recovery_approval_not_found")
        cache.delete(_approve_terms_key(request.id, guardian.pk))
        approval.chain_approve_approval = chain_approval
        approval.save(update_fields=["chain_approve_approval"])
        request.save(update_fields=["updated_at"])
        event_record(owner=request.user, request=request, guardian=guardian, kind="chain_approve_approved",
                     actor="guardian", actor_user=user)
    return approval


def approval_withdraw_locked(*, approval: RecoveryApproval, reason: str, actor: str, actor_user: Any = None,
                             request: RecoveryRequest | None = None) -> None:
    """Withdraw one approval and re-evaluate its request (the caller holds the wallet lock)."""
    approval.withdrawn_at, approval.withdrawn_reason = timezone.now(), reason
    approval.save(update_fields=["withdrawn_at", "withdrawn_reason"])
    request = request or recovery_request_qs_select_for_update().select_related("user").get(pk=approval.request_id)
    event_record(owner=request.user, request=request, guardian=approval.guardian, kind="approval_withdrawn",
                 actor=actor, actor_user=actor_user, note=reason)
    threshold_evaluate_locked(request)


# --- ending a request -----------------------------------------------------------------------------------
def _end(request: RecoveryRequest, status: str, *, reason: str, actor: str, actor_user: Any = None) -> None:
    request.status, request.ended_at, request.end_reason = status, timezone.now(), reason
    request.cancel_nonce, request.executes_at = "", None
    request.save()
    event_record(owner=request.user, request=request, kind=f"request_{status}", actor=actor, actor_user=actor_user,
                 note=reason)


def _expires(request: RecoveryRequest, *, now: Any) -> bool:
    """Whether ``request`` ends as expired at ``now``: still waiting (verifying / collecting), or approved here
    but with no clock running (``timelocked`` without ``executes_at``: the chain's approvals never reached the
    threshold, e.g. a guardian the start could not carry never approved on the wallet), past ``expires_at``. A
    request whose timelock runs does not expire: it executes, or the owner cancels or an operator freezes it."""
    waiting = request.status in (Status.VERIFYING, Status.COLLECTING) or (
        request.status == Status.TIMELOCKED and request.executes_at is None)
    return waiting and request.expires_at <= now


def requests_expire(*, now: Any = None) -> int:
    """End the requests that expire (:func:`_expires`; the beat sweep). One started on-chain is then cancelled
    there by the sweep (:mod:`recovery.services.execution`, item 4). :returns: how many."""
    now = now or timezone.now()
    ended = 0
    waiting = Q(status__in=(Status.VERIFYING, Status.COLLECTING)) | Q(status=Status.TIMELOCKED,
                                                                       executes_at__isnull=True)
    for request_id in RecoveryRequest.objects.filter(waiting, expires_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            request = _locked_open_request(request_id)
            if _expires(request, now=now):
                _end(request, Status.EXPIRED, reason="not approved in time", actor="system")
                ended += 1
    return ended
