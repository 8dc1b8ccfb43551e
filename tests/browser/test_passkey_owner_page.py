"""In headless Chromium with CDP virtual authenticators: a protected wallet's second passkey is made an owner from
the account page ("Make this passkey an owner of your wallet", approved with the first passkey: the wallet program
checks the approval on-chain); no CSP violation, no serious axe violation on the page."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator

from accounts.models import User
from payments.models import WalletProtection
from payments.protection import PROTECTED, onchain_passkey_ids, wallet_mode
from tests.helpers import wait_until

from .test_a11y import _axe_source, _serious
from .test_e2e import _sign_up, browser  # noqa: F401 - the module-scoped Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.django_db(transaction=True)]
AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
                 "isUserVerified": True, "automaticPresenceSimulation": True}
CREDENTIAL_FIELDS = ("credentialId", "isResidentCredential", "rpId", "privateKey", "userHandle", "signCount")


def _add_passkey(page, base: str, name: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/accounts/methods/passkeys/add/")
    page.fill("input[name=name]", name)
    page.click("[data-testid=passkey-add]")
    page.wait_for_url(f"{base}/accounts/methods/")


def test_the_account_page_makes_a_second_passkey_an_owner_with_the_first(browser, live_server, settings,  # noqa: F811
                                                                          celery_worker, tokens) -> None:  # noqa: ANN001
    settings.WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    base = live_server.url
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    laptop = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})["authenticatorId"]
    # given an account whose laptop passkey protects the wallet (its owner on-chain)
    _sign_up(page, base, "owners@example.com")
    user = User.objects.get(email="owners@example.com")
    EmailAddress.objects.filter(user=user).update(verified=True)
    page.goto(f"{base}/accounts/methods/")
    page.click("[data-testid=add-passkey]")
    page.wait_for_url("**/reauthenticate/**")
    page.fill("input[name=password]", "correct-Horse-9")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/accounts/methods/passkeys/add/")
    _add_passkey(page, base, "Laptop")
    assert wait_until(lambda: wallet_mode(user.wallet) == PROTECTED, timeout=60)
    # and a phone's passkey registered since, on another device (another virtual authenticator)
    laptop_credential = cdp.send("WebAuthn.getCredentials", {"authenticatorId": laptop})["credentials"][0]
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": laptop})
    phone = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})["authenticatorId"]
    _add_passkey(page, base, "Phone")
    laptop_id = Authenticator.objects.get(user=user, data__name="Laptop").pk
    phone_id = Authenticator.objects.get(user=user, data__name="Phone").pk
    assert onchain_passkey_ids(user.wallet) == {laptop_id}
    # (the laptop's passkey is at hand too: the person holds both devices; one virtual authenticator keeps one
    # discoverable credential per user, so it holds the laptop's as a server-side one: the request lists its id)
    cdp.send("WebAuthn.addCredential", {"authenticatorId": phone, "credential": {
        **{key: laptop_credential[key] for key in CREDENTIAL_FIELDS}, "isResidentCredential": False}})
    # when they open the account page: the laptop is the owner, the phone offers to become one
    page.goto(f"{base}/accounts/methods/")
    roles = [text.strip() for text in page.locator("[data-testid=passkey-wallet-role]").all_inner_texts()]
    assert roles == ["Owner on-chain", "Make this passkey an owner of your wallet"]
    assert _serious(page, _axe_source()) == []
    # and press "Make this passkey an owner of your wallet" (the laptop's passkey approves)
    with page.expect_navigation():  # the page reloads once the approval is accepted
        page.click("[data-testid=passkey-make-owner]")
    # then the add_authority lands, and the page shows both as owners on-chain
    assert wait_until(lambda: WalletProtection.objects.filter(
        wallet=user.wallet, authenticator_id=phone_id, status=WalletProtection.Status.CONFIRMED).exists(), timeout=60)
    page.goto(f"{base}/accounts/methods/")
    roles = [text.strip() for text in page.locator("[data-testid=passkey-wallet-role]").all_inner_texts()]
    assert roles == ["Owner on-chain Remove from wallet"] * 2  # two owners: either can be taken off the wallet
    assert onchain_passkey_ids(user.wallet) == {laptop_id, phone_id}
    assert violations == []
    context.close()
