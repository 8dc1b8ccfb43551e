"""The account page (sign-in methods, add and remove without locking oneself out), the development outbox,
and production's refusal to start SMS sign-in without a gateway."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core.cache import cache

from accounts.models import OutboundMessage, User
from wallets.services import wallet_provision

PHONE = "+33612345678"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings) -> None:
    settings.ACCOUNT_RATE_LIMITS = {"verify_phone": "100/m/key,100/m/ip", "change_phone": "100/m/user"}
    cache.clear()


def _code(phone: str) -> str:
    body = OutboundMessage.objects.filter(channel="sms", recipient=phone).first().body
    return re.search(r"code is (\S+)\.", body).group(1)


def _phone_user(phone: str = PHONE) -> User:
    user = User(phone=phone, phone_verified=True)
    user.set_unusable_password()
    user.save()
    wallet_provision(user=user)
    return user


@pytest.mark.django_db
def test_an_email_account_adds_a_phone_verified_by_code(client) -> None:
    client.post("/accounts/signup/", {"email": "ada@example.com", "password1": "correct-Horse-9",
                                      "password2": "correct-Horse-9"})
    # when she adds a mobile number and enters the texted code
    response = client.post("/accounts/phone/change/", {"phone": "+33 6 12 34 56 78"})
    assert response.status_code == 302
    client.post("/accounts/phone/verify/", {"code": _code(PHONE)})
    # then the number is hers, verified, and listed as a sign-in method
    user = User.objects.get(email="ada@example.com")
    assert (user.phone, user.phone_verified) == (PHONE, True)
    page = client.get("/accounts/methods/")
    assert page.status_code == 200
    assert [m.kind for m, _removable in page.context["rows"]] == ["email", "phone"]
    assert all(removable for _m, removable in page.context["rows"])


@pytest.mark.django_db
def test_a_phone_account_adds_an_email_address(client) -> None:
    user = _phone_user()
    client.force_login(user)
    response = client.post("/accounts/email/", {"email": "phone-person@example.com", "action_add": ""})
    assert response.status_code == 302
    assert list(EmailAddress.objects.filter(user=user).values_list("email", flat=True)) == ["phone-person@example.com"]
    assert [m.kind for m, _r in client.get("/accounts/methods/").context["rows"]] == ["email", "phone"]


@pytest.mark.django_db
def test_the_only_sign_in_method_cannot_be_removed(client) -> None:
    user = _phone_user()
    client.force_login(user)
    page = client.get("/accounts/methods/")
    assert [(m.kind, removable) for m, removable in page.context["rows"]] == [("phone", False)]
    # when the person tries to remove their only phone number
    response = client.post("/accounts/methods/phone/remove/")
    # then it is refused and the number stays
    assert response.status_code == 409
    assert b"This is your only way to sign in" in response.content
    user.refresh_from_db()
    assert (user.phone, user.phone_verified) == (PHONE, True)


@pytest.mark.django_db
def test_the_phone_can_be_removed_when_an_email_remains_and_then_the_email_cannot(client, make_user) -> None:
    user = make_user(email="two-ways@example.com")
    EmailAddress.objects.create(user=user, email="two-ways@example.com", primary=True, verified=True)
    User.objects.filter(pk=user.pk).update(phone=PHONE, phone_verified=True)
    client.force_login(user)
    assert client.post("/accounts/methods/phone/remove/").status_code == 302
    user.refresh_from_db()
    assert (user.phone, user.phone_verified) == (None, False)
    # the last email address cannot go
    client.post("/accounts/email/", {"email": "two-ways@example.com", "action_remove": ""})
    assert EmailAddress.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_dev_outbox_lists_emails_and_sms_newest_first_to_local_requests(client, settings) -> None:
    settings.DEV_OUTBOX_ENABLED = True
    settings.EMAIL_BACKEND = "accounts.outbox.OutboxEmailBackend"
    # given a password reset email and a sign-up text
    client.post("/accounts/signup/", {"email": "out@example.com", "password1": "correct-Horse-9",
                                      "password2": "correct-Horse-9"})
    client.post("/accounts/logout/")
    client.post("/accounts/password/reset/", {"email": "out@example.com"})
    client.post("/accounts/signup/", {"phone": PHONE})
    # when a developer on this machine opens the outbox
    page = client.get("/dev/outbox/", REMOTE_ADDR="127.0.0.1")
    # then both are there, newest first, with the code readable
    assert page.status_code == 200
    listed = [(m.channel, m.recipient, m.subject.split("] ")[-1]) for m in page.context["outbox"]]
    assert listed == [("sms", PHONE, ""), ("email", "out@example.com", "Password Reset Email"),
                      ("email", "out@example.com", "Please Confirm Your Email Address")]
    assert f"Your Numpay code is {_code(PHONE)}".encode() in page.content
    assert b"/accounts/password/reset/key/" in page.content


@pytest.mark.django_db
def test_dev_outbox_is_hidden_from_remote_visitors_and_when_disabled(client, settings, make_user) -> None:
    settings.DEV_OUTBOX_ENABLED = True
    assert client.get("/dev/outbox/", REMOTE_ADDR="203.0.113.9").status_code == 404
    client.force_login(make_user())
    assert client.get("/dev/outbox/", REMOTE_ADDR="203.0.113.9").status_code == 404
    staff = make_user()
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    client.force_login(staff)
    assert client.get("/dev/outbox/", REMOTE_ADDR="203.0.113.9").status_code == 200
    settings.DEV_OUTBOX_ENABLED = False
    assert client.get("/dev/outbox/", REMOTE_ADDR="127.0.0.1").status_code == 404


def test_production_refuses_sms_sign_in_without_twilio_credentials() -> None:
    from tests.test_settings import _manage, _production_env

    result = _manage("check", env=_production_env(SMS_SIGNIN_ENABLED="true"))
    assert result.returncode != 0
    assert "TWILIO_ACCOUNT_SID must be set in production" in result.stderr
    outbox = _manage("check", env=_production_env(SMS_SIGNIN_ENABLED="true", SMS_BACKEND="outbox"))
    assert "SMS_BACKEND must be 'twilio' in production" in outbox.stderr


def test_production_with_twilio_has_phone_sign_in_and_never_the_dev_outbox() -> None:
    from tests.test_settings import _manage, _production_env

    env = _production_env(SMS_SIGNIN_ENABLED="true", TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="t",
                          TWILIO_FROM_NUMBER="+15005550006", DEV_OUTBOX_ENABLED="true")
    result = _manage("shell", "-c", "from django.conf import settings; from accounts.app_settings import app_settings; "
                     "print(sorted(settings.ACCOUNT_LOGIN_METHODS), app_settings.DEV_OUTBOX_ENABLED)", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['email', 'phone'] False"


@pytest.mark.django_db
def test_the_only_social_account_stays_until_another_way_in_exists(client, settings) -> None:
    from allauth.socialaccount.models import SocialAccount

    settings.SOCIALACCOUNT_PROVIDERS = {"github": {"APPS": [{"client_id": "gh-id", "secret": "gh-secret"}]}}
    # given a person whose only way in is GitHub (a password alone names no account to sign in to)
    user = User()
    user.set_password("correct-Horse-9")
    user.save()
    wallet_provision(user=user)
    account = SocialAccount.objects.create(user=user, provider="github", uid="4242")
    client.force_login(user)
    assert [(m.kind, m.label, removable) for m, removable in client.get("/accounts/methods/").context["rows"]] == [
        ("social", "GitHub", False)]
    # when they try to disconnect it, then it stays
    client.post("/accounts/3rdparty/", {"account": account.pk})
    assert SocialAccount.objects.filter(pk=account.pk).exists()
    # once an email address exists, it can go
    EmailAddress.objects.create(user=user, email="gh-person@example.com", primary=True, verified=True)
    assert [removable for _m, removable in client.get("/accounts/methods/").context["rows"]] == [True, True]
    client.post("/accounts/3rdparty/", {"account": account.pk})
    assert not SocialAccount.objects.filter(pk=account.pk).exists()
