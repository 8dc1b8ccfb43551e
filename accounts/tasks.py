"""Celery tasks of the accounts app (thin: ids in, a service call)."""

from __future__ import annotations

from celery import shared_task

from . import services
from .app_settings import app_settings
from .sms import SmsTransientError


@shared_task(name="accounts.tasks.sms_deliver", bind=True, max_retries=None, time_limit=60, soft_time_limit=45)
def sms_deliver(self, message_id: int) -> str:  # noqa: ANN001
    """Deliver one queued SMS; transient failures retry with exponential backoff up to ``SMS_MAX_RETRIES``
    (then the message ends ``failed``); a refusal by the gateway ends it at once.

    :param message_id: :class:`accounts.models.OutboundMessage` primary key (the only argument: no code
        ever travels through the broker).
    :returns: the message's status.
    """
    retries = self.request.retries
    try:
        return services.sms_deliver(message_id=message_id, is_last_attempt=retries >= app_settings.SMS_MAX_RETRIES)
    except SmsTransientError as exc:
        raise self.retry(countdown=app_settings.SMS_RETRY_BACKOFF_SECONDS * 2**retries, exc=exc) from None
