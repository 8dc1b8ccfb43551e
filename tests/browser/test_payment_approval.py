"""In headless Chromium with a CDP virtual authenticator: an operator sets "passkey above 10 USDC" in the admin;
the user pays 5 (no prompt, completed) and 20 (the payment page asks to approve on the device, the passkey
signs, completed); a prompt the user cancels ends the payment and releases the funds. No CSP violation."""

from __future__ import annotations

import uuid

import pytest
from allauth.account.models import EmailAddress

from accounts.models import User
from numpay.core.solana import get_chain_client
from payments.authorization import available_balance
from payments.models import Payment, PaymentApproval, SpendingPolicy, WalletProtection
from wallets.program import SECP256R1_PROGRAM_ID

from ..payments_support import ApiUser, token_balance, transaction_json
from .test_e2e import SCREENSHOTS, _sign_up, browser  # noqa: F401 - the module-scoped Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.django_db(transaction=True)]
USDC = 1_000_000


def _send(page, base_url: str, to: str, amount: str) -> None:  # noqa: ANN001
    page.goto(f"{base_url}/wallet/send/")
    page.fill("#to", to)
    page.select_option("#token", "USDC")
    page.fill("#amount", amount)
    page.click("[data-testid=send-review]")
    page.click("[data-testid=send-confirm]")
    page.wait_for_url("**/wallet/payments/*/")


def test_operator_sets_passkey_above_10_then_pay_5_and_20_and_a_cancelled_prompt_releases(
        browser, live_server, celery_worker, tokens, settings) -> None:  # noqa: ANN001, F811
    settings.WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    violations: list[str] = []

    def watch(page) -> None:  # noqa: ANN001
        page.set_default_timeout(30_000)
        page.on("console", lambda message: violations.append(message.text)
                if "Content Security Policy" in message.text or "Refused to" in message.text else None)

    # given an operator who sets "passkey above 10 USDC" for everyone in the admin
    User.objects.create_superuser(email="ops@example.com", password="pw-Numpay-1")  # noqa: S106
    operator_context = browser.new_context()
    operator = operator_context.new_page()
    watch(operator)
    operator.goto(f"{live_server.url}/admin/login/?next=/admin/payments/spendingpolicy/add/")
    operator.fill("input[name=username]", "ops@example.com")
    operator.fill("input[name=password]", "pw-Numpay-1")
    operator.click("input[type=submit]")
    operator.wait_for_url("**/admin/payments/spendingpolicy/add/")
    operator.fill("input[name=name]", "Standard")
    operator.select_option("select[name=scope]", "default")
    operator.select_option("select[name=token]", label=str(tokens["USDC"]))
    operator.fill("input[name=passkey_above]", "10")
    operator.click("input[name=_save]")
    operator.wait_for_url("**/admin/payments/spendingpolicy/")
    policy = SpendingPolicy.objects.get()
    assert (policy.scope, policy.token_id, policy.passkey_above) == ("default", tokens["USDC"].pk, 10 * USDC)
    operator_context.close()
    # and a user with 100 USDC and a passkey on this browser's platform authenticator
    bob = ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    context = browser.new_context()
    page = context.new_page()
    watch(page)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator_id = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})["authenticatorId"]
    _sign_up(page, live_server.url, "payer@example.com")
    user = User.objects.get(email="payer@example.com")
    EmailAddress.objects.filter(user=user).update(verified=True)
    page.click("[data-testid=faucet-button]")
    page.wait_for_selector("[data-testid=balance-USDC] .amount:text-is('100.00')")
    page.goto(f"{live_server.url}/accounts/methods/")
    page.click("[data-testid=add-passkey]")
    page.wait_for_url("**/reauthenticate/**")
    page.fill("input[name=password]", "correct-Horse-9")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/accounts/methods/passkeys/add/")
    page.fill("input[name=name]", "This laptop")
    page.click("[data-testid=passkey-add]")
    page.wait_for_url(f"{live_server.url}/accounts/methods/")

    # when they pay 5 USDC: below the threshold, no prompt, completed
    _send(page, live_server.url, bob.email, "5")
    page.wait_for_selector("[data-testid=payment-status]:text-is('Completed')", timeout=60_000)
    assert page.locator("[data-testid=payment-approve]").count() == 0
    assert PaymentApproval.objects.count() == 0

    # when they pay 20 USDC: the review says the passkey must approve; the page asks to approve on the device
    page.goto(f"{live_server.url}/wallet/send/")
    page.fill("#to", bob.email)
    page.select_option("#token", "USDC")
    page.fill("#amount", "20")
    page.click("[data-testid=send-review]")
    assert "Your passkey must approve this payment" in page.inner_text("[data-testid=send-approval-required]")
    page.click("[data-testid=send-confirm]")
    page.wait_for_url("**/wallet/payments/*/")
    assert page.inner_text("[data-testid=payment-status]") == "Waiting for your approval"
    assert "Approve on your device." in page.inner_text("[data-testid=payment-approval]")
    page.screenshot(path=str(SCREENSHOTS / "approve-on-device.png"), full_page=True)
    signs_before = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"][0][
        "signCount"]
    page.click("[data-testid=payment-approve]")
    # then the passkey signed the payment's challenge, and the payment completes
    page.wait_for_selector("[data-testid=payment-status]:text-is('Completed')", timeout=60_000)
    signs_after = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"][0][
        "signCount"]
    assert signs_after == signs_before + 1
    approved = Payment.objects.get(amount=20 * USDC)
    assert approved.status == "confirmed"
    # registering the passkey protected the wallet on-chain: the landed transaction carries the secp256r1 check
    assert WalletProtection.objects.get(wallet=user.wallet).status == "confirmed"
    assert PaymentApproval.objects.get().onchain_nonce == 0
    landed = transaction_json(approved.signature)["transaction"]["message"]
    keys = [key["pubkey"] if isinstance(key, dict) else key for key in landed["accountKeys"]]
    assert str(SECP256R1_PROGRAM_ID) in [instruction.get("programId") or keys[instruction["programIdIndex"]]
                                         for instruction in landed["instructions"]]
    assert PaymentApproval.objects.get().payment_id == approved.pk
    assert token_balance(bob.address, tokens["USDC"].mint) == 25 * USDC

    # when they pay 20 again and close the passkey prompt (the authenticator does not verify the user)
    _send(page, live_server.url, bob.email, "20")
    assert available_balance(client=get_chain_client(), wallet=user.wallet, token=tokens["USDC"]) == 55 * USDC
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator_id, "isUserVerified": False})
    page.click("[data-testid=payment-approve]")
    # then the payment ends cancelled, nothing was signed, and the 20 are available again
    page.wait_for_selector("[data-testid=payment-status]:text-is('Cancelled: nothing was sent')")
    cancelled = Payment.objects.filter(amount=20 * USDC).exclude(pk=approved.pk).get()
    assert (cancelled.status, cancelled.signature, cancelled.attempts.count()) == ("rejected", "", 0)
    assert available_balance(client=get_chain_client(), wallet=user.wallet, token=tokens["USDC"]) == 75 * USDC
    assert page.locator("[data-testid=payment-approve]").count() == 0
    assert violations == []
    context.close()
