"""Sign-up provisions exactly one wallet (pages and headless API); provisioning is idempotent and race-safe."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from accounts.models import User
from wallets.models import Wallet, WalletKey
from wallets.services import wallet_provision

from .races import postgresql_only


@pytest.mark.django_db
def test_signup_page_creates_user_and_one_wallet(client) -> None:
    # when someone signs up with the HTML form
    response = client.post("/accounts/signup/", {"email": "Ada@Example.com", "password1": "correct-Horse-9",
                                                 "password2": "correct-Horse-9"})
    # then they land on the dashboard with exactly one wallet
    assert response.status_code == 302
    assert response["Location"] == "/wallet/"
    user = User.objects.get(email__iexact="ada@example.com")
    assert Wallet.objects.filter(user=user).count() == 1
    assert WalletKey.objects.filter(wallet__user=user).count() == 1


@pytest.mark.django_db
def test_signup_refused_for_taken_email_creates_nothing(client, make_user) -> None:
    make_user(email="taken@example.com")
    response = client.post("/accounts/signup/", {"email": "TAKEN@example.com", "password1": "correct-Horse-9",
                                                 "password2": "correct-Horse-9"})
    assert response.status_code == 200
    assert User.objects.count() == 1
    assert Wallet.objects.count() == 1


@pytest.mark.django_db
def test_headless_app_signup_returns_session_token_and_provisions_wallet(client) -> None:
    # when an app signs up through allauth headless
    response = client.post("/_allauth/app/v1/auth/signup", {"email": "app@example.com", "password": "correct-Horse-9"},
                           content_type="application/json")
    # then it gets a session token and the user has a wallet
    assert response.status_code == 200, response.content
    token = response.json()["meta"]["session_token"]
    assert token
    assert Wallet.objects.filter(user__email="app@example.com").count() == 1
    # and the token authenticates the REST API (balances need the chain: see test_chain_wallet.py)
    client.logout()
    me = client.get("/api/v1/payments", HTTP_X_SESSION_TOKEN=token)
    assert me.status_code == 200
    assert me.json()["results"] == []
    assert client.get("/api/v1/payments", HTTP_X_SESSION_TOKEN="not-a-token").status_code == 401


@pytest.mark.django_db
def test_wallet_provision_is_idempotent(make_user) -> None:
    user = make_user()
    first = user.wallet
    assert wallet_provision(user=user) == first
    assert Wallet.objects.filter(user=user).count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_provisioning_creates_one_wallet() -> None:
    # given a user without a wallet
    user = User.objects.create_user(email="race@example.com", password="x-Password-1")
    barrier = threading.Barrier(8)
    results: list[str] = []
    errors: list[BaseException] = []

    def provision() -> None:
        try:
            barrier.wait()
            results.append(str(wallet_provision(user=user).pk))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    # when eight requests provision at once
    threads = [threading.Thread(target=provision) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then exactly one wallet exists and every caller got it
    assert errors == []
    assert Wallet.objects.filter(user=user).count() == 1
    assert set(results) == {str(Wallet.objects.get(user=user).pk)}


@pytest.mark.django_db
def test_password_reset_sends_a_link_by_email(client, make_user, mailoutbox) -> None:
    make_user(email="forgot@example.com")
    response = client.post("/accounts/password/reset/", {"email": "forgot@example.com"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["forgot@example.com"]
    assert "/accounts/password/reset/key/" in mailoutbox[0].body


@pytest.mark.django_db
def test_sign_in_and_out_pages(client, make_user) -> None:
    make_user(email="in@example.com", password="correct-Horse-9")
    response = client.post("/accounts/login/", {"login": "in@example.com", "password": "correct-Horse-9"})
    assert response.status_code == 302
    assert response["Location"] == "/wallet/"
    assert client.get("/wallet/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/wallet/").status_code == 302
    wrong = client.post("/accounts/login/", {"login": "in@example.com", "password": "nope"})
    assert wrong.status_code == 200
    assert b"not correct" in wrong.content


@pytest.mark.django_db
def test_dev_signup_says_what_happened_not_that_a_confirmation_was_needed(client, settings) -> None:
    # given development: optional email confirmation, emails kept in the dev outbox
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    settings.EMAIL_BACKEND = "accounts.outbox.OutboxEmailBackend"
    settings.DEV_OUTBOX_ENABLED = True
    # when someone signs up with the form
    response = client.post("/accounts/signup/", {"email": "dev@example.com", "password1": "correct-Horse-9",
                                                 "password2": "correct-Horse-9"}, follow=True)
    # then they are in, and told the truth: ready to use, a link was sent, and where it is in development
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == "/wallet/"
    assert "Confirmation email sent" not in html
    assert ("Welcome to Numpay: your account is ready to use. We also sent a link to confirm dev@example.com; you do "
            "not need it to start. (Development: emails stay on this machine, in the outbox at /dev/outbox/.)") in html
    from accounts.models import OutboundMessage

    assert OutboundMessage.objects.filter(recipient="dev@example.com", channel="email").count() == 1


@pytest.mark.django_db
def test_signup_where_confirmation_is_mandatory_says_the_email_was_sent(client, settings) -> None:
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    settings.SMS_SIGNIN_ENABLED = False
    response = client.post("/accounts/signup/", {"email": "prod@example.com", "password1": "correct-Horse-9",
                                                 "password2": "correct-Horse-9"}, follow=True)
    html = response.content.decode()
    assert "Confirmation email sent to prod@example.com." in html
    assert "ready to use" not in html
