"""What every recovery service shares: the timeline, notifications, the wallet lock, secrets."""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.services import sms_queue
from numpay.core.errors import ApplicationError
from wallets.models import Wallet

from ..app_settings import app_settings
from ..lock_objects import wallet_qs_select_for_update
from ..models import Guardian, RecoveryEmail, RecoveryEvent, RecoveryRequest

CANCEL_LINK_SALT = "recovery.cancel-link"
logger = logging.getLogger(__name__)


def event_record(*, owner: Any, kind: str, actor: str, request: RecoveryRequest | None = None,
                 guardian: Guardian | None = None, actor_user: Any = None, note: str = "") -> RecoveryEvent:
    """Append one step to the owner's recovery timeline (the audit record).

    :param actor: ``owner`` | ``guardian`` | ``requester`` | ``operator`` | ``system``.
    """
    return RecoveryEvent.objects.create(owner=owner, request=request, guardian=guardian, actor=actor,
                                        actor_user=actor_user, kind=kind, note=note[:255])


def locked_wallet(*, user: Any) -> Wallet:
    """``user``'s wallet row, locked ``FOR UPDATE`` (call inside ``transaction.atomic``).

    :raises NotFoundError: ``wallet_not_found``.
    """
    wallet = wallet_qs_select_for_update().filter(user=user).first()
    if wallet is None:
        raise ApplicationError("wallet_not_found")
    return wallet


def public_url(path: str) -> str:
    """``path`` on the site's public URL (``NUMPAY_PUBLIC_URL``)."""
    return f"{settings.NUMPAY_PUBLIC_URL.rstrip('/')}{path}"


def new_secret() -> tuple[str, str]:
    """A fresh URL-safe secret and its SHA-256 (hex), the only form stored."""
    secret = secrets.token_urlsafe(32)
    return secret, secret_hash(secret)


def secret_hash(secret: str) -> str:
    """SHA-256 (hex) of a secret token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def email_on_commit(*, to: str, subject: str, body: str) -> RecoveryEmail:
    """Store an email with the current transaction and have the worker send it once that commits
    (:func:`recovery.tasks.recovery_email_deliver`, retried on transient failures; never sent for a
    rolled-back change). Only the row's id goes through the broker.

    :returns: the queued email (status ``queued``).
    """
    from ..tasks import recovery_email_deliver

    email = RecoveryEmail.objects.create(recipient=to, subject=subject[:255], body=body)
    transaction.on_commit(lambda: recovery_email_deliver.delay(email.pk))
    return email


class EmailTransientError(Exception):
    """A recovery email could not be sent for a reason that may pass (connection, timeout, SMTP 4xx)."""


def _is_transient(error: Exception) -> bool:
    """Whether a send failure may pass on a later try: an SMTP 4xx reply (RFC 5321 section 4.2.1: transient
    negative completion), a dropped SMTP connection, or a network error (refused, reset, unreachable, name
    resolution, timeout). Other SMTP errors (5xx, an unsupported command) are terminal."""
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _message in error.recipients.values())
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return True
    return not isinstance(error, smtplib.SMTPException) and isinstance(error, OSError)


def recovery_email_deliver(*, email_id: int, is_last_attempt: bool) -> str:
    """Send a queued recovery email at most once at a time (its row is locked and re-read; an email already
    ``sent`` or ``failed`` is left alone, so a repeated task sends nothing).

    :param email_id: :class:`recovery.models.RecoveryEmail` primary key.
    :param is_last_attempt: when true, a transient failure ends the email ``failed`` instead of raising.
    :returns: the email's status after this attempt (``sent``, ``failed``, or ``queued`` when it is unknown).
    :raises EmailTransientError: a transient failure while retries remain (the task retries with backoff);
        the attempt is counted first.
    """
    with transaction.atomic():
        email = RecoveryEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None:
            return RecoveryEmail.Status.QUEUED  # rolled back after all (on_commit never fired for it)
        if email.status != RecoveryEmail.Status.QUEUED:
            return email.status
        email.attempts += 1
        try:
            send_mail(subject=email.subject, message=email.body, from_email=None, recipient_list=[email.recipient])
        except (smtplib.SMTPException, OSError) as error:
            email.error = f"{type(error).__name__}: {error}"[:255]
            if _is_transient(error) and not is_last_attempt:
                email.save(update_fields=["attempts", "error"])
                failure, failure_type = EmailTransientError(email.error), type(error).__name__
            else:
                email.status, email.body = RecoveryEmail.Status.FAILED, ""  # never kept for an email nobody got
                email.save(update_fields=["attempts", "error", "status", "body"])
                logger.error("recovery email %s failed after %s attempt(s): %s", email.pk, email.attempts,
                             type(error).__name__)
                return email.status
        else:
            email.status, email.sent_at, email.error = RecoveryEmail.Status.SENT, timezone.now(), ""
            if not app_settings.KEEP_EMAIL_BODIES:
                email.body = ""  # codes and cancel links are not kept once they left
            email.save(update_fields=["attempts", "status", "sent_at", "error", "body"])
            return email.status
    logger.warning("recovery email %s not sent yet (attempt %s): %s", email_id, email.attempts, failure_type)
    raise failure  # after commit: the attempt count is kept


def notify_user(*, user: Any, subject: str, body: str, sms: str | None = None) -> list[str]:
    """Tell ``user`` on every channel Numpay knows: email, and SMS when a verified phone is known.

    :returns: the channels used (``["email", "sms"]``).
    """
    channels = []
    if user.email:
        email_on_commit(to=user.email, subject=subject, body=body)
        channels.append("email")
    if user.phone and user.phone_verified:
        sms_queue(to=user.phone, body=sms or subject)
        channels.append("sms")
    return channels


def cancel_link(request: RecoveryRequest) -> str:
    """The owner's signed, single-use cancel link of ``request`` (it names the request and its cancel nonce;
    cancelling still needs the owner's passkey or session, and clears the nonce)."""
    signed = signing.dumps({"r": str(request.id), "n": request.cancel_nonce}, salt=CANCEL_LINK_SALT)
    return public_url(f"/recovery/cancel/{signed}/")


def request_by_cancel_link(signed: str) -> RecoveryRequest:
    """The request a cancel link names, if the link is still good.

    :raises ApplicationError: ``recovery_cancel_link_invalid`` (tampered, for another request, or used).
    """
    try:
        data = signing.loads(signed, salt=CANCEL_LINK_SALT, max_age=app_settings.REQUEST_TTL_SECONDS
                             + app_settings.MAX_TIMELOCK_SECONDS)
    except signing.BadSignature as error:
        raise ApplicationError("recovery_cancel_link_invalid") from error
    request = RecoveryRequest.objects.select_related("user").filter(pk=data.get("r")).first()
    if request is None or not request.cancel_nonce or not constant_time_compare(request.cancel_nonce, data.get("n", "")):
        raise ApplicationError("recovery_cancel_link_invalid")
    return request
