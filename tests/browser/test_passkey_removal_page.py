"""In headless Chromium with CDP virtual authenticators: the phone holding one of two owner passkeys is lost; from the
account page the person takes its passkey off the wallet ("Remove from wallet", approved with the laptop's passkey:
the wallet program checks the approval on-chain), watches the status go from in flight to done, then removes the
passkey from the account; no CSP violation, no serious axe violation on the page."""

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
from .test_passkey_owner_page import AUTHENTICATOR, CREDENTIAL_FIELDS, _add_passkey

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def test_a_lost_phones_passkey_is_removed_from_the_wallet_with_the_laptops_then_from_the_account(
        browser, live_server, settings, celery_worker, tokens) -> None:  # noqa: ANN001, F811
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
    # given a wallet owned on-chain by the laptop's passkey and the phone's (made an owner with the laptop's)
    _sign_up(page, base, "lostphone@example.com")
    user = User.objects.get(email="lostphone@example.com")
    EmailAddress.objects.filter(user=user).update(verified=True)
    page.goto(f"{base}/accounts/methods/")
    page.click("[data-testid=add-passkey]")
    page.wait_for_url("**/reauthenticate/**")
    page.fill("input[name=password]", "correct-Horse-9")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/accounts/methods/passkeys/add/")
    _add_passkey(page, base, "Laptop")
    assert wait_until(lambda: wallet_mode(user.wallet) == PROTECTED, timeout=60)
    laptop_credential = cdp.send("WebAuthn.getCredentials", {"authenticatorId": laptop})["credentials"][0]
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": laptop})
    phone = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})["authenticatorId"]
    _add_passkey(page, base, "Phone")
    cdp.send("WebAuthn.addCredential", {"authenticatorId": phone, "credential": {
        **{key: laptop_credential[key] for key in CREDENTIAL_FIELDS}, "isResidentCredential": False}})
    page.goto(f"{base}/accounts/methods/")
    with page.expect_navigation():
        page.click("[data-testid=passkey-make-owner]")
    laptop_id = Authenticator.objects.get(user=user, data__name="Laptop").pk
    phone_id = Authenticator.objects.get(user=user, data__name="Phone").pk
    # (the addition and its limits, in two transactions with two mints: wait for every part)
    assert wait_until(lambda: onchain_passkey_ids(user.wallet) == {laptop_id, phone_id} and not
                      WalletProtection.objects.filter(wallet=user.wallet,
                                                      status__in=WalletProtection.CHANGE_PENDING_STATUSES).exists(),
                      timeout=90)
    # and the phone is lost: only the laptop (its passkey) is at hand (with the counter its approvals reached: one
    # per approved action of the addition)
    laptop_credential = {**laptop_credential, "signCount": next(
        credential["signCount"] for credential in cdp.send("WebAuthn.getCredentials", {"authenticatorId": phone})[
            "credentials"] if credential["credentialId"] == laptop_credential["credentialId"])}
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": phone})
    laptop = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})["authenticatorId"]
    cdp.send("WebAuthn.addCredential", {"authenticatorId": laptop, "credential": {
        key: laptop_credential[key] for key in CREDENTIAL_FIELDS}})
    # when they open the account page: both own the wallet, each can be removed from it, neither deleted
    page.goto(f"{base}/accounts/methods/")
    roles = [text.strip() for text in page.locator("[data-testid=passkey-wallet-role]").all_inner_texts()]
    assert roles == ["Owner on-chain Remove from wallet"] * 2
    assert page.locator("[data-testid=passkey-remove]").count() == 0
    assert _serious(page, _axe_source()) == []
    # and press "Remove from wallet" on the phone's row (the laptop's passkey approves)
    page.locator("[data-testid=passkey-row]", has_text="Phone").locator(
        "[data-testid=passkey-remove-from-wallet]").click()
    # then the page says it is on its way, then that it is done, and the row says so
    message = page.locator("[data-testid=passkey-owner-message]")
    message.filter(has_text="no longer owns your wallet").wait_for()
    assert message.inner_text() == ("Done: this passkey no longer owns your wallet. Reload the page to remove it "
                                    "from your account.")
    removal = WalletProtection.objects.get(wallet=user.wallet, kind="remove_passkey")
    assert (removal.status, removal.authenticator_id, removal.approver_id) == ("confirmed", phone_id, laptop_id)
    assert onchain_passkey_ids(user.wallet) == {laptop_id}
    assert _serious(page, _axe_source()) == []
    # and after a reload the phone's passkey is "Removed from your wallet" and can be removed from the account,
    # while the laptop's, the only owner left, offers neither
    page.goto(f"{base}/accounts/methods/")
    roles = [text.strip() for text in page.locator("[data-testid=passkey-wallet-role]").all_inner_texts()]
    assert roles == ["Owner on-chain", "Removed from your wallet"]
    page.locator("[data-testid=method-passkey]", has_text="Phone").locator("[data-testid=passkey-remove]").click()
    page.wait_for_url(f"{base}/accounts/methods/")
    assert not Authenticator.objects.filter(pk=phone_id).exists()
    assert page.locator("[data-testid=passkey-row]").count() == 1
    assert page.locator("[data-testid=passkey-remove-from-wallet]").count() == 0
    assert violations == []
    context.close()
