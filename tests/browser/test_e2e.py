"""End to end in a real headless Chromium (Debian's package, driven by Playwright): sign up, see the
address and QR code, use the faucet, send USDC to a second user and watch it reach "Completed"."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.chain]

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("NUMPAY_SCREENSHOTS", "var/screenshots"))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (.ci/run does this)")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs a loop in this thread
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


def _sign_up(page, base_url: str, email: str) -> None:  # noqa: ANN001
    page.goto(f"{base_url}/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", "correct-Horse-9")
    page.fill("input[name=password2]", "correct-Horse-9")
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base_url}/wallet/")


def test_sign_up_faucet_and_send_usdc_until_confirmed(browser, live_server, celery_worker, tokens) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Alice on a desktop, Bob on a phone-sized screen (mobile-first pages must work there)
    alice_context = browser.new_context()
    bob_context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    alice, bob = alice_context.new_page(), bob_context.new_page()
    alice.set_default_timeout(30_000)
    bob.set_default_timeout(30_000)
    # given Alice signs up and lands on her home with a zero balance; Receive has her address and QR code
    _sign_up(alice, live_server.url, "alice-browser@example.com")
    assert alice.inner_text("[data-testid=balance-USDC] .amount") == "0.00"
    alice.click("[data-testid=receive-link]")
    address = alice.inner_text("[data-testid=wallet-address]").strip()
    assert 32 <= len(address) <= 44
    assert alice.is_visible("[data-testid=wallet-qr]")
    alice.go_back()
    # when she uses the faucet, then her USDC balance shows 100.00
    alice.click("[data-testid=faucet-button]")
    alice.wait_for_selector("[data-testid=balance-USDC] .amount:text-is('100.00')")
    alice.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    # given Bob signs up too
    _sign_up(bob, live_server.url, "bob-browser@example.com")
    # when Alice sends Bob 12.5 USDC by email
    alice.click("[data-testid=send-link]")
    alice.fill("#to", "bob-browser@example.com")
    alice.select_option("#token", "USDC")
    alice.fill("#amount", "12.5")
    alice.click("[data-testid=send-review]")
    assert alice.inner_text("[data-testid=review-fee]") == "sponsored"
    assert alice.inner_text("[data-testid=review-amount]") == "12.50 USDC"
    alice.screenshot(path=str(SCREENSHOTS / "review.png"), full_page=True)
    alice.click("[data-testid=send-confirm]")
    # then the payment page updates itself until it says Completed
    alice.wait_for_selector("[data-testid=payment-status]:text-is('Completed')", timeout=60_000)
    alice.screenshot(path=str(SCREENSHOTS / "confirmed.png"), full_page=True)
    assert len(alice.inner_text("[data-testid=payment-signature]").strip()) >= 64
    # and both dashboards show the new balances
    alice.goto(f"{live_server.url}/wallet/")
    assert alice.inner_text("[data-testid=balance-USDC] .amount") == "87.50"
    bob.goto(f"{live_server.url}/wallet/")
    assert bob.inner_text("[data-testid=balance-USDC] .amount") == "12.50"
    assert "+12.50 USDC" in bob.inner_text("#activity-list")
    bob.screenshot(path=str(SCREENSHOTS / "mobile-dashboard.png"), full_page=True)
    assert bob.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    alice_context.close()
    bob_context.close()
