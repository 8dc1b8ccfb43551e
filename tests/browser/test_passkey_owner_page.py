"""In headless Chromium with CDP virtual authenticators: a protected wallet's second passkey is made an owner from
the account page ("Make this passkey an owner of your wallet", approved with the first passkey: the wallet program
checks the approval on-chain); no CSP violation, no serious axe violation on the page."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator

from accounts.models import User
from numpay.core.solana import get_chain_client
from payments.models import WalletProtection
from payments.protection import PROTECTED, onchain_passkey_ids, wallet_mode
from tests.helpers import wait_until
from wallets.smart import token_program_mint, wallet_config_read

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
    # and press "Make this passkey an owner of your wallet" (the laptop's passkey approves each step: the
    # add_authority, then the phone's limits per mint, "Approve 1 of 3" ...; the messages are recorded as shown)
    shown: list[str] = []
    page.on("console", lambda message: shown.append(message.text[len("owner-message: "):])
            if message.text.startswith("owner-message: ") else None)
    page.evaluate("""() => {
        const box = document.querySelector("[data-owner-message]");
        new MutationObserver(() => console.log("owner-message: " + box.textContent)).observe(
            box, { childList: true, characterData: true, subtree: true });
    }""")
    with page.expect_navigation():  # the page reloads once all approvals are accepted
        page.click("[data-testid=passkey-make-owner]")
    # then every part lands, and the phone has the laptop's limits on-chain
    assert wait_until(lambda: WalletProtection.objects.filter(wallet=user.wallet, authenticator_id=phone_id).exists()
                      and not WalletProtection.objects.filter(
                          wallet=user.wallet, status__in=WalletProtection.CHANGE_PENDING_STATUSES).exists(), timeout=90)
    assert set(WalletProtection.objects.filter(wallet=user.wallet, authenticator_id=phone_id)
               .values_list("status", flat=True)) == {"confirmed"}
    config = wallet_config_read(client=get_chain_client(), wallet=user.wallet)
    phone_key, laptop_key = (next(entry.key for entry in config.authorities if entry.slot == slot) for slot in (
        max(entry.slot for entry in config.authorities if entry.kind == 2),
        min(entry.slot for entry in config.authorities if entry.kind == 2)))
    for token in tokens.values():
        mint = token_program_mint(token)
        mine, first = config.limit(phone_key, mint), config.limit(laptop_key, mint)
        assert (mine.per_transaction_cap, mine.period_cap, mine.period_seconds) == (
            first.per_transaction_cap, first.period_cap, first.period_seconds)
    # (the page asked for each approval in turn, one ceremony sequence with the laptop's passkey)
    what = "with a passkey that already owns your wallet (to add this passkey with its payment limits)…"
    asked = [text for text in dict.fromkeys(shown) if text.startswith("Approve ")]
    assert asked == ["Approve with a passkey that already owns your wallet…"] + [
        f"Approve {index} of {1 + len(tokens)} {what}" for index in range(1, 2 + len(tokens))]
    page.goto(f"{base}/accounts/methods/")
    roles = [text.strip() for text in page.locator("[data-testid=passkey-wallet-role]").all_inner_texts()]
    assert roles == ["Owner on-chain Remove from wallet"] * 2  # two owners: either can be taken off the wallet
    assert onchain_passkey_ids(user.wallet) == {laptop_id, phone_id}
    assert violations == []
    context.close()
