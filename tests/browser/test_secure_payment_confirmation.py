"""Secure Payment Confirmation in headless Debian Chromium (issue 9 item 7): where the browser supports it, the
step-up goes through the browser's payment sheet (payee and total shown by the browser, signed by the passkey:
clientDataJSON type ``payment.get``), verified by the server with ``cryptography``.

Chromium shows SPC headless only with ``--enable-features=SecurePaymentConfirmationBrowser``, a CDP virtual
authenticator and ``Page.setSPCTransactionMode autoAccept`` (../shared/spikes/onchain-program/README.md), for a
credential created with the ``payment`` extension (``isPayment``): the test's page adds it to the registration,
as a site registering payment passkeys does."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress

from accounts.models import User
from payments.models import Payment, PaymentApproval, SpendingPolicy

from ..payments_support import ApiUser, token_balance
from .test_e2e import CHROMIUM, _sign_up

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.django_db(transaction=True)]
USDC = 1_000_000

#: Registration with the SPC ``payment`` extension (wraps navigator.credentials.create on the test's pages).
PAYMENT_EXTENSION = """
(() => {
  const create = navigator.credentials.create.bind(navigator.credentials);
  navigator.credentials.create = (options) => {
    if (options && options.publicKey) {
      options.publicKey.extensions = { ...(options.publicKey.extensions || {}), payment: { isPayment: true } };
      // Chromium: "A platform authenticator is required for 'payment' extension."
      options.publicKey.authenticatorSelection = {
        ...(options.publicKey.authenticatorSelection || {}), authenticatorAttachment: "platform" };
    }
    return create(options);
  };
})();
"""


@pytest.fixture(scope="module")
def spc_browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (.ci/run does this)")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--enable-features=SecurePaymentConfirmationBrowser"])
        yield browser
        browser.close()


def test_the_step_up_uses_the_browsers_payment_sheet_where_supported(spc_browser, live_server, celery_worker,
                                                                     tokens, settings) -> None:  # noqa: ANN001
    settings.WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    # a custodial wallet: a protected one carries the clientDataJSON on-chain, and SPC's does not fit a transaction
    settings.PAYMENTS_PROTECT_ON_PASSKEY = False
    SpendingPolicy.objects.create(name="Standard", scope="default", token=tokens["USDC"], passkey_above=10 * USDC)
    bob = ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    context = spc_browser.new_context()
    context.add_init_script(PAYMENT_EXTENSION)
    page = context.new_page()
    page.set_default_timeout(30_000)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    cdp.send("Page.setSPCTransactionMode", {"mode": "autoAccept"})
    _sign_up(page, live_server.url, "spc@example.com")
    user = User.objects.get(email="spc@example.com")
    EmailAddress.objects.filter(user=user).update(verified=True)
    page.click("[data-testid=faucet-button]")
    page.wait_for_selector("[data-testid=balance-USDC] .amount:text-is('100.00')")
    page.goto(f"{live_server.url}/accounts/methods/")
    page.click("[data-testid=add-passkey]")
    page.wait_for_url("**/reauthenticate/**")
    page.fill("input[name=password]", "correct-Horse-9")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/accounts/methods/passkeys/add/")
    page.fill("input[name=name]", "Payment passkey")
    page.click("[data-testid=passkey-add]")
    page.wait_for_url(f"{live_server.url}/accounts/methods/")
    # when they pay 20 USDC (above "passkey above 10") and approve
    page.goto(f"{live_server.url}/wallet/send/")
    page.fill("#to", bob.email)
    page.select_option("#token", "USDC")
    page.fill("#amount", "20")
    page.click("[data-testid=send-review]")
    page.click("[data-testid=send-confirm]")
    page.wait_for_url("**/wallet/payments/*/")
    page.click("[data-testid=payment-approve]")
    page.wait_for_selector("[data-testid=payment-status]:text-is('Completed')", timeout=60_000)
    # then the passkey signed the browser's payment sheet: payee and total, type payment.get
    approval = PaymentApproval.objects.get()
    client_data = json.loads(bytes(approval.client_data_json))
    assert client_data["type"] == "payment.get"
    assert client_data["payment"]["total"] == {"currency": "USD", "value": "20"}
    assert client_data["payment"]["payeeName"] == f"{bob.email} (USDC)"
    assert Payment.objects.get(pk=approval.payment_id).status == "confirmed"
    assert token_balance(bob.address, tokens["USDC"].mint) == 20 * USDC
    context.close()
