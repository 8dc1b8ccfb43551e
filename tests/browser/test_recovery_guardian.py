"""Guardian recovery's other pages in a real headless Chromium with CDP virtual authenticators: a friend accepts
an emailed invitation with their passkey (the guardian row points at that passkey); someone who lost access
proves the owner's email, creates their new passkey and follows the status page; the friend, now a guardian,
opens the emailed approval link, approves with their passkey and sees the count update, and the requester's
page then says "2 of 3 guardians approved; you regain access on ... unless the owner cancels". Each step
asserts what it changed in the database; no serious axe violation and no CSP violation on these pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.core.cache import cache

from accounts.models import User
from recovery import digests, selectors, services
from recovery.models import Guardian, RecoveryApproval, RecoveryEvent, RecoveryRequest
from recovery.passkeys import authenticator_key
from tests.recovery_support import add_guardian, last_code, owner_sign, person, recovery_outbox, sign

from .test_a11y import _axe_source, _serious
from .test_e2e import SCREENSHOTS, _sign_up, browser  # noqa: F401 - the module-scoped Chromium fixture
from .test_passkey_owner_page import AUTHENTICATOR, _add_passkey

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.django_db(transaction=True)]
Status = RecoveryRequest.Status


def _page(browser: Any, violations: list[str]) -> tuple[Any, Any]:  # noqa: F811
    """A new browser context's page with its own virtual authenticator; CSP refusals are collected."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    return page, cdp


def _link(path_pattern: str, to: str, base: str) -> str:
    """The last link matching ``path_pattern`` emailed to ``to`` (queued recovery emails), on the live server."""
    for email in reversed(recovery_outbox()):
        found = re.search(rf"https?://[^/\s]+({path_pattern})", email.body)
        if to in email.to and found:
            return f"{base}{found.group(1)}"
    raise AssertionError(f"no {path_pattern} link emailed to {to}")


