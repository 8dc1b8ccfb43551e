"""Issue 14 in a real headless Chromium (Debian's package, driven by Playwright), at phone and desktop sizes:
the home leads with the balance, it updates itself when someone pays (no reload, focus kept, a toast), the
activity is in chain order with dates in the reader's time zone, the send form's Max and its errors."""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo

import pytest

from tests.helpers import wait_until

from .test_e2e import _sign_up, browser  # noqa: F401 - the module-scoped Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.chain]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


def _page(browser, **options):  # noqa: ANN001, ANN202, F811
    page = browser.new_context(locale="en-US", **options).new_page()
    page.set_default_timeout(30_000)
    return page


def _user(email: str):  # noqa: ANN202
    from accounts.models import User

    return User.objects.select_related("wallet").get(email=email)


def _pay(sender_email: str, to: str, amount: str, memo: str = "") -> object:
    from payments.requests import PaymentRequest
    from payments.services import payment_create

    payment, _ = payment_create(user=_user(sender_email), request=PaymentRequest(to=to, token="USDC", amount=amount,
                                                                                 memo=memo),
                                idempotency_key=f"{sender_email}-{amount}-{memo}")
    return payment


def _fund(email: str, base_units: int, tokens) -> None:  # noqa: ANN001
    from wallets.faucet import faucet_fund

    faucet_fund(wallet=_user(email).wallet, token=tokens["USDC"], amount=base_units)


@pytest.mark.parametrize(("size", "options"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_home_leads_with_the_balance_then_send_and_receive(browser, live_server, tokens, size, options) -> None:  # noqa: F811
    page = _page(browser, **options)
    # when a new user signs up
    _sign_up(page, live_server.url, f"home-{size}@example.com")
    # then the first screen shows the balance, then Send and Receive, all without scrolling
    height = options["viewport"]["height"]
    balance = page.locator("[data-testid=balance-USDC] .amount").bounding_box()
    send = page.locator("[data-testid=send-link]").bounding_box()
    receive = page.locator("[data-testid=receive-link]").bounding_box()
    assert page.inner_text("[data-testid=balance-USDC] .amount") == "0.00"
    assert balance["y"] < send["y"]
    assert send["y"] + send["height"] <= height
    assert receive["y"] + receive["height"] <= height
    assert send["height"] >= 44  # a comfortable touch target
    activity = page.locator("#activity-list").bounding_box()
    assert activity["y"] > send["y"]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    page.screenshot(path=f"var/screenshots/home-{size}.png", full_page=True)
    page.context.close()


def test_home_updates_itself_when_someone_pays(browser, live_server, celery_worker, tokens) -> None:  # noqa: F811
    from payments.models import Payment

    alice = _page(browser, **PHONE)
    bob = _page(browser, **DESKTOP)
    _sign_up(alice, live_server.url, "live-alice@example.com")
    _sign_up(bob, live_server.url, "live-bob@example.com")
    _fund("live-bob@example.com", 50_000_000, tokens)
    # given Alice has her home open, her keyboard focus on Send, and the page marked (a reload would lose it)
    alice.evaluate("window.notReloaded = true")
    alice.focus("[data-testid=send-link]")
    alice.wait_for_timeout(1_200)  # the live poll has taken its first look
    # when Bob pays her 12.5 USDC
    payment = _pay("live-bob@example.com", "live-alice@example.com", "12.5", memo="pizza")
    wait_until(lambda: Payment.objects.get(pk=payment.pk).status == "confirmed", timeout=60, interval=0.02)
    confirmed = time.monotonic()
    # then within 2 s of the confirmation her balance shows it, without a reload, focus where it was
    alice.wait_for_selector("[data-testid=balance-USDC] .amount:text-is('12.50')", timeout=2_000)
    assert time.monotonic() - confirmed <= 2.0
    assert alice.evaluate("window.notReloaded") is True
    assert alice.evaluate("document.activeElement.dataset.testid") == "send-link"
    # and the toast announces the arrival (one polite live region), and the activity lists it with its memo
    alice.wait_for_selector("[data-testid=toast]:has-text('You received 12.50 USDC from live-bob@example.com')",
                            timeout=2_000)
    assert alice.get_attribute("[data-testid=toast]", "aria-live") == "polite"
    alice.wait_for_selector("#activity-list .activity-item:first-child:has-text('+12.50 USDC')", timeout=3_000)
    assert "pizza" in alice.inner_text("#activity-list .activity-item:first-child")
    assert "Completed" in alice.inner_text("#activity-list .activity-item:first-child")
    alice.screenshot(path="var/screenshots/home-live-phone.png", full_page=True)
    alice.context.close()
    bob.context.close()


def test_activity_is_in_chain_order_with_dates_in_the_readers_time_zone(browser, live_server, celery_worker,  # noqa: F811
                                                                       tokens) -> None:
    from payments.models import Payment

    page = _page(browser, timezone_id="Asia/Tokyo", **DESKTOP)
    other = _page(browser, **PHONE)
    _sign_up(page, live_server.url, "tz-carol@example.com")
    _sign_up(other, live_server.url, "tz-dan@example.com")
    # given Carol got 100 USDC from the faucet, then paid Dan 7, then Dan paid her back 3
    _fund("tz-carol@example.com", 100_000_000, tokens)
    first = _pay("tz-carol@example.com", "tz-dan@example.com", "7")
    wait_until(lambda: Payment.objects.get(pk=first.pk).status == "confirmed", timeout=60)
    _fund("tz-dan@example.com", 1_000_000, tokens)
    second = _pay("tz-dan@example.com", "tz-carol@example.com", "3")
    wait_until(lambda: Payment.objects.get(pk=second.pk).status == "confirmed", timeout=60)
    # when she opens her activity
    page.goto(f"{live_server.url}/wallet/activity/")
    items = page.locator("#activity-list .activity-item")
    # then newest first on chain, with who, direction and plain-words status
    texts = [re.sub(r"\s+", " ", items.nth(i).inner_text()) for i in range(items.count())]
    assert len(texts) == 3
    assert "From tz-dan@example.com" in texts[0]
    assert "+3.00 USDC" in texts[0]
    assert "To tz-dan@example.com" in texts[1]
    assert "−7.00 USDC" in texts[1]
    assert "+100.00 USDC" in texts[2]
    assert all("Completed" in text for text in texts)
    # and the date and time are the block time of the slot it landed in, in Tokyo's time
    second.refresh_from_db()
    tokyo = second.block_time.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    expected = f"{tokyo:%b} {tokyo.day}, {tokyo.year}, {tokyo.hour % 12 or 12}:{tokyo:%M} {tokyo:%p}"
    shown = items.nth(0).locator("time").inner_text().replace("\u202f", " ")
    assert shown == expected
    assert tokyo.utcoffset() == dt.timedelta(hours=9)
    # and the filter by direction keeps only what she received
    page.select_option("#filter-direction", "received")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"direction=received"))
    assert page.locator("#activity-list .activity-item").count() == 2
    page.context.close()
    other.context.close()


