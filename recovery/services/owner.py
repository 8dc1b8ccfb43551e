"""The owner's side of a recovery request (issue 10 item 3): the cancel link, cancelling with a passkey or a
session (on-chain too, with the owner's passkey, for a wallet protected before the custody key could hold
``recovery_cancel``), an operator's freeze, and the payment hold during a timelock."""

from __future__ import annotations

import functools
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from numpay.core import sql
from numpay.core.errors import ApplicationError
from numpay.core.solana import get_chain_client
from wallets.models import Wallet

from .. import chain, digests
from ..app_settings import app_settings
from ..models import RecoveryRequest, RecoverySetup
from ..passkeys import assertion_verify, authenticator_key, request_options
from .common import event_record, notify_user, request_by_cancel_link
from .requests import _end, _locked_open_request

Status = RecoveryRequest.Status


def _cancel_terms_key(request_id: Any) -> str:
    return f"recovery:owner-cancel-terms:{request_id}"


def recovery_cancel_options(*, request_id: Any) -> dict[str, Any]:
    """WebAuthn request options for the owner's passkey to cancel ``request_id``. When the request is already
    pending on-chain and only an owner passkey can cancel it there (a wallet protected before the custody key
    could hold ``recovery_cancel``), the challenge is the program's challenge of that ``recovery_cancel`` (its
    terms kept for ``OWNER_CANCEL_TTL_SECONDS``); else :func:`recovery.digests.cancel_challenge`.

    :raises ApplicationError: ``recovery_request_not_found``, ``passkey_required``.
    :raises ChainUnavailableError: the config could not be read.
    """
    request = RecoveryRequest.objects.select_related("user", "wallet").filter(pk=request_id).first()
    if request is None:
        raise ApplicationError("recovery_request_not_found")
    terms = _owner_cancel_terms(request)
    if terms is None:
        cache.delete(_cancel_terms_key(request.id))
        return request_options(user=request.user, challenge=digests.cancel_challenge(request))
    cache.set(_cancel_terms_key(request.id), terms, OWNER_CANCEL_TTL_SECONDS)
    return request_options(user=request.user, challenge=chain.owner_cancel_challenge(request, terms))


#: How long the owner has to answer an on-chain cancel challenge, and how long its approval stays good.
OWNER_CANCEL_TTL_SECONDS = 600


def _owner_cancel_terms(request: RecoveryRequest) -> dict[str, int] | None:
    if request.chain_phase not in (RecoveryRequest.ChainPhase.START, RecoveryRequest.ChainPhase.STARTED,
                                   RecoveryRequest.ChainPhase.CANCEL_FAILED):
        return None
    expires_at = int(timezone.now().timestamp()) + OWNER_CANCEL_TTL_SECONDS
    return chain.owner_cancel_terms(client=get_chain_client(), request=request, expires_at=expires_at)


