"""SMS delivery: Twilio's REST API (against a local stand-in), retries on transient errors only, failures
visible to the user and to operators, codes in no log and no broker message."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import cache

from accounts import services
from accounts.models import OutboundMessage
from accounts.sms import SmsTransientError
from tests.helpers import wait_until
from tests.sms_gateway import twilio_stand_in

PHONE = "+447911123456"


@pytest.fixture
def twilio(settings):  # noqa: ANN201
    def configure(url: str) -> None:
        settings.SMS_BACKEND = "twilio"
        settings.TWILIO_ACCOUNT_SID = "AC0123"
        settings.TWILIO_AUTH_TOKEN = "auth-token-1"
        settings.TWILIO_FROM_NUMBER = "+15005550006"
        settings.TWILIO_API_BASE_URL = url
        settings.SMS_TIMEOUT_SECONDS = 5.0

    return configure


@pytest.mark.django_db
def test_twilio_send_retries_transient_errors_then_sends_and_forgets_the_text(twilio) -> None:
    with twilio_stand_in([(503, {"message": "busy"}), (201, {"sid": "SM42"})]) as gateway:
        twilio(gateway.url)
        message = services.sms_queue(to=PHONE, body="Your Numpay code is 123456.")
        # when the first attempt meets a 503
        with pytest.raises(SmsTransientError, match="HTTP 503"):
            services.sms_deliver(message_id=message.pk, is_last_attempt=False)
        message.refresh_from_db()
        assert (message.status, message.attempts, message.body) == ("queued", 1, "Your Numpay code is 123456.")
        # then the retry sends it
        assert services.sms_deliver(message_id=message.pk, is_last_attempt=False) == "sent"
    message.refresh_from_db()
    assert (message.status, message.attempts, message.provider_message_id, message.body) == ("sent", 2, "SM42", "")
    assert gateway.requests[-1] == {"path": "/2010-04-01/Accounts/AC0123/Messages.json", "auth": "AC0123:auth-token-1",
                                    "form": {"To": PHONE, "From": "+15005550006", "Body": "Your Numpay code is 123456."}}
    # a delivered message is never sent twice
    assert services.sms_deliver(message_id=message.pk, is_last_attempt=False) == "sent"
    assert len(gateway.requests) == 2


@pytest.mark.django_db
def test_a_refused_number_fails_at_once_for_the_user_and_operators_without_the_code(twilio, client, caplog) -> None:
    with twilio_stand_in([(400, {"code": 21211, "message": "Invalid 'To' Phone Number"})]) as gateway:
        twilio(gateway.url)
        message = services.sms_queue(to=PHONE, body="Your Numpay code is 654321.")
        with caplog.at_level(logging.DEBUG):
            status = services.sms_deliver(message_id=message.pk, is_last_attempt=False)
    # then it is failed after one attempt (no retry of a refusal), with the reason and without the text
    message.refresh_from_db()
    assert (status, message.attempts, message.body) == ("failed", 1, "")
    assert message.error == "Twilio refused the message: HTTP 400 (Twilio error 21211)"
    assert len(gateway.requests) == 1
    assert f"SMS {message.pk} to +44********56 failed after 1 attempt(s)" in caplog.text
    assert "654321" not in caplog.text
    # and the person's code page says so
    session = client.session
    session["numpay_sms_message_id"] = message.pk
    session.save()
    fragment = client.get("/accounts/sms/delivery/")
    assert fragment.status_code == 200
    assert b"We could not send the code to +44********56; try again." in fragment.content


@pytest.mark.django_db
def test_transient_errors_on_the_last_attempt_end_the_message_failed(twilio) -> None:
    with twilio_stand_in([(500, {})]) as gateway:
        twilio(gateway.url)
        message = services.sms_queue(to=PHONE, body="x")
        assert services.sms_deliver(message_id=message.pk, is_last_attempt=True) == "failed"
    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", "Twilio answered HTTP 500")


@pytest.mark.django_db
def test_an_unreachable_gateway_is_transient(twilio) -> None:
    twilio("http://127.0.0.1:9")  # discard port: connection refused
    message = services.sms_queue(to=PHONE, body="x")
    with pytest.raises(SmsTransientError, match="Twilio unreachable: ConnectError"):
        services.sms_deliver(message_id=message.pk, is_last_attempt=False)


@pytest.mark.chain
def test_the_worker_delivers_a_sign_up_code_with_retries_and_no_log_shows_it(
        celery_worker, twilio, settings, client, caplog) -> None:
    settings.SMS_RETRY_BACKOFF_SECONDS = 0.05
    settings.ACCOUNT_RATE_LIMITS = {"verify_phone": "100/m/key,100/m/ip"}
    cache.clear()
    with twilio_stand_in([(503, {}), (429, {}), (201, {"sid": "SM7"})]) as gateway, caplog.at_level(logging.DEBUG):
        twilio(gateway.url)
        # when someone signs up by phone
        response = client.post("/accounts/signup/", {"phone": PHONE})
        assert response["Location"] == "/accounts/phone/verify/"
        # then the worker delivers the text after two transient failures
        message = OutboundMessage.objects.get(channel="sms", recipient=PHONE)
        wait_until(lambda: OutboundMessage.objects.get(pk=message.pk).status != "queued", timeout=30)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.provider_message_id, message.body) == ("sent", 3, "SM7", "")
    code = gateway.requests[-1]["form"]["Body"].split("code is ")[1].split(".")[0]
    assert len(code) >= 6
    # the code is in no log line (web, task, retries)
    assert code not in caplog.text
    assert all(code not in str(record.args) for record in caplog.records)
    # and the code page reports the delivery
    assert b"Code sent to +44********56." in client.get("/accounts/sms/delivery/").content


@pytest.mark.django_db
def test_operators_see_failed_texts_in_the_admin_but_never_their_text(admin_client) -> None:
    failed = OutboundMessage.objects.create(channel="sms", recipient=PHONE, body="Your Numpay code is 777111.",
                                            status="failed", attempts=5, error="Twilio answered HTTP 503")
    listing = admin_client.get("/admin/accounts/outboundmessage/?status__exact=failed")
    assert listing.status_code == 200
    assert b"Twilio answered HTTP 503" in listing.content
    detail = admin_client.get(f"/admin/accounts/outboundmessage/{failed.pk}/change/")
    assert detail.status_code == 200
    assert b"777111" not in detail.content