def test_send_form_max_and_every_error_next_to_its_field(browser, live_server, tokens) -> None:  # noqa: F811
    page = _page(browser, **PHONE)
    _sign_up(page, live_server.url, "form-erin@example.com")
    _fund("form-erin@example.com", 1_234_500_000 - 234_500_000, tokens)
    _fund("form-erin@example.com", 234_500_000, tokens)
    page.goto(f"{live_server.url}/wallet/send/")
    # then the form says what can be sent now, and Max fills it in
    page.select_option("#token", "USDC")
    assert page.inner_text("[data-available-token=USDC]") == "You can send 1,234.50 USDC now."
    assert page.is_hidden("[data-available-token=SOL]")
    page.click("[data-testid=send-max]")
    assert page.input_value("#amount") == "1234.5"
    # when she submits a bad address and too many decimals
    page.fill("#to", "not-an-address")
    page.fill("#amount", "1.1234567")
    page.click("[data-testid=send-review]")
    # then both errors show at once, each next to its field, linked and marked invalid; focus on the summary
    page.wait_for_selector("[data-testid=send-errors]")
    assert page.get_attribute("#to", "aria-invalid") == "true"
    assert "to-error" in page.get_attribute("#to", "aria-describedby").split()
    assert page.inner_text("#to-error") == "That is not a valid Solana address (base58, 32 bytes)."
    assert page.get_attribute("#amount", "aria-invalid") == "true"
    assert "amount-error" in page.get_attribute("#amount", "aria-describedby").split()
    assert page.inner_text("#amount-error") == "This token has 6 decimal places; the amount has more."
    assert page.evaluate("document.activeElement.dataset.testid") == "send-errors"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path="var/screenshots/send-errors-phone.png", full_page=True)
    page.context.close()


def test_remember_me_sits_on_the_line_of_its_label(browser, live_server) -> None:  # noqa: F811
    page = _page(browser, **PHONE)
    page.goto(f"{live_server.url}/accounts/login/")
    label = page.locator("label[for=id_remember]").bounding_box()
    box = page.locator("#id_remember").bounding_box()
    # the checkbox is on the label's line, right after it, and large enough to tap
    assert abs((label["y"] + label["height"] / 2) - (box["y"] + box["height"] / 2)) <= 4
    assert 0 <= box["x"] - (label["x"] + label["width"]) <= 24
    assert box["width"] >= 20
    page.context.close()