def test_a_guardian_accepts_approves_and_the_requester_sees_the_count(browser: Any, live_server: Any,  # noqa: F811
                                                                     make_user: Any, settings: Any,
                                                                     chain_setup: Any) -> None:
    cache.clear()
    settings.WEBAUTHN_ALLOWED_ORIGINS = [live_server.url, "http://localhost:8000"]  # the browser, the soft keys
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0
    base, violations, axe = live_server.url, [], _axe_source()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # given an owner with two guardians already, and a friend with an account and a passkey on their laptop
    owner = person(make_user, "page-owner@example.com")
    helpers = [person(make_user, f"page-guardian{n}@example.com") for n in range(2)]
    for helper in helpers:
        add_guardian(owner, helper)
    friend_page, _cdp = _page(browser, violations)
    _sign_up(friend_page, base, "page-friend@example.com")
    friend = User.objects.get(email="page-friend@example.com")
    EmailAddress.objects.filter(user=friend).update(verified=True)
    friend_page.goto(f"{base}/accounts/methods/")
    friend_page.click("[data-testid=add-passkey]")
    friend_page.wait_for_url("**/reauthenticate/**")
    friend_page.fill("input[name=password]", "correct-Horse-9")
    friend_page.click("main form button[type=submit]")
    friend_page.wait_for_url(f"{base}/accounts/methods/passkeys/add/")
    _add_passkey(friend_page, base, "Laptop")
    laptop = Authenticator.objects.get(user=friend, type=Authenticator.Type.WEBAUTHN)

    # --- the invitation acceptance page ---
    # when the owner invites the friend (owner's passkey) and the friend opens the emailed link
    services.guardian_invite(owner=owner.user, email="page-friend@example.com",
                             credential=owner_sign(owner, action="invite", subject="page-friend@example.com"))
    friend_page.goto(_link(r"/recovery/invitations/[\w-]+/", "page-friend@example.com", base))
    assert "asks you to be one of their guardians" in friend_page.inner_text("main")
    assert _serious(friend_page, axe) == []
    # and accepts with their passkey
    with friend_page.expect_response("**/api/v1/recovery/invitations/*/accept") as accepted:
        friend_page.click("text=Accept with my passkey")
    assert accepted.value.ok, accepted.value.text()
    friend_page.wait_for_url(f"{base}/recovery/")
    # then they are the owner's guardian with that passkey (its P-256 key as their on-chain authority), counting
    # once the change delay (0 here) has passed
    guardian = Guardian.objects.get(owner=owner.user, guardian_user=friend)
    assert guardian.passkey_id == laptop.pk
    assert bytes(guardian.authority_key) == authenticator_key(laptop)
    services.guardian_changes_apply()
    assert Guardian.objects.get(pk=guardian.pk).status == Guardian.Status.ACTIVE
    assert RecoveryEvent.objects.filter(owner=owner.user, guardian=guardian, actor="guardian").exists()

    # --- the requester: "I lost access", code, new passkey, status page ---
    requester_page, _requester_cdp = _page(browser, violations)
    requester_page.goto(f"{base}/recovery/start/")
    requester_page.fill("#identifier", "page-owner@example.com")
    requester_page.click("main form button[type=submit]")
    requester_page.wait_for_url(f"{base}/recovery/verify/")
    requester_page.fill("#code", last_code("page-owner@example.com"))
    with requester_page.expect_navigation():  # the new passkey page, loaded (its script listens before we click)
        requester_page.click("main form button[type=submit]")
    with requester_page.expect_response("**/api/v1/recovery/requests/passkey") as registered:
        requester_page.click("[data-testid=recovery-new-passkey]")
    assert registered.value.status == 200, registered.value.text()
    requester_page.wait_for_url(f"{base}/recovery/status/")
    request = RecoveryRequest.objects.get(user=owner.user)
    assert request.status == Status.COLLECTING
    assert request.pending_public_key
    assert requester_page.inner_text("[data-testid=recovery-status]") == (
        "0 of 3 guardians approved; 2 approvals are needed.")
    assert _serious(requester_page, axe) == []
    # one guardian approves (with their own passkey, elsewhere)
    services.recovery_approve(request_id=request.id, user=helpers[0].user,
                              credential=sign(helpers[0], digests.approval_challenge(request)))

    # --- the guardian's approval page ---
    # when the friend opens the emailed approval link
    friend_page.goto(_link(rf"/recovery/approve/{request.id}/", "page-friend@example.com", base))
    status = friend_page.locator("[data-testid=recovery-status]")
    assert status.inner_text() == "1 of 3 guardians approved; 2 approvals are needed."
    assert _serious(friend_page, axe) == []
    # and approves with their passkey
    with friend_page.expect_navigation(), friend_page.expect_response(
            f"**/api/v1/recovery/requests/{request.id}/approve") as approved:  # then the page reloads itself
        friend_page.click("text=Approve with my passkey")
    assert approved.value.status == 201, approved.value.text()
    # then the page shows the count updated and the timelock running, and offers to withdraw
    request.refresh_from_db()
    assert request.status == Status.TIMELOCKED
    assert request.executes_at is not None
    sentence = selectors.request_status(request).sentence
    assert sentence.startswith("2 of 3 guardians approved; you regain access on ")
    assert status.inner_text() == sentence
    assert friend_page.locator("text=Withdraw my approval").count() == 1
    approval = RecoveryApproval.objects.get(request=request, guardian=guardian, withdrawn_at__isnull=True)
    assert approval.passkey_id == laptop.pk
    assert services.live_approvals(request) == 2
    friend_page.screenshot(path=str(SCREENSHOTS / "recovery-approval.png"), full_page=True)

    # --- the requester's status page now ---
    requester_page.reload()
    shown = requester_page.locator("[data-testid=recovery-status]")
    assert shown.get_attribute("data-status") == "timelocked"
    assert shown.inner_text() == (f"2 of 3 guardians approved; you regain access on "
                                  f"{request.executes_at:%d %B at %H:%M} UTC unless the owner cancels.")
    requester_page.screenshot(path=str(SCREENSHOTS / "recovery-status.png"), full_page=True)
    assert violations == []
