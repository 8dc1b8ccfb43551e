"""axe-core over every page Numpay serves (as a visitor, a user at phone size, an operator in the admin):
0 serious or critical violations. axe-core is vendored from the npm registry (tests/browser/vendor/README.md)
and injected by Playwright; the context bypasses our CSP only so the test can inject it (test_csp.py proves
the pages run under the CSP)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .test_e2e import _sign_up, browser  # noqa: F401 - the module-scoped Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.chain]

VENDOR = Path(__file__).parent / "vendor"
AXE = VENDOR / "axe.min.js"
#: what axe checks: WCAG 2.0-2.2 A and AA plus its best practices
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                                      "best-practice"]}, "resultTypes": ["violations"]}


def _axe_source() -> str:
    expected = (VENDOR / "axe.min.js.sha256").read_text().split()[0]
    data = AXE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == expected, "axe.min.js differs from the vendored release"
    return data.decode()


def _serious(page, source: str) -> list[str]:  # noqa: ANN001
    """axe's serious and critical violations of the page as it is now: ``["rule: target", ...]``."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source)
    result = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return [f"{v['id']} ({v['impact']}): {', '.join(str(n['target']) for n in v['nodes'])}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_every_page_has_no_serious_or_critical_axe_violations(browser, live_server, celery_worker,  # noqa: F811
                                                              tokens) -> None:
    from accounts.models import User
    from payments.models import Payment
    from payments.requests import PaymentRequest
    from payments.services import payment_create
    from tests.helpers import wait_until
    from wallets.faucet import faucet_fund

    source = _axe_source()
    found: dict[str, list[str]] = {}
    context = browser.new_context(bypass_csp=True, viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(30_000)
    base = live_server.url

    def check(name: str) -> None:
        page.wait_for_load_state("load")
        found[name] = _serious(page, source)

    # as a visitor
    for path in ("/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/no-such-page/"):
        page.goto(f"{base}{path}")
        check(path)
    # the passkey sign-up's pages, in a visitor's own browser (a pending sign-up holds the other sign-up flows)
    import re

    from django.core import mail

    visitor = browser.new_context(bypass_csp=True, viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, locale="en-US")
    passkey_page = visitor.new_page()
    passkey_page.set_default_timeout(30_000)
    passkey_page.goto(f"{base}/accounts/signup/passkey/")
    found["/accounts/signup/passkey/"] = _serious(passkey_page, source)
    passkey_page.fill("input[name=email]", "axe-passkey@example.com")
    passkey_page.click("main form button[type=submit]")
    passkey_page.wait_for_url(f"{base}/accounts/signup/passkey/code/")
    passkey_page.fill("input[name=code]", "WRONG1")
    passkey_page.click("main form button[type=submit]")
    passkey_page.wait_for_load_state("load")
    found["/accounts/signup/passkey/code/ (wrong code)"] = _serious(passkey_page, source)
    body = [m for m in mail.outbox if m.to == ["axe-passkey@example.com"]][-1].body
    passkey_page.fill("input[name=code]", re.search(r"^\s*([A-Z0-9-]{6,})\s*$", body, re.MULTILINE).group(1))
    passkey_page.click("main form button[type=submit]")
    passkey_page.wait_for_url(f"{base}/accounts/signup/passkey/create/")
    found["/accounts/signup/passkey/create/"] = _serious(passkey_page, source)
    visitor.close()
    # as a user with some history: home (with flash messages), receive, send, send with errors, review, payment
    _sign_up(page, base, "axe-user@example.com")
    check("/wallet/ (after sign-up, flash messages)")
    friend = browser.new_context()
    _sign_up(friend.new_page(), base, "axe-friend@example.com")
    friend.close()
    user = User.objects.get(email="axe-user@example.com")
    faucet_fund(wallet=user.wallet, token=tokens["USDC"], amount=50_000_000)
    payment, _ = payment_create(user=user, request=PaymentRequest(to="axe-friend@example.com", token="USDC",
                                                                  amount="1.5", memo="coffee"), idempotency_key="axe")
    wait_until(lambda: Payment.objects.get(pk=payment.pk).status == "confirmed", timeout=60)
    for path in ("/wallet/", "/wallet/receive/", "/wallet/send/", "/wallet/activity/", "/accounts/methods/",
                 "/dev/outbox/",
                 "/wallet/activity/?direction=sent&token=USDC", f"/wallet/payments/{payment.pk}/"):
        page.goto(f"{base}{path}")
        check(path)
    page.goto(f"{base}/wallet/send/")
    page.fill("#to", "not-an-address")
    page.fill("#amount", "abc")
    page.click("[data-testid=send-review]")
    check("/wallet/send/ (errors)")
    page.fill("#to", "axe-friend@example.com")
    page.fill("#amount", "2")
    page.click("[data-testid=send-review]")
    page.wait_for_selector("[data-testid=send-confirm]")
    check("/wallet/send/ (review)")
    # as an operator in the admin
    User.objects.create_superuser(email="axe-operator@example.com", password="pw-Numpay-1")
    admin = browser.new_context(bypass_csp=True, locale="en-US").new_page()
    admin.set_default_timeout(30_000)
    page = admin
    page.goto(f"{base}/admin/login/")
    check("/admin/login/")
    page.fill("#id_username", "axe-operator@example.com")
    page.fill("#id_password", "pw-Numpay-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    for path in ("/admin/", "/admin/payments/payment/", f"/admin/payments/payment/{payment.pk}/change/",
                 "/admin/wallets/wallet/", f"/admin/wallets/wallet/{user.wallet.pk}/change/",
                 "/admin/wallets/incomingtransfer/", "/admin/wallets/token/", "/admin/relayer/feepayer/"):
        page.goto(f"{base}{path}")
        check(path)
    problems = {name: found_here for name, found_here in found.items() if found_here}
    for name, found_here in problems.items():
        print(name, found_here)
    assert problems == {}
    assert len(found) == 28
    context.close()
    admin.context.close()
