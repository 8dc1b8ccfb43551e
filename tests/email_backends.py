"""Email backends of the tests: Django's in-memory backend behind a mail server that fails on purpose."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Sequence

from django.core.mail.backends.locmem import EmailBackend
from django.core.mail.message import EmailMessage

_lock = threading.Lock()
#: what the next sends do: ``"disconnect"`` (transient), ``"refuse"`` (terminal, 550), else deliver
plan: list[str] = []
#: sends tried (delivered or not)
tries: list[str] = []


class FailingEmailBackend(EmailBackend):
    """``EMAIL_BACKEND = "tests.email_backends.FailingEmailBackend"``: each send takes the next step of
    :data:`plan` (a lost connection, or a 550 refusal of the recipient); when the plan is empty it delivers
    to ``django.core.mail.outbox`` as the in-memory backend does."""

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        with _lock:
            step = plan.pop(0) if plan else "deliver"
            tries.append(step)
        if step == "disconnect":
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if step == "refuse":
            raise smtplib.SMTPRecipientsRefused({messages[0].to[0]: (550, b"5.1.1 no such user")})
        return super().send_messages(messages)
