"""Sign up with a passkey (accounts/passkey_signup.py): an email proved by a code, then a passkey, no password;
in the app API and on the pages; then sign in with it. Wrong codes, an address that has an account, and steps out
of order are refused with nothing created. Phone and email sign-up stay as they were (their own tests)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from tests.webauthn_support import SoftAuthenticator
from wallets.models import Wallet

APP = "/_allauth/app/v1"
BROWSER = "/_allauth/browser/v1"
JSON = "application/json"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


def _code_sent_to(email: str) -> str:
    message = [m for m in mail.outbox if m.to == [email]][-1]
    assert message.subject.endswith("Your Numpay sign-up code")
    match = re.search(r"^\s*([A-Z0-9-]{6,})\s*$", message.body, re.MULTILINE)
    assert match is not None, message.body
    return match.group(1)


class AppClient:
    """An app talking to allauth's headless app API with its session token."""

    def __init__(self) -> None:
        self.client, self.token = Client(), ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"HTTP_X_SESSION_TOKEN": self.token} if self.token else {}
        response = getattr(self.client, method)(f"{APP}{path}", body, content_type=JSON, **headers) \
            if body is not None else getattr(self.client, method)(f"{APP}{path}", **headers)
        token = response.json().get("meta", {}).get("session_token")
        if token:
            self.token = token
        return response


def test_an_app_signs_up_with_an_email_code_and_a_passkey_then_signs_in_with_it() -> None:
    app, soft = AppClient(), SoftAuthenticator()
    # when an app starts a passkey sign-up with an email address
    started = app.call("post", "/auth/webauthn/signup", {"email": "Pia@Example.com"})
    # then it is told to verify the email, gets a session token, and no account exists yet
    assert started.status_code == 401
    assert started.json()["data"]["flows"] == [{"id": "verify_email", "is_pending": True}]
    assert app.token
    assert not User.objects.filter(email__iexact="pia@example.com").exists()
    # when it sends the emailed code
    verified = app.call("post", "/auth/webauthn/signup/code", {"code": _code_sent_to("pia@example.com")})
    # then the account exists (address verified, no password, one wallet) and waits for its passkey
    assert verified.status_code == 401
    assert {"id": "mfa_signup_webauthn", "is_pending": True} in verified.json()["data"]["flows"]
    user = User.objects.get(email="pia@example.com")
    assert not user.has_usable_password()
    assert EmailAddress.objects.filter(user=user, email="pia@example.com", verified=True, primary=True).count() == 1
    assert Wallet.objects.filter(user=user).count() == 1
    # when it creates the passkey with allauth's creation options
    options = app.call("get", "/auth/webauthn/signup").json()["data"]["creation_options"]["publicKey"]
    assert options["authenticatorSelection"]["userVerification"] == "required"
    done = app.call("put", "/auth/webauthn/signup", {"name": "Pia's phone", "credential": soft.create(options)})
    # then the app is signed in as the new user, with exactly that passkey
    assert done.status_code == 200, done.content
    assert done.json()["data"]["user"]["id"] == user.pk
    assert list(Authenticator.objects.filter(user=user).values_list("type", flat=True)) == ["webauthn"]
    # and later, a fresh app signs in with the passkey alone (discoverable: nobody types the address)
    other = AppClient()
    request_options = other.call("get", "/auth/webauthn/login").json()["data"]["request_options"]["publicKey"]
    signed_in = other.call("post", "/auth/webauthn/login", {"credential": soft.get(request_options)})
    assert signed_in.status_code == 200
    assert signed_in.json()["data"]["user"]["id"] == user.pk


