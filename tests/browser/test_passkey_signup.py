"""In headless Chromium with a CDP virtual authenticator: create an account with a passkey (email, the emailed
code, the passkey), sign out, sign in with it; and the login field's passkey autofill (conditional mediation)."""

from __future__ import annotations

import re

import pytest
from allauth.mfa.models import Authenticator
from django.core import mail

from accounts.models import User

from .test_e2e import SCREENSHOTS, browser  # noqa: F401 - the module-scoped Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _virtual_authenticator(context, page) -> tuple[object, str]:  # noqa: ANN001
    """A platform authenticator that holds discoverable credentials and verifies its user."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator_id = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})["authenticatorId"]
    return cdp, authenticator_id


def _emailed_code(email: str) -> str:
    body = [m for m in mail.outbox if m.to == [email]][-1].body
    return re.search(r"^\s*([A-Z0-9-]{6,})\s*$", body, re.MULTILINE).group(1)


def _sign_up_with_a_passkey(page, base: str, email: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/accounts/signup/")
    page.click("[data-testid=passkey-signup]")
    page.wait_for_url(f"{base}/accounts/signup/passkey/")
    page.fill("input[name=email]", email)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/accounts/signup/passkey/code/")
    page.fill("input[name=code]", _emailed_code(email))
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/accounts/signup/passkey/create/")
    page.fill("input[name=name]", "This laptop")
    page.click("[data-testid=passkey-signup-create]")
    page.wait_for_url(f"{base}/wallet/")


def test_sign_up_with_a_passkey_sign_out_and_sign_in_with_it(browser, live_server, settings) -> None:  # noqa: F811
    settings.WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    cdp, authenticator_id = _virtual_authenticator(context, page)
    # when someone creates an account with a passkey: email, the emailed code, the passkey
    _sign_up_with_a_passkey(page, live_server.url, "pia@example.com")
    # then they are in their new wallet; the account has no password, a confirmed address and that passkey
    user = User.objects.get(email="pia@example.com")
    assert not user.has_usable_password()
    assert list(Authenticator.objects.filter(user=user).values_list("type", flat=True)) == ["webauthn"]
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert [(c["isResidentCredential"], c["rpId"]) for c in credentials] == [(True, "localhost")]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "passkey-signup.png"), full_page=True)
    # when they sign out and sign in with the passkey
    page.click("text=Sign out")
    page.goto(f"{live_server.url}/accounts/login/")
    page.click("[data-testid=passkey-login]")
    page.wait_for_url(f"{live_server.url}/wallet/")
    # then they are back in their own wallet
    page.click("[data-testid=receive-link]")
    assert page.inner_text("[data-testid=wallet-address]").strip() == user.wallet.address
    assert Authenticator.objects.get(user=user).last_used_at is not None
    assert violations == []
    context.close()


def test_the_login_fields_passkey_autofill_signs_in_without_pressing_anything(browser, live_server,  # noqa: F811
                                                                               settings) -> None:
    """Conditional mediation (WebAuthn Level 3 ``mediation: "conditional"``): the login page asks for a passkey
    quietly when it loads, and the browser offers it in the login field's autofill. Chromium's virtual
    authenticator (CDP ``WebAuthn``, ``automaticPresenceSimulation``) answers a conditional request as a person
    picking the passkey from that list would, so the test needs no click: nothing but the autofill request can
    sign this page in."""
    settings.WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    _virtual_authenticator(context, page)
    _sign_up_with_a_passkey(page, live_server.url, "autofill@example.com")
    user = User.objects.get(email="autofill@example.com")
    page.click("text=Sign out")
    # when they open the login page and touch nothing
    page.goto(f"{live_server.url}/accounts/login/")
    # then the browser supports passkey autofill, the field offers passkeys, and the passkey signs them in
    assert page.evaluate("PublicKeyCredential.isConditionalMediationAvailable()") is True
    assert page.get_attribute("input[name=login]", "autocomplete") == "username webauthn"
    page.wait_for_url(f"{live_server.url}/wallet/")
    page.click("[data-testid=receive-link]")
    assert page.inner_text("[data-testid=wallet-address]").strip() == user.wallet.address
    context.close()
