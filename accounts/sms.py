"""SMS delivery behind one small interface (:class:`SmsBackend`) with two backends, chosen by ``SMS_BACKEND``.

- ``outbox`` (:class:`OutboxSmsBackend`): development and tests. Nothing leaves the machine; the message
  row (:class:`accounts.models.OutboundMessage`) is the outbox, listed at ``/dev/outbox/``.
- ``twilio`` (:class:`TwilioSmsBackend`): Twilio's Programmable Messaging REST API
  (``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP basic auth, form body ``To``, ``Body``
  and ``From`` or ``MessagingServiceSid``; https://www.twilio.com/docs/messaging/api/message-resource).

A backend tells a transient failure (:class:`SmsTransientError`: network, timeout, 429, 5xx — worth a
retry) from a terminal one (:class:`SmsRejectedError`: 4xx, e.g. an unreachable number or bad
credentials). Neither error's text ever contains the message body.
"""

from __future__ import annotations

from typing import Protocol

import httpx2
from django.utils.module_loading import import_string

from .app_settings import SMS_BACKENDS, app_settings


class SmsError(Exception):
    """Sending failed; ``str(error)`` is a short reason for operators (never the message text)."""


class SmsTransientError(SmsError):
    """The gateway could not be reached or asked us to come back later: retry with backoff."""


class SmsRejectedError(SmsError):
    """The gateway refused the message for good (bad number, bad credentials, blocked): do not retry."""


class SmsBackend(Protocol):
    """Sends one text message."""

    def send(self, *, to: str, body: str) -> str:
        """Send ``body`` to ``to`` (E.164).

        :returns: the gateway's id of the message (``""`` when it has none).
        :raises SmsTransientError: worth retrying later.
        :raises SmsRejectedError: refused for good.
        """
        ...


class OutboxSmsBackend:
    """Development/test backend: the stored :class:`~accounts.models.OutboundMessage` is the delivery."""

    def send(self, *, to: str, body: str) -> str:
        return ""


class TwilioSmsBackend:
    """Twilio's REST API over httpx2 (the project's HTTP client), with an explicit timeout; credentials from
    the environment."""

    def __init__(self, *, transport: httpx2.BaseTransport | None = None) -> None:
        self._transport = transport

    def send(self, *, to: str, body: str) -> str:
        settings = app_settings
        sid = settings.TWILIO_ACCOUNT_SID
        form = {"To": to, "Body": body}
        if settings.TWILIO_MESSAGING_SERVICE_SID:
            form["MessagingServiceSid"] = settings.TWILIO_MESSAGING_SERVICE_SID
        else:
            form["From"] = settings.TWILIO_FROM_NUMBER
        url = f"{settings.TWILIO_API_BASE_URL.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        try:
            with httpx2.Client(timeout=settings.SMS_TIMEOUT_SECONDS, transport=self._transport) as client:
                response = client.post(url, data=form, auth=(sid, settings.TWILIO_AUTH_TOKEN))
        except httpx2.HTTPError as exc:
            raise SmsTransientError(f"Twilio unreachable: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise SmsTransientError(f"Twilio answered HTTP {response.status_code}")
        if response.status_code >= 400:
            raise SmsRejectedError(f"Twilio refused the message: HTTP {response.status_code}{_twilio_code(response)}")
        try:
            return str(response.json().get("sid", ""))[:64]
        except ValueError:
            return ""


def _twilio_code(response: httpx2.Response) -> str:
    """`` (Twilio error 21211)`` from a Twilio error body, or ``""``."""
    try:
        code = response.json().get("code")
    except ValueError:
        return ""
    return f" (Twilio error {int(code)})" if isinstance(code, int) else ""


def get_sms_backend() -> SmsBackend:
    """The backend named by ``SMS_BACKEND``.

    :raises KeyError: an unknown backend name (``accounts.checks`` reports it at start-up).
    """
    return import_string(SMS_BACKENDS[app_settings.SMS_BACKEND])()
