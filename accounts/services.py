"""Writes of the accounts app: queueing and delivering SMS, recording sent emails.

Texts are stored first (:class:`~accounts.models.OutboundMessage`) and delivered by the Celery task
:func:`accounts.tasks.sms_deliver` after commit, which carries only the message id: a sign-in code never
travels through the broker and never reaches a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from numpay.core.errors import ConflictError

from .app_settings import app_settings
from .models import OutboundMessage, User
from .phones import phone_mask
from .selectors import can_remove_sign_in_method, sign_in_method_removal_refusal
from .sms import SmsRejectedError, SmsTransientError, get_sms_backend

logger = logging.getLogger(__name__)


def sms_queue(*, to: str, body: str) -> OutboundMessage:
    """Store a text to ``to`` (E.164) and deliver it from the worker once the caller's transaction commits.

    :returns: the queued message (status ``queued``).
    """
    from .tasks import sms_deliver

    message = OutboundMessage.objects.create(channel=OutboundMessage.Channel.SMS, recipient=to, body=body)
    transaction.on_commit(lambda: sms_deliver.delay(message.pk))
    return message


def sms_deliver(*, message_id: int, is_last_attempt: bool) -> str:
    """Send a queued text through the configured backend, at most once (the row is locked and re-read).

    :param is_last_attempt: when true, a transient failure ends the message ``failed`` instead of raising.
    :returns: the message's status after this attempt (``sent``, ``failed``; or the status it already had).
    :raises SmsTransientError: a transient failure while retries remain (the task retries with backoff).
    """
    with transaction.atomic():
        message = OutboundMessage.objects.select_for_update().get(pk=message_id)
        if message.status != OutboundMessage.Status.QUEUED:
            return message.status
        message.attempts += 1
        try:
            message.provider_message_id = get_sms_backend().send(to=message.recipient, body=message.body)
        except SmsTransientError as exc:
            if is_last_attempt:
                _fail(message, str(exc))
                return message.status
            message.save(update_fields=["attempts"])
            logger.warning("SMS %s to %s not sent yet (attempt %s): %s", message.pk,
                           phone_mask(message.recipient), message.attempts, exc)
            retry_error = exc
        except SmsRejectedError as exc:
            _fail(message, str(exc))
            return message.status
        else:
            message.status = OutboundMessage.Status.SENT
            message.sent_at = timezone.now()
            if not app_settings.KEEP_SMS_BODIES:
                message.body = ""
            message.save(update_fields=["attempts", "provider_message_id", "status", "sent_at", "body"])
            return message.status
    raise retry_error  # after commit: the attempt count is kept


def _fail(message: OutboundMessage, reason: str) -> None:
    message.status = OutboundMessage.Status.FAILED
    message.error = reason[:255]
    message.body = ""  # never kept for a message nobody received
    message.save(update_fields=["attempts", "status", "error", "body"])
    logger.error("SMS %s to %s failed after %s attempt(s): %s", message.pk, phone_mask(message.recipient),
                 message.attempts, reason)


def email_record(*, recipients: Iterable[str], subject: str, body: str) -> OutboundMessage:
    """Record an email as sent (the development outbox's email backend).

    :returns: the stored message (status ``sent``).
    """
    return OutboundMessage.objects.create(
        channel=OutboundMessage.Channel.EMAIL, recipient=", ".join(recipients)[:320], subject=subject[:255],
        body=body, status=OutboundMessage.Status.SENT, attempts=1, sent_at=timezone.now())


def user_phone_remove(*, user: User) -> None:
    """Remove ``user``'s phone number, unless it is their only way to sign in.

    :raises numpay.core.errors.ConflictError: ``last_sign_in_method``.
    """
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.phone and locked.phone_verified and not can_remove_sign_in_method(user=locked, kind="phone",
                                                                                    key="phone"):
            raise ConflictError("last_sign_in_method")
        User.objects.filter(pk=user.pk).update(phone=None, phone_verified=False)
    user.phone, user.phone_verified = None, False


def user_passkey_remove(*, request: Any, authenticator: Any) -> None:
    """Remove a passkey of the signed-in user through allauth's WebAuthn flow (its notification included).

    :raises numpay.core.errors.ConflictError: see :func:`user_passkeys_remove`.
    """
    user_passkeys_remove(request=request, authenticators=[authenticator])


def user_passkeys_remove(*, request: Any, authenticators: Iterable[Any]) -> None:
    """Remove passkeys (``mfa.Authenticator`` rows of one user) through allauth's WebAuthn flow, all or none:
    every path that removes a passkey comes here (the account page, allauth's page and its headless API,
    :mod:`accounts.views`).

    Refused, with nothing removed, when one of them is the user's only way to sign in (never, while every
    account keeps an email, a phone or a social account) or an owner of their wallet on-chain, or being added
    to or taken off it (:func:`accounts.selectors.sign_in_method_removal_refusal`): an owner passkey is first
    taken off the wallet by :mod:`payments.passkey_removals`, then removed here. Checked under the user's and their wallet's
    row locks (the wallet's serialises it with an owner passkey being added).

    :raises numpay.core.errors.ConflictError: ``last_sign_in_method`` or ``passkey_owns_wallet``.
    :raises allauth.core.exceptions.ReauthenticationRequired: allauth's recent-authentication rule.
    """
    from allauth.mfa.webauthn.internal import flows as webauthn_flows

    authenticators = list(authenticators)
    if not authenticators:
        return
    from wallets.lock_objects import wallet_qs_select_for_update

    with transaction.atomic():
        # NO KEY UPDATE: rows being inserted that refer to the user (FOR KEY SHARE, e.g. while an owner passkey is
        # being added under the wallet's lock) must not wait for this lock, or the two would deadlock
        locked = User.objects.select_for_update(no_key=True).get(pk=authenticators[0].user_id)
        # payments.passkey_owners.passkey_owner_add writes a new owner under the wallet's lock: with it held, a
        # passkey is either removed first (the addition then finds no passkey) or seen becoming an owner here
        list(wallet_qs_select_for_update().filter(user=locked))
        for authenticator in authenticators:
            refusal = sign_in_method_removal_refusal(user=locked, kind="passkey", key=str(authenticator.pk))
            if refusal == "last_sign_in_method":
                raise ConflictError("last_sign_in_method")
            if refusal == "passkey_owns_wallet":
                raise ConflictError("passkey_owns_wallet")
        webauthn_flows.remove_authenticators(request, authenticators)