def recovery_cancel(*, request_id: Any, session_user: Any = None, credential: Any = None,
                    link: str | None = None) -> RecoveryRequest:
    """The owner cancels, with their session (``session_user`` is the account) or their passkey (an
    assertion over :func:`recovery_cancel_options`' challenge by one of the account's passkeys). The cancel
    link, when given, must be the request's current one; it is single use (the nonce is cleared).

    A request already pending on-chain of a wallet whose custody key cannot cancel it there (protected before
    the ``recovery_cancel`` bit: :func:`recovery.chain.custody_cancels`) can only be stopped there by an owner
    passkey: the session is not enough, and the owner's assertion (over the program's challenge) is kept for
    the sweep's on-chain ``recovery_cancel``. Otherwise the sweep's custody-signed cancel stops it there.

    :raises ApplicationError: ``recovery_request_not_found``, ``recovery_not_cancellable``,
        ``recovery_cancel_link_invalid``, ``owner_passkey_required`` (neither session nor passkey, or a
        session where the chain needs the passkey), ``passkey_assertion_invalid``.
    :raises ChainUnavailableError: the config could not be read (nothing changed).
    """
    request = RecoveryRequest.objects.select_related("user", "wallet").filter(pk=request_id).first()
    if request is None:
        raise ApplicationError("recovery_request_not_found")
    if link is not None and request_by_cancel_link(link).pk != request.pk:
        raise ApplicationError("recovery_cancel_link_invalid")
    is_owner_session = session_user is not None and getattr(session_user, "pk", None) == request.user_id
    chain_approval = None
    if credential:
        terms = cache.get(_cancel_terms_key(request.id))
        if terms is None and _owner_cancel_terms(request) is not None:  # signed before it started on-chain
            raise ApplicationError("owner_passkey_required", "Confirm again with your passkey: this recovery has "
                                                             "just started on your wallet.")
        challenge = chain.owner_cancel_challenge(request, terms) if terms else digests.cancel_challenge(request)
        assertion = assertion_verify(user=request.user, challenge=challenge, credential=credential)
        if terms:
            chain_approval = {**terms, "public_key": authenticator_key(assertion.authenticator).hex(),
                              "authenticator_data": assertion.authenticator_data.hex(),
                              "client_data_json": assertion.client_data_json.hex(),
                              "signature": assertion.signature.hex()}
    elif not is_owner_session:
        raise ApplicationError("owner_passkey_required")
    elif _owner_cancel_terms(request) is not None:
        raise ApplicationError("owner_passkey_required", "Confirm with your passkey: this recovery has started on "
                                                         "your wallet, and only your passkey can stop it there.")
    with transaction.atomic():
        request = _locked_open_request(request_id)
        if link is not None and request_by_cancel_link(link).pk != request.pk:
            raise ApplicationError("recovery_cancel_link_invalid")
        if request.status not in RecoveryRequest.CANCELLABLE_STATUSES:
            if chain_approval is None or request.chain_phase != RecoveryRequest.ChainPhase.CANCEL_FAILED:
                raise ApplicationError("recovery_not_cancellable")
            # ended here but still pending on-chain (protected mode): the owner's passkey stops it there
            request.chain_cancel_approval, request.cancel_nonce = chain_approval, ""
            request.save(update_fields=["chain_cancel_approval", "cancel_nonce", "updated_at"])
            event_record(owner=request.user, request=request, kind="chain_cancel_approved", actor="owner",
                         actor_user=request.user)
            return request
        request.chain_cancel_approval = chain_approval
        _end(request, Status.CANCELLED, reason=f"cancelled by the owner ({'passkey' if credential else 'session'})",
             actor="owner", actor_user=request.user)
        notify_user(user=request.user, subject="Recovery cancelled", body=(
            "You cancelled the recovery of your Numpay account. Nothing changed. If you did not start it, "
            "consider telling your guardians.\n"))
    return request


def recovery_freeze(*, request_id: Any, operator: Any, reason: str) -> RecoveryRequest:
    """An operator stops a suspicious request (its clock stops for good). Operators can never approve. A
    request already started on-chain is then cancelled there by the sweep
    (:mod:`recovery.services.execution`, item 4), with the custody key's ``recovery_cancel`` in protected mode.

    :raises ApplicationError: ``recovery_request_not_found``, ``recovery_not_cancellable``.
    """
    with transaction.atomic():
        request = _locked_open_request(request_id)
        if request.status not in RecoveryRequest.CANCELLABLE_STATUSES:
            raise ApplicationError("recovery_not_cancellable")
        _end(request, Status.FROZEN, reason=f"frozen by an operator: {reason}"[:255], actor="operator",
             actor_user=operator)
        notify_user(user=request.user, subject="A recovery of your Numpay account was stopped", body=(
            "Our team stopped a suspicious recovery request on your account. Nothing changed. Contact support "
            "if you need help.\n"))
    return request


def recovery_hold_check(*, wallet: Wallet) -> None:
    """Refuse an outgoing payment while a recovery of ``wallet`` has its timelock running (or is executing)
    and the owner's rules hold payments (called by ``payments.services.payment_create`` under the wallet
    lock).

    :raises ApplicationError: ``recovery_payments_held`` (409).
    """
    if not app_settings.HOLD_PAYMENTS:
        return
    # every payment runs this under the wallet lock: one hand-written statement (numpay.core.sql); a request
    # holds unless its user's setup says not to (no setup: it holds)
    if sql.fetchone(_held_sql(), [sql.value(RecoveryRequest, "wallet", wallet.pk), *HOLDING_STATUSES]) is not None:
        raise ApplicationError("recovery_payments_held")


#: A recovery request in these states holds its wallet's outgoing payments (when its owner's setup says so).
HOLDING_STATUSES = (Status.TIMELOCKED, Status.EXECUTING)


@functools.cache
def _held_sql() -> str:
    setup = RecoverySetup
    return (f"SELECT 1 FROM {sql.table(RecoveryRequest)} r LEFT JOIN {sql.table(setup)} s "  # noqa: S608 - model names; values are parameters
            f"ON s.{sql.column(setup, 'user')} = r.{sql.column(RecoveryRequest, 'user')} "
            f"WHERE r.{sql.column(RecoveryRequest, 'wallet')} = %s "
            f"AND r.{sql.column(RecoveryRequest, 'status')} IN ({sql.placeholders(HOLDING_STATUSES)}) "
            f"AND (s.{sql.column(setup, 'hold_payments')} IS NULL OR s.{sql.column(setup, 'hold_payments')}) "
            "LIMIT 1")
