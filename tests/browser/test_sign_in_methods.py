"""In headless Chromium: sign up through a real OpenID Connect provider (redirects, consent, back to Numpay
with a wallet), sign out and in again; sign up by phone with the code read from /dev/outbox/."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from accounts.models import User
from tests.browser.test_e2e import SCREENSHOTS, browser  # noqa: F401 - the module's Chromium fixture
from tests.oidc_support import PASSWORD, PROVIDER_ID

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def phone_page(browser) -> Iterator[object]:  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def test_sign_up_through_the_openid_provider_then_out_and_in_again(phone_page, live_server, oidc_configured,
                                                                    tokens) -> None:
    page = phone_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # given the sign-in screen offers the configured provider
    page.goto(f"{live_server.url}/accounts/signup/")
    page.screenshot(path=str(SCREENSHOTS / "signup-methods.png"), full_page=True)
    # when the person continues with it, signs in at the provider and consents
    page.click(f"[data-testid=provider-{PROVIDER_ID}]")
    page.wait_for_url(f"{oidc_configured.url}/**")
    page.fill("input[name=login]", "browser-person@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.click("button[value=grant]")
    # then they are back at Numpay with a wallet
    page.wait_for_url(f"{live_server.url}/wallet/")
    page.click("[data-testid=receive-link]")  # the home leads with the balance; the address is on Receive
    address = page.inner_text("[data-testid=wallet-address]").strip()
    user = User.objects.get(email="browser-person@example.com")
    assert address == user.wallet.address
    # and their account page lists the provider (kept until they have a password: allauth's rule)
    page.click("text=Account")
    assert page.inner_text("[data-testid=method-social]").split() == ["Test", "IdP", "(set", "a", "password",
                                                                      "before", "removing", "it)"]
    page.screenshot(path=str(SCREENSHOTS / "sign-in-methods.png"), full_page=True)
    # when they sign out and sign in again through the provider
    page.click("text=Sign out")
    page.goto(f"{live_server.url}/accounts/login/")
    page.click(f"[data-testid=provider-{PROVIDER_ID}]")
    page.wait_for_url(re.compile(r".*(/identity/o/authorize|/wallet/).*"))
    if page.url.startswith(oidc_configured.url):
        page.click("button[value=grant]")
    # then it is the same account and the same wallet
    page.wait_for_url(f"{live_server.url}/wallet/")
    page.click("[data-testid=receive-link]")
    assert page.inner_text("[data-testid=wallet-address]").strip() == address
    assert User.objects.filter(email="browser-person@example.com").count() == 1


def test_sign_up_by_phone_with_the_code_from_the_dev_outbox(phone_page, live_server, tokens, settings) -> None:
    settings.ACCOUNT_RATE_LIMITS = {"verify_phone": "100/m/key,100/m/ip"}
    page = phone_page
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("input[name=phone]", "+1 202 555 0143")
    page.click("[data-testid=signup-form] button[type=submit]")
    page.wait_for_url(f"{live_server.url}/accounts/phone/verify/")
    # the person reads the code in the development outbox (another tab, as a developer would)
    outbox = page.context.new_page()
    outbox.goto(f"{live_server.url}/dev/outbox/")
    text = outbox.inner_text("[data-testid=outbox-message][data-recipient='+12025550143'] .outbox-body")
    code = re.search(r"code is (\S+)\.", text).group(1)
    outbox.close()
    page.fill("input[name=code]", code)
    page.click("form button[type=submit] >> nth=0")
    page.wait_for_url(f"{live_server.url}/wallet/")
    page.click("[data-testid=receive-link]")
    assert len(page.inner_text("[data-testid=wallet-address]").strip()) >= 32
    assert User.objects.get(phone="+12025550143").phone_verified is True
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(SCREENSHOTS / "phone-signed-up.png"), full_page=True)
