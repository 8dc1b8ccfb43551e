"""Passkeys that own a protected wallet on-chain, on the account page: such a passkey cannot be removed (any path:
the account page, allauth's page, allauth's headless API; nothing changes when refused)."""

from __future__ import annotations

import uuid

import pytest
from allauth.mfa.models import Authenticator
from django.core import mail
from django.test import Client

from accounts.models import User
from numpay.core.solana import get_chain_client
from payments.protection import PROTECTED, onchain_passkey_ids, wallet_mode
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND
from wallets.smart import wallet_config_read

from .helpers import wait_until
from .payments_support import ApiUser
from .test_payment_approvals import APP, PASSWORD
from .test_protected_mode import compressed, register

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]
BROWSER = "/_allauth/browser/v1"
JSON = "application/json"


def _browser_session(email: str, *, enforce_csrf_checks: bool = False) -> Client:
    """The same person signed in to the pages (a browser session, just authenticated: allauth's recent login)."""
    client = Client()
    response = client.post(f"{BROWSER}/auth/login", {"email": email, "password": PASSWORD}, content_type=JSON)
    assert response.status_code == 200, response.content
    assert client.post(f"{BROWSER}/auth/reauthenticate", {"password": PASSWORD}, content_type=JSON).status_code == 200
    client.handler.enforce_csrf_checks = enforce_csrf_checks  # from now on, as a browser's page is checked
    return client


def test_a_passkey_that_owns_the_wallet_on_chain_cannot_be_removed_by_any_path(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a wallet protected by the laptop's passkey (its owner on-chain)
    alice = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com")
    user = User.objects.get(email=alice.email)
    laptop = register(alice, "Laptop")
    assert wait_until(lambda: wallet_mode(user.wallet) == PROTECTED, timeout=60)
    passkey = Authenticator.objects.get(user=user, type=Authenticator.Type.WEBAUTHN)
    assert onchain_passkey_ids(user.wallet) == {passkey.pk}
    mail.outbox.clear()
    browser = _browser_session(alice.email)
    # when she tries to remove it through allauth's headless API
    response = alice.client.delete(f"{APP}/account/authenticators/webauthn", {"authenticators": [passkey.pk]},
                                   content_type=JSON, HTTP_X_SESSION_TOKEN=alice.token)
    # then it is refused with the registered code and sentence
    assert response.status_code == 409, response.content
    assert response.json()["errors"] == [{
        "code": "passkey_owns_wallet", "param": "authenticators",
        "message": "This passkey owns your wallet on-chain. Removing it from your account would not take it off "
                   "your wallet, so it cannot be removed."}]
    # and through the account page and allauth's own page, likewise
    for path in (f"/accounts/methods/passkeys/{passkey.pk}/remove/", f"/accounts/2fa/webauthn/keys/{passkey.pk}/remove/"):
        page = browser.post(path)
        assert page.status_code == 409, path
        assert "This passkey owns your wallet on-chain." in page.content.decode()
    # and the account page offers no Remove for it, and says why
    methods = browser.get("/accounts/methods/")
    assert [removable for method, removable in methods.context["rows"] if method.kind == "passkey"] == [False]
    assert 'data-testid="passkey-owns-wallet"' in methods.content.decode()
    assert 'data-testid="passkey-remove"' not in methods.content.decode()
    # and nothing changed: the passkey is still registered, still the owner on-chain, no "removed" email went out
    assert Authenticator.objects.filter(pk=passkey.pk, user=user).exists()
    assert onchain_passkey_ids(user.wallet) == {passkey.pk}
    config = wallet_config_read(client=get_chain_client(), wallet=user.wallet)
    assert config.authority(compressed(laptop)).permissions == PERMISSION_SPEND | PERMISSION_MANAGE
    assert mail.outbox == []

