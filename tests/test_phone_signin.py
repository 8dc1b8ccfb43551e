"""Sign-up and sign-in by phone (allauth's phone support through our adapter): E.164 numbers, SMS codes
that expire, are single use, rate-limited per number and per client, and never logged."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import OutboundMessage, User
from wallets.models import Wallet

PHONE = "+14155552671"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings) -> None:
    settings.ACCOUNT_RATE_LIMITS = {"verify_phone": "100/m/key,100/m/ip", "request_login_code": "100/m/key,100/m/ip"}
    cache.clear()


def last_code(phone: str) -> str:
    """The code in the newest text to ``phone`` (the development outbox)."""
    message = OutboundMessage.objects.filter(channel="sms", recipient=phone).first()
    assert message is not None
    match = re.search(r"code is (\S+)\.", message.body)
    assert match, message.body
    return match.group(1)


def sign_up_by_phone(client, phone_input: str = "+1 (415) 555-2671") -> object:
    return client.post("/accounts/signup/", {"phone": phone_input})


@pytest.mark.django_db
def test_phone_sign_up_texts_a_code_and_the_code_signs_in_with_one_wallet(client) -> None:
    # when someone signs up with a mobile number in a common spelling
    response = sign_up_by_phone(client)
    # then they are asked for the code we texted to the E.164 number; the account waits, unverified
    assert response.status_code == 302
    assert response["Location"] == "/accounts/phone/verify/"
    user = User.objects.get(phone=PHONE)
    assert (user.email, user.phone_verified, user.has_usable_password()) == (None, False, False)
    assert OutboundMessage.objects.filter(channel="sms", recipient=PHONE, status="queued").count() == 1
    assert client.get("/wallet/").status_code == 302  # not signed in before the code
    assert b'hx-get="/accounts/sms/delivery/"' in client.get("/accounts/phone/verify/").content
    # when they enter the code
    verified = client.post("/accounts/phone/verify/", {"code": last_code(PHONE)})
    # then they are signed in, the number is verified and exactly one wallet exists
    assert verified.status_code == 302
    assert verified["Location"] == "/wallet/"
    user.refresh_from_db()
    assert user.phone_verified is True
    assert Wallet.objects.filter(user=user).count() == 1
    assert client.get("/wallet/").status_code == 200


@pytest.mark.django_db
def test_a_wrong_code_does_not_sign_in_and_three_wrong_codes_end_the_attempt(client) -> None:
    sign_up_by_phone(client)
    code = last_code(PHONE)
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
    for _ in range(3):
        client.post("/accounts/phone/verify/", {"code": wrong})
    assert client.get("/wallet/").status_code == 302
    # the right code no longer works either: the attempt is over
    client.post("/accounts/phone/verify/", {"code": code})
    assert client.get("/wallet/").status_code == 302
    assert User.objects.get(phone=PHONE).phone_verified is False


@pytest.mark.django_db
def test_invalid_or_countryless_numbers_are_refused_and_nothing_is_sent(client) -> None:
    for spelling in ("+1 555 0100", "415 555 2671", "+1415555267100000"):
        response = sign_up_by_phone(client, spelling)
        assert response.status_code == 200
        assert b"valid mobile number with its country code" in response.content
    assert User.objects.count() == 0
    assert OutboundMessage.objects.count() == 0


@pytest.mark.django_db
def test_neither_email_nor_phone_is_refused(client) -> None:
    response = client.post("/accounts/signup/", {"password1": "correct-Horse-9", "password2": "correct-Horse-9"})
    assert response.status_code == 200
    assert b"Enter an email address or a mobile number." in response.content
    assert User.objects.count() == 0


def _verified_phone_user(phone: str = PHONE) -> User:
    from wallets.services import wallet_provision

    user = User(phone=phone, phone_verified=True)
    user.set_unusable_password()
    user.save()
    wallet_provision(user=user)
    return user


@pytest.mark.django_db
def test_one_account_per_number_a_second_sign_up_creates_nothing_and_tells_the_owner(client) -> None:
    owner = _verified_phone_user()
    # when someone else signs up with the same number
    response = sign_up_by_phone(client)
    # then no second account exists; the owner gets a text saying so (no code, no enumeration in the answer)
    assert response.status_code == 302
    assert list(User.objects.values_list("pk", flat=True)) == [owner.pk]
    text = OutboundMessage.objects.get(channel="sms", recipient=PHONE)
    assert "already has an account" in text.body
    assert "code is" not in text.body
    assert client.get("/wallet/").status_code == 302


@pytest.mark.django_db
def test_sign_in_by_sms_code_is_single_use(client) -> None:
    user = _verified_phone_user()
    # when the owner asks for a sign-in code and enters it
    response = client.post("/accounts/login/code/", {"phone": "+1 415-555-2671"})
    assert response.status_code == 302
    code = last_code(PHONE)
    confirmed = client.post(response["Location"], {"code": code})
    # then they are signed in
    assert confirmed.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk
    # and the same code cannot sign in a second browser
    client.logout()
    client.post("/accounts/login/code/confirm/", {"code": code})
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_an_expired_sign_in_code_is_refused(client, settings) -> None:
    _verified_phone_user()
    settings.ACCOUNT_LOGIN_BY_CODE_TIMEOUT = -1  # every code is already past its lifetime
    response = client.post("/accounts/login/code/", {"phone": PHONE})
    client.post(response["Location"], {"code": last_code(PHONE)})
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_codes_are_rate_limited_per_number(client, settings) -> None:
    _verified_phone_user()
    _verified_phone_user("+447911123456")
    settings.ACCOUNT_RATE_LIMITS = {"request_login_code": "1/5m/key,100/m/ip"}
    # when one number asks twice
    first = client.post("/accounts/login/code/", {"phone": PHONE})
    second = Client().post("/accounts/login/code/", {"phone": PHONE})
    # then only the first gets a text
    assert first.status_code == 302
    assert second.status_code == 200
    assert b"Too many" in second.content
    assert OutboundMessage.objects.filter(recipient=PHONE).count() == 1
    # while another number from the same client still can
    assert Client().post("/accounts/login/code/", {"phone": "+447911123456"}).status_code == 302


@pytest.mark.django_db
def test_codes_are_rate_limited_per_client(client, settings) -> None:
    numbers = ["+14155552671", "+447911123456", "+33612345678"]
    for number in numbers:
        _verified_phone_user(number)
    settings.ACCOUNT_RATE_LIMITS = {"request_login_code": "100/m/key,2/m/ip"}
    answers = [Client().post("/accounts/login/code/", {"phone": number}) for number in numbers]
    assert [answer.status_code for answer in answers] == [302, 302, 200]
    assert b"Too many" in answers[2].content
    assert OutboundMessage.objects.filter(recipient=numbers[2]).count() == 0


@pytest.mark.django_db
def test_headless_app_signs_up_by_phone_and_gets_a_session_token(client) -> None:
    # when an app signs up with a phone number
    response = client.post("/_allauth/app/v1/auth/signup", {"phone": PHONE}, content_type="application/json")
    # then allauth asks for the phone verification code
    assert response.status_code == 401, response.content
    body = response.json()
    pending = [flow["id"] for flow in body["data"]["flows"] if flow.get("is_pending")]
    assert pending == ["verify_phone"]
    token = body["meta"]["session_token"]
    # when it sends the texted code
    verified = client.post("/_allauth/app/v1/auth/phone/verify", {"code": last_code(PHONE)},
                           content_type="application/json", HTTP_X_SESSION_TOKEN=token)
    # then it holds an authenticated session token and the user has a wallet
    assert verified.status_code == 200, verified.content
    assert verified.json()["meta"]["is_authenticated"] is True
    assert Wallet.objects.filter(user__phone=PHONE, user__phone_verified=True).count() == 1
