"""Social sign-in against a real OpenID Connect provider (allauth.idp.oidc in a second Django project):
sign-up with a wallet, no takeover through an unverified email, the mobile API's provider token flow."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount

from accounts.models import User
from tests.oidc_support import CLIENT_ID, CLIENT_SECRET, PROVIDER_ID, provider_sign_in
from wallets.models import Wallet

pytestmark = pytest.mark.django_db(transaction=True)


def _start_at_numpay(client) -> str:
    response = client.post(f"/accounts/oidc/{PROVIDER_ID}/login/")
    assert response.status_code == 302
    return response["Location"]


def _back_at_numpay(client, callback_url: str):  # noqa: ANN202
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def test_provider_buttons_appear_only_when_configured(client, settings) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {}
    assert b'data-testid="providers"' not in client.get("/accounts/login/").content
    settings.SOCIALACCOUNT_PROVIDERS = {"github": {"APPS": [{"client_id": "gh-id", "secret": "gh-secret"}]}}
    page = client.get("/accounts/signup/").content
    assert b'data-testid="provider-github"' in page
    assert b'data-testid="provider-google"' not in page


def test_sign_up_through_the_openid_provider_provisions_a_wallet(client, oidc_configured) -> None:
    # when a person chooses the provider, signs in there and consents
    authorize = _start_at_numpay(client)
    assert authorize.startswith(f"{oidc_configured.url}/identity/o/authorize?")
    response = _back_at_numpay(client, provider_sign_in(authorize, "verified-person@example.com"))
    # then they are back at Numpay, signed in, with an account linked to the provider and one wallet
    assert response.status_code == 302
    assert response["Location"] == "/wallet/"
    user = User.objects.get(email="verified-person@example.com")
    assert int(client.session["_auth_user_id"]) == user.pk
    assert SocialAccount.objects.filter(user=user, provider=PROVIDER_ID).count() == 1
    assert Wallet.objects.filter(user=user).count() == 1


@pytest.mark.parametrize("email", ["victim@example.com", "owner@example.com"])  # unverified, verified at the provider
def test_a_provider_email_never_signs_into_the_existing_account(client, make_user, oidc_configured, email: str) -> None:
    # given a Numpay account, and a provider account claiming its address (unverified, or verified there)
    victim = make_user(email=email)
    # when someone signs in through the provider with that claim
    response = _back_at_numpay(client, provider_sign_in(_start_at_numpay(client), email))
    # then they are not signed in as the account owner and nothing is linked to it
    assert response.status_code == 302
    assert response["Location"] == "/accounts/3rdparty/signup/"
    assert "_auth_user_id" not in client.session
    assert SocialAccount.objects.count() == 0
    assert list(User.objects.values_list("pk", flat=True)) == [victim.pk]
    # and the sign-up form refuses the taken address: the owner must sign in first and connect there
    signup = client.post("/accounts/3rdparty/signup/", {"email": email})
    assert signup.status_code == 200
    assert SocialAccount.objects.count() == 0
    assert "_auth_user_id" not in client.session


def _id_token(provider_url: str) -> str:
    """An ID token the provider issued to Numpay's client for app-person@example.com (as a mobile app's
    own sign-in with the provider would obtain it)."""
    from urllib.parse import parse_qs, urlencode

    authorize = f"{provider_url}/identity/o/authorize?" + urlencode({
        "client_id": CLIENT_ID, "response_type": "code", "scope": "openid profile email",
        "redirect_uri": f"http://testserver/accounts/oidc/{PROVIDER_ID}/login/callback/", "state": "app-state-1"})
    code = parse_qs(urlsplit(provider_sign_in(authorize, "app-person@example.com")).query)["code"][0]
    token = requests.post(f"{provider_url}/identity/o/api/token", auth=(CLIENT_ID, CLIENT_SECRET), timeout=10, data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": f"http://testserver/accounts/oidc/{PROVIDER_ID}/login/callback/"})
    assert token.status_code == 200, token.text
    return token.json()["id_token"]


def test_the_mobile_api_exchanges_a_provider_token_for_a_session_token(client, oidc_configured) -> None:
    id_token = _id_token(oidc_configured.url)
    # when the app posts the provider's ID token
    response = client.post("/_allauth/app/v1/auth/provider/token", {
        "provider": PROVIDER_ID, "process": "login", "token": {"client_id": CLIENT_ID, "id_token": id_token}},
        content_type="application/json")
    # then it gets a session token for a new account with a wallet
    assert response.status_code == 200, response.content
    token = response.json()["meta"]["session_token"]
    user = User.objects.get(email="app-person@example.com")
    assert Wallet.objects.filter(user=user).count() == 1
    client.logout()
    assert client.get("/api/v1/payments", HTTP_X_SESSION_TOKEN=token).status_code == 200
    # and a forged token is refused
    forged = client.post("/_allauth/app/v1/auth/provider/token", {
        "provider": PROVIDER_ID, "process": "login", "token": {"client_id": CLIENT_ID, "id_token": id_token[:-4] + "AAAA"}},
        content_type="application/json")
    assert forged.status_code == 400


def test_form_action_allows_exactly_the_configured_providers(client, settings) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {}
    assert "form-action 'self';" in client.get("/accounts/login/")["Content-Security-Policy"] + ";"
    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [{"client_id": "gh-id", "secret": "gh-secret"}]},
        "openid_connect": {"APPS": [{"provider_id": "corp", "name": "Corp", "client_id": "c", "secret": "s",
                                     "settings": {"server_url": "https://id.corp.example/realms/main"}}]}}
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    assert "form-action 'self' https://github.com https://id.corp.example;" in policy + ";"
