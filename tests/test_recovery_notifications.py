"""Recovery emails go through the real Celery worker: stored with the change that causes them, sent after
commit by ``recovery.tasks.recovery_email_deliver`` (only the row's id travels through the broker), retried
with backoff on transient failures (a lost connection, SMTP 4xx) and only on those, at most
``NUMPAY_RECOVERY_EMAIL_MAX_RETRIES`` times, and never sent twice. Texts already go through
``accounts.tasks.sms_deliver`` (tests/test_sms_delivery.py)."""

from __future__ import annotations

import smtplib
import socket
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import transaction

from recovery.models import RecoveryEmail
from recovery.services import recovery_start
from recovery.services.common import _is_transient, email_on_commit
from recovery.tasks import recovery_email_deliver
from tests import email_backends
from tests.helpers import wait_until
from tests.recovery_support import add_guardian, last_code, person

Status = RecoveryEmail.Status


@pytest.fixture(autouse=True)
def _setup(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0
    settings.NUMPAY_RECOVERY_EMAIL_RETRY_BACKOFF_SECONDS = 0.05
    email_backends.plan.clear()
    email_backends.tries.clear()


def _status(email: RecoveryEmail) -> str:
    return RecoveryEmail.objects.get(pk=email.pk).status


def test_a_recovery_code_is_emailed_by_the_worker(celery_worker: Any, make_user: Any) -> None:
    # given an owner with a guardian (their invitation, too, was emailed by the worker)
    owner = person(make_user, "owner@example.com")
    add_guardian(owner, person(make_user, "guardian@example.com"))
    assert wait_until(lambda: any(m.to == ["guardian@example.com"] for m in mail.outbox), timeout=30)
    # when someone asks to recover the account
    recovery_start(identifier="owner@example.com", client_key="198.51.100.21")
    code = last_code("owner@example.com")
    # then the worker sends the code email once, and its row says so
    assert wait_until(lambda: any(code in m.body for m in mail.outbox), timeout=30)
    sent = [m for m in mail.outbox if code in m.body]
    assert [(m.to, m.subject) for m in sent] == [(["owner@example.com"], "Your Numpay recovery code")]
    email = RecoveryEmail.objects.get(recipient="owner@example.com", subject="Your Numpay recovery code")
    assert wait_until(lambda: _status(email) == Status.SENT, timeout=30)
    email.refresh_from_db()
    assert (email.attempts, email.error) == (1, "")
    assert email.sent_at is not None


def test_the_email_of_a_rolled_back_change_is_neither_stored_nor_sent(celery_worker: Any) -> None:
    # when a change that queued an email rolls back
    def change() -> None:
        with transaction.atomic():
            email_on_commit(to="owner@example.com", subject="Someone is trying to recover your Numpay account",
                            body="cancel link")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change()
    # then there is nothing to send, and no task was queued for it
    assert not RecoveryEmail.objects.exists()
    assert not email_backends.tries


def test_a_lost_connection_is_retried_until_the_email_is_sent(celery_worker: Any, settings: Any) -> None:
    # given a mail server that drops the first two connections
    settings.EMAIL_BACKEND = "tests.email_backends.FailingEmailBackend"
    email_backends.plan.extend(["disconnect", "disconnect"])
    # when a recovery email is queued
    with transaction.atomic():
        email = email_on_commit(to="owner@example.com", subject="Your Numpay account was recovered", body="hello")
    # then the worker retries with backoff and sends it on the third try, once
    assert wait_until(lambda: _status(email) == Status.SENT, timeout=30)
    email.refresh_from_db()
    assert (email.attempts, email.error) == (3, "")
    assert email.body == ""  # a real mail server: the text is not kept once it left
    assert email_backends.tries == ["disconnect", "disconnect", "deliver"]
    assert [(m.to, m.subject, m.body) for m in mail.outbox] == [
        (["owner@example.com"], "Your Numpay account was recovered", "hello")]
    # and running the task again (a redelivery) sends nothing more
    assert recovery_email_deliver.apply(args=[email.pk]).get() == Status.SENT
    assert len(mail.outbox) == 1
    assert email_backends.tries == ["disconnect", "disconnect", "deliver"]


def test_a_refused_recipient_is_not_retried(celery_worker: Any, settings: Any) -> None:
    # given a mail server refusing the recipient for good (550)
    settings.EMAIL_BACKEND = "tests.email_backends.FailingEmailBackend"
    email_backends.plan.append("refuse")
    # when a recovery email is queued
    with transaction.atomic():
        email = email_on_commit(to="gone@example.com", subject="Numpay account recovery", body="code 123456")
    # then it ends failed after one try, its text erased, and nothing is sent
    assert wait_until(lambda: _status(email) == Status.FAILED, timeout=30)
    email.refresh_from_db()
    assert (email.attempts, email.body) == (1, "")
    assert email.error.startswith("SMTPRecipientsRefused")
    assert email_backends.tries == ["refuse"]
    assert mail.outbox == []


def test_retries_are_bounded(celery_worker: Any, settings: Any) -> None:
    # given a mail server that never answers, and two retries allowed
    settings.EMAIL_BACKEND = "tests.email_backends.FailingEmailBackend"
    settings.NUMPAY_RECOVERY_EMAIL_MAX_RETRIES = 2
    email_backends.plan.extend(["disconnect"] * 10)
    # when a recovery email is queued
    with transaction.atomic():
        email = email_on_commit(to="owner@example.com", subject="Numpay account recovery", body="code 123456")
    # then it is tried three times (the first send and two retries), then ends failed
    assert wait_until(lambda: _status(email) == Status.FAILED, timeout=30)
    email.refresh_from_db()
    assert (email.attempts, email.body) == (3, "")
    assert email.error == "SMTPServerDisconnected: Connection unexpectedly closed"
    assert email_backends.tries == ["disconnect"] * 3
    assert mail.outbox == []


@pytest.mark.parametrize(("error", "is_transient"), [
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
    (smtplib.SMTPResponseException(451, b"4.3.0 try again later"), True),
    (smtplib.SMTPResponseException(554, b"5.7.1 rejected"), False),
    (smtplib.SMTPRecipientsRefused({"a@example.com": (452, b"4.2.2 mailbox full")}), True),
    (smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"5.1.1 no such user")}), False),
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), False),
    (smtplib.SMTPNotSupportedError("STARTTLS"), False),
    (ConnectionRefusedError(111, "Connection refused"), True),
    (TimeoutError("timed out"), True),
    (socket.gaierror(-3, "Temporary failure in name resolution"), True),
])
def test_which_send_failures_are_retried(error: Exception, is_transient: bool) -> None:
    assert _is_transient(error) is is_transient
