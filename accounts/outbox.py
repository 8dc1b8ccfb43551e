"""The development outbox's email backend: every email is stored as an
:class:`~accounts.models.OutboundMessage` (web process and worker alike), listed at ``/dev/outbox/``."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage

from .services import email_record


class OutboxEmailBackend(BaseEmailBackend):
    """``EMAIL_BACKEND = "accounts.outbox.OutboxEmailBackend"``: nothing leaves the machine."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            email_record(recipients=message.recipients(), subject=str(message.subject), body=str(message.body))
        return len(email_messages)
