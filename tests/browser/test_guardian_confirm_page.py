"""The default product flow in headless Chromium with a CDP virtual authenticator: registering a passkey puts the
wallet in protected mode; the owner invites a guardian from the guardians page; once the guardian accepted, the
page asks "Confirm with your passkey", and the confirmation is written on-chain (the wallet program's delayed
``guardians_propose``, then ``guardians_apply`` by beat). No CSP violation, no serious axe violation."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator

from accounts.models import User
from numpay.core.solana import get_chain_client
from payments.protection import PROTECTED, wallet_mode
from recovery import digests, services
from recovery.models import Guardian, GuardianInvitation
from recovery.passkeys import authenticator_key
from tests.helpers import wait_until
from tests.recovery_support import invitation_token, person, sign
from wallets.program.instructions import PERMISSION_GUARDIAN
from wallets.smart import wallet_config_read

from .test_a11y import _axe_source, _serious
from .test_e2e import _sign_up, browser  # noqa: F401 - the module-scoped Chromium fixture
from .test_passkey_owner_page import AUTHENTICATOR, _add_passkey

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def test_the_owner_confirms_a_guardian_with_their_passkey_and_it_is_written_on_chain(
        browser, live_server, settings, celery_worker, make_user) -> None:  # noqa: ANN001, F811
    settings.WEBAUTHN_ALLOWED_ORIGINS = [live_server.url, *settings.WEBAUTHN_ALLOWED_ORIGINS]  # + the guardian's
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 2
    base = live_server.url
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    # given an owner who signed up and registered a passkey (the wallet switches to protected mode)
    _sign_up(page, base, "guarded@example.com")
    owner = User.objects.get(email="guarded@example.com")
    EmailAddress.objects.filter(user=owner).update(verified=True)
    page.goto(f"{base}/accounts/methods/")
    page.click("[data-testid=add-passkey]")
    page.wait_for_url("**/reauthenticate/**")
    page.fill("input[name=password]", "correct-Horse-9")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/accounts/methods/passkeys/add/")
    _add_passkey(page, base, "Laptop")
    assert wait_until(lambda: wallet_mode(owner.wallet) == PROTECTED, timeout=60)
    # when they invite a guardian from the guardians page (their passkey) and the guardian accepts
    guardian = person(make_user, "helper@example.com")
    page.goto(f"{base}/recovery/guardians/")
    page.fill("#guardian-email", "helper@example.com")
    page.click("[data-testid=guardian-invite] button[type=submit]")
    assert wait_until(lambda: GuardianInvitation.objects.filter(owner=owner).exists(), timeout=30)
    token = invitation_token("helper@example.com")
    invitation = GuardianInvitation.objects.get(owner=owner)
    services.guardian_invitation_accept(token=token, user=guardian.user,
                                        credential=sign(guardian, digests.invitation_challenge(invitation.id)))
    # then the page asks the owner to confirm with their passkey, and the confirmation is written on-chain
    page.goto(f"{base}/recovery/guardians/")
    assert "confirm with your passkey" in page.inner_text("[data-testid=guardian]")
    assert _serious(page, _axe_source()) == []
    with page.expect_navigation():
        page.click("[data-testid=guardian-confirm]")
    row = Guardian.objects.get(owner=owner)
    assert row.owner_confirmed_at is not None
    assert wait_until(lambda: Guardian.objects.get(pk=row.pk).status == "active", timeout=90)
    config = wallet_config_read(client=get_chain_client(), wallet=owner.wallet)
    key = authenticator_key(Authenticator.objects.get(user=guardian.user))
    assert config.authority(key).permissions == PERMISSION_GUARDIAN
    assert (config.guardian_threshold, config.guardian_change_delay) == (1, 2)
    page.goto(f"{base}/recovery/guardians/")
    assert "active" in page.inner_text("[data-testid=guardian]")
    assert violations == []
