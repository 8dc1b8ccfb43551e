"""Guardian recovery in a real headless Chromium: an owner whose account someone is trying to recover sees the
banner on their wallet home at once and cancels the recovery from it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from recovery.models import RecoveryEvent, RecoveryRequest
from tests.recovery_support import add_guardian, person, start_collecting

from .test_e2e import SCREENSHOTS, browser  # noqa: F401 - the module-scoped Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def test_the_owner_sees_the_banner_and_cancels(browser: Any, live_server: Any, make_user: Any, settings: Any,  # noqa: F811
                                               chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0
    # given an owner with two guardians, and someone with the owner's email asking for the account
    owner = person(make_user, "banner-owner@example.com")
    for n in range(2):
        add_guardian(owner, person(make_user, f"banner-guardian{n}@example.com"))
    request, _token, _soft = start_collecting(owner, client_key="192.0.2.99")
    # when the owner signs in
    page = browser.new_context().new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "banner-owner@example.com")
    page.fill("input[name=password]", "pw-Numpay-1")
    page.click("[data-testid=login-form] button[type=submit]")
    page.wait_for_url(f"{live_server.url}/wallet/")
    # then the banner is the first thing on the page, and one click cancels the recovery
    banner = page.locator("[data-testid=recovery-banner]")
    assert banner.is_visible()
    assert "Someone is trying to recover your account." in banner.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "recovery-banner.png"), full_page=True)
    page.click("[data-testid=recovery-banner-cancel]")
    page.wait_for_url(f"{live_server.url}/recovery/")
    assert "The recovery was cancelled." in page.inner_text("main")
    assert page.locator("[data-testid=recovery-banner]").count() == 0
    assert RecoveryRequest.objects.get(pk=request.pk).status == RecoveryRequest.Status.CANCELLED
    assert RecoveryEvent.objects.filter(request=request, kind="request_cancelled", actor="owner").count() == 1
