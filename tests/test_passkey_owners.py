"""Passkeys that own a protected wallet on-chain, on the account page: such a passkey cannot be removed (any path:
the account page, allauth's page, allauth's headless API; nothing changes when refused), and a further passkey is
made an owner from the page ("Make this passkey an owner of your wallet", approved by an owner passkey:
static/payments/passkey_owner.js over payments/passkey_owners.py)."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from allauth.mfa.models import Authenticator
from django.core import mail
from django.db import connection, transaction
from django.test import Client

from accounts.models import User
from numpay.core.solana import get_chain_client
from payments.models import WalletProtection
from payments.passkey_owners import passkey_owner_add, passkey_owner_options
from payments.protection import PROTECTED, onchain_passkey_ids, wallet_mode
from wallets.lock_objects import wallet_qs_select_for_update
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND
from wallets.smart import wallet_config_read

from .helpers import wait_until
from .payments_support import ApiUser
from .races import postgresql_only, wait_for_lock_waiters
from .test_payment_approvals import APP, PASSWORD
from .test_protected_mode import approve_all, compressed, register

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
                   "your wallet, so it cannot be removed yet: first use \"Remove from wallet\" (approved with "
                   "another passkey that owns it), or wait until its change on the network is done."}]
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


def _attribute(html: str, testid: str, name: str) -> list[str]:
    """``name`` of every element with ``data-testid=testid`` in ``html``, in order."""
    return re.findall(rf'<[^>]*data-testid="{testid}"[^>]*\b{name}="([^"]*)"', html, re.DOTALL)


def test_the_account_page_makes_a_second_passkey_an_owner_approved_by_the_first(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a wallet protected by the laptop's passkey, and the phone's passkey registered since (not an owner)
    alice = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com")
    user = User.objects.get(email=alice.email)
    laptop = register(alice, "Laptop")
    assert wait_until(lambda: wallet_mode(user.wallet) == PROTECTED, timeout=60)
    phone = register(alice, "Phone")
    laptop_id = Authenticator.objects.get(user=user, data__name="Laptop").pk
    phone_id = Authenticator.objects.get(user=user, data__name="Phone").pk
    # when she opens the account page in her browser (CSRF enforced, as for the page's script)
    browser = _browser_session(alice.email, enforce_csrf_checks=True)
    page = browser.get("/accounts/methods/").content.decode()
    # then the laptop is the owner, and the phone offers "Make this passkey an owner of your wallet" (the script
    # is loaded from our static files: no inline script)
    assert re.findall(r'data-testid="passkey-wallet-role">\s*([^<\s][^<]*?)\s*<', page) == ["Owner on-chain"]
    assert "Make this passkey an owner of your wallet</button>" in page
    assert _attribute(page, "passkey-make-owner", "data-options-url") == [
        f"/api/v1/wallet/passkeys/{phone_id}/owner-options"]
    owner_url = _attribute(page, "passkey-make-owner", "data-owner-url")[0]
    assert '<script src="/static/payments/passkey_owner.js" defer></script>' in page
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    # when the page's button asks for the options and the laptop (an owner) approves
    options = browser.post(_attribute(page, "passkey-make-owner", "data-options-url")[0], {}, content_type=JSON,
                           HTTP_X_CSRFTOKEN=csrf)
    assert options.status_code == 201, options.content
    body = options.json()
    assert len(body["public_key"]["allowCredentials"]) == 1  # only the owner can approve
    added = browser.post(owner_url, {"credentials": approve_all(laptop, body), "nonce": body["nonce"],
                                     "expires_at": body["expires_at"]}, content_type=JSON, HTTP_X_CSRFTOKEN=csrf)
    assert added.status_code == 202, added.content
    # then the page says it is becoming an owner, then, once it landed, that both are owners on-chain
    assert "Becoming an owner…" in browser.get("/accounts/methods/").content.decode() or \
        WalletProtection.objects.get(pk=added.json()["id"]).status == "confirmed"
    assert wait_until(lambda: browser.get(added.json()["status_url"]).json()["status"] not in ("signed", "submitted"),
                      timeout=60)
    assert browser.get(added.json()["status_url"]).json()["status"] == "confirmed"
    page = browser.get("/accounts/methods/").content.decode()
    assert re.findall(r'data-testid="passkey-wallet-role">\s*([^<\s][^<]*?)\s*<', page) == ["Owner on-chain"] * 2
    assert 'data-testid="passkey-make-owner"' not in page
    assert onchain_passkey_ids(user.wallet) == {laptop_id, phone_id}
    config = wallet_config_read(client=get_chain_client(), wallet=user.wallet)
    assert config.authority(compressed(phone)).permissions == PERMISSION_SPEND | PERMISSION_MANAGE


def test_without_csrf_the_pages_owner_request_is_refused_and_nothing_is_signed(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a protected wallet and a second passkey, and a browser session
    alice = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com")
    user = User.objects.get(email=alice.email)
    register(alice, "Laptop")
    assert wait_until(lambda: wallet_mode(user.wallet) == PROTECTED, timeout=60)
    register(alice, "Phone")
    phone_id = Authenticator.objects.get(user=user, data__name="Phone").pk
    browser = _browser_session(alice.email, enforce_csrf_checks=True)
    before = WalletProtection.objects.filter(wallet=user.wallet).count()
    # when another site's page posts to the owner endpoint with her cookie (no CSRF token)
    response = browser.post(f"/api/v1/wallet/passkeys/{phone_id}/owner", {"credential": {}, "nonce": 0,
                                                                         "expires_at": 0}, content_type=JSON)
    # then it is refused and nothing was signed or submitted
    assert response.status_code == 403
    assert WalletProtection.objects.filter(wallet=user.wallet).count() == before


@postgresql_only
def test_a_passkey_removed_while_it_is_being_made_an_owner_waits_and_is_then_refused(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a protected wallet, the phone's passkey registered since, and the laptop's approval of adding it
    alice = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com")
    user = User.objects.get(email=alice.email)
    laptop = register(alice, "Laptop")
    assert wait_until(lambda: wallet_mode(user.wallet) == PROTECTED, timeout=60)
    register(alice, "Phone")
    phone_id = Authenticator.objects.get(user=user, data__name="Phone").pk
    options = passkey_owner_options(user=user, authenticator_id=phone_id)
    credentials = [laptop.get(entry) for entry in options.approvals]
    outcome: dict[str, object] = {}

    def remove() -> None:
        try:
            response = alice.client.delete(f"{APP}/account/authenticators/webauthn", {"authenticators": [phone_id]},
                                           content_type=JSON, HTTP_X_SESSION_TOKEN=alice.token)
            outcome["removal"] = (response.status_code, [error["code"] for error in response.json().get("errors", [])])
        finally:
            connection.close()

    # when the addition holds the wallet's lock and the removal arrives meanwhile
    thread = threading.Thread(target=remove)
    with transaction.atomic():
        wallet_qs_select_for_update().get(user=user)
        thread.start()
        assert wait_for_lock_waiters(1, give_up_when=lambda: not thread.is_alive())
        passkey_owner_add(user=user, authenticator_id=phone_id, credentials=credentials,
                          nonce=options.nonce, expires_at=options.expires_at)
    thread.join()
    # then the removal, decided after the addition committed, is refused: the phone is becoming an owner
    assert outcome == {"removal": (409, ["passkey_owns_wallet"])}
    assert Authenticator.objects.filter(pk=phone_id).exists()
    assert wait_until(lambda: not WalletProtection.objects.filter(
        wallet=user.wallet, status__in=WalletProtection.CHANGE_PENDING_STATUSES).exists(), timeout=60)
    assert onchain_passkey_ids(user.wallet) == {Authenticator.objects.get(user=user, data__name="Laptop").pk,
                                                phone_id}
