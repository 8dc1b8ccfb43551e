"""The Content-Security-Policy breaks nothing: the pages (htmx, numpay.js, data: QR codes) and the API docs
(Swagger UI from drf-spectacular-sidecar, its init script a separate file) run in Chromium without a single
CSP violation."""

from __future__ import annotations

import pytest

from .test_e2e import _sign_up, browser  # noqa: F401 - the module-scoped Chromium fixture

pytestmark = [pytest.mark.browser]


def test_pages_and_api_docs_run_without_csp_violations(browser, live_server) -> None:  # noqa: F811
    page = browser.new_context().new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    # the API docs render their title from the schema (the UI script ran, from our own origin)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .title:has-text('Numpay API')")
    assert page.locator(".opblock-summary-path").count() >= 5
    # the pages: sign-up form, home (live polling), receive (QR image)
    _sign_up(page, live_server.url, "csp@example.com")
    page.wait_for_timeout(1_500)  # htmx and numpay.js have loaded and issued their first requests
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("typeof window.numpayPollNow") == "function"
    page.goto(f"{live_server.url}/wallet/receive/")
    assert page.locator("[data-testid=wallet-qr]").evaluate("img => img.naturalWidth") > 0
    assert violations == []
