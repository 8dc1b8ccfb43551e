"""In headless Chromium with a CDP virtual authenticator (a platform passkey with user verification): sign up,
add a passkey on the account page, sign out, sign in with the passkey; no CSP violation on the way."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator

from accounts.models import PasskeyState, User

from .test_e2e import SCREENSHOTS, _sign_up, browser  # noqa: F401 - the module-scoped Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_register_a_passkey_sign_out_and_sign_in_with_it(browser, live_server, settings) -> None:  # noqa: F811
    settings.WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    # given Chromium with a platform authenticator that verifies its user
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator_id = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})["authenticatorId"]
    # and a new account
    _sign_up(page, live_server.url, "passkey@example.com")
    user = User.objects.get(email="passkey@example.com")
    # a passkey needs a confirmed address (allauth's rule: else whoever signed up with someone else's
    # address could keep a way in after its owner takes the account back by email)
    page.goto(f"{live_server.url}/accounts/methods/")
    page.click("[data-testid=add-passkey]")
    page.wait_for_url("**/reauthenticate/**")
    page.fill("input[name=password]", "correct-Horse-9")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/accounts/methods/passkeys/add/")
    assert page.inner_text("[data-testid=passkey-needs-verified-email]").startswith("Confirm your email address")
    EmailAddress.objects.filter(user=user).update(verified=True)  # they followed the link in the email
    # when they add a passkey from the account page (their password was confirmed a moment ago)
    page.goto(f"{live_server.url}/accounts/methods/")
    page.click("[data-testid=add-passkey]")
    page.wait_for_url(f"{live_server.url}/accounts/methods/passkeys/add/")
    page.fill("input[name=name]", "This laptop")
    page.click("[data-testid=passkey-add]")
    page.wait_for_url(f"{live_server.url}/accounts/methods/")
    # then the page lists it, and the browser holds a discoverable credential for our RP ID
    assert page.inner_text("[data-testid=passkey-name]") == "This laptop"
    assert page.inner_text("[data-testid=passkey-last-used]") == "never"
    page.screenshot(path=str(SCREENSHOTS / "passkeys.png"), full_page=True)
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert [(c["isResidentCredential"], c["rpId"]) for c in credentials] == [(True, "localhost")]
    # when they sign out and sign in with the passkey
    page.click("text=Sign out")
    page.goto(f"{live_server.url}/accounts/login/")
    page.click("[data-testid=passkey-login]")
    page.wait_for_url(f"{live_server.url}/wallet/")
    # then they are back in their wallet, and the passkey's use was recorded
    page.click("[data-testid=receive-link]")  # the home leads with the balance; the address is on Receive
    assert page.inner_text("[data-testid=wallet-address]").strip() == user.wallet.address
    passkey = Authenticator.objects.get(user=user, type=Authenticator.Type.WEBAUTHN)
    assert passkey.last_used_at is not None
    signs = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"][0]["signCount"]
    assert PasskeyState.objects.get(authenticator=passkey).sign_count == signs
    assert violations == []
    context.close()