def test_wrong_codes_are_refused_and_the_last_one_ends_the_sign_up_with_nothing_created() -> None:
    app = AppClient()
    app.call("post", "/auth/webauthn/signup", {"email": "pia@example.com"})
    right = _code_sent_to("pia@example.com")
    first = app.call("post", "/auth/webauthn/signup/code", {"code": "WRONG1"})
    second = app.call("post", "/auth/webauthn/signup/code", {"code": "WRONG2"})
    third = app.call("post", "/auth/webauthn/signup/code", {"code": "WRONG3"})
    assert [(r.status_code, r.json()["errors"][0]["code"]) for r in (first, second, third)] == [
        (400, "incorrect_code"), (400, "incorrect_code"), (409, "expired")]
    # the right code no longer works either: the sign-up is over
    late = app.call("post", "/auth/webauthn/signup/code", {"code": right})
    assert (late.status_code, late.json()["errors"][0]["code"]) == (409, "expired")
    assert not User.objects.filter(email="pia@example.com").exists()
    assert Wallet.objects.count() == 0


def test_an_address_with_an_account_gets_the_same_answer_and_no_code_works(make_user) -> None:
    make_user(email="taken@example.com")
    app = AppClient()
    started = app.call("post", "/auth/webauthn/signup", {"email": "TAKEN@example.com"})
    # the same answer as for a new address (no account enumeration) ...
    assert started.status_code == 401
    assert started.json()["data"]["flows"] == [{"id": "verify_email", "is_pending": True}]
    # ... while the owner is told someone tried, and gets no code
    [message] = [m for m in mail.outbox if m.to == ["taken@example.com"]]
    assert "sign-up code" not in message.subject
    refused = app.call("post", "/auth/webauthn/signup/code", {"code": "ABC123"})
    assert refused.status_code == 400
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    assert Authenticator.objects.count() == 0


def test_the_passkey_step_is_refused_without_a_verified_sign_up() -> None:
    app = AppClient()
    assert app.call("get", "/auth/webauthn/signup").status_code == 409
    app.call("post", "/auth/webauthn/signup", {"email": "pia@example.com"})
    # the email is not proved yet: no creation options, no account
    assert app.call("get", "/auth/webauthn/signup").status_code == 409
    assert app.call("put", "/auth/webauthn/signup", {"name": "x", "credential": {}}).status_code == 409
    assert not User.objects.exists()


def test_the_sign_up_page_offers_a_passkey_and_its_pages_lead_to_a_signed_in_wallet(client) -> None:
    soft = SoftAuthenticator()
    signup = client.get("/accounts/signup/").content.decode()
    assert 'href="/accounts/signup/passkey/"' in signup
    assert "Create an account with a passkey" in signup
    # email -> code page
    response = client.post("/accounts/signup/passkey/", {"email": "pia@example.com"})
    assert (response.status_code, response["Location"]) == (302, "/accounts/signup/passkey/code/")
    assert "pia@example.com" in client.get("/accounts/signup/passkey/code/").content.decode()
    # a wrong code is shown at the field; the right one leads to the passkey step
    wrong = client.post("/accounts/signup/passkey/code/", {"code": "WRONG1"})
    assert wrong.status_code == 400
    assert "That code is not right" in wrong.content.decode()
    right = client.post("/accounts/signup/passkey/code/", {"code": _code_sent_to("pia@example.com")})
    assert (right.status_code, right["Location"]) == (302, "/accounts/signup/passkey/create/")
    page = client.get("/accounts/signup/passkey/create/").content.decode()
    assert 'data-register-method="PUT"' in page
    # the page's script creates the passkey through the browser API of the same session
    options = client.get(f"{BROWSER}/auth/webauthn/signup").json()["data"]["creation_options"]["publicKey"]
    done = client.put(f"{BROWSER}/auth/webauthn/signup", {"name": "Laptop", "credential": soft.create(options)},
                      content_type=JSON)
    assert done.status_code == 200
    assert client.get("/wallet/").status_code == 200
    assert client.get("/accounts/signup/passkey/create/")["Location"] == "/wallet/"  # nothing pending any more


def test_the_passkey_step_page_without_a_pending_sign_up_goes_back_to_sign_up(client) -> None:
    response = client.get("/accounts/signup/passkey/create/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/signup/")
    assert client.get("/accounts/signup/passkey/code/")["Location"] == "/accounts/signup/passkey/"
