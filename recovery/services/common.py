"""What every recovery service shares: the timeline, notifications, the wallet lock, secrets."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.utils.crypto import constant_time_compare

from accounts.services import sms_queue
from numpay.core.errors import ApplicationError
from wallets.models import Wallet

from ..app_settings import app_settings
from ..lock_objects import wallet_qs_select_for_update
from ..models import Guardian, RecoveryEvent, RecoveryRequest

CANCEL_LINK_SALT = "recovery.cancel-link"


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


def email_on_commit(*, to: str, subject: str, body: str) -> None:
    """Send an email once the current transaction commits (never for a rolled-back change)."""
    transaction.on_commit(lambda: send_mail(subject=subject, message=body, from_email=None, recipient_list=[to]))


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
