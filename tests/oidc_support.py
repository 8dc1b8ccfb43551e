"""The test OpenID Connect provider (``tests/oidc_provider/``) as a session fixture, and a scripted person
who signs in there with plain HTTP (for tests that do not need a browser)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_ID = "testidp"
CLIENT_ID = "numpay-test"
CLIENT_SECRET = "numpay-test-secret"
PASSWORD = "idp-Password-1"
#: people registered at the provider: email -> whether the provider vouches for the address
USERS = {"verified-person@example.com": True, "browser-person@example.com": True,
         "app-person@example.com": True, "victim@example.com": False, "owner@example.com": True}
CALLBACK_PATH = f"/accounts/oidc/{PROVIDER_ID}/login/callback/"


@dataclass(frozen=True)
class Provider:
    url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """A running OpenID Connect provider on a free port, with Numpay registered as a confidential client
    (redirect URIs: the live server's and the test client's)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OIDC_TEST_DB": str(tmp_path_factory.mktemp("idp") / "idp.sqlite3"),
           "OIDC_TEST_PRIVATE_KEY": key, "OIDC_TEST_SETUP": json.dumps({
               "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
               "redirect_uris": [f"{live_server.url}{CALLBACK_PATH}", f"http://testserver{CALLBACK_PATH}"],
               "users": [{"email": email, "password": PASSWORD, "email_verified": verified}
                         for email, verified in USERS.items()]})}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "tests.oidc_provider.serve", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"OIDC provider exited: {process.stderr.read()}")  # type: ignore[union-attr]
            try:
                return requests.get(f"{url}/.well-known/openid-configuration", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        assert wait_until(up, timeout=60, interval=0.2), "the OIDC provider did not start"
        yield Provider(url=url)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def oidc_configured(settings, oidc_provider: Provider) -> Provider:
    """Numpay configured (as from the OIDC_* environment variables) to offer the test provider."""
    import environ

    from numpay.settings.base import social_providers_from_env

    env = environ.Env()
    overrides = {"OIDC_SERVER_URL": oidc_provider.url, "OIDC_PROVIDER_ID": PROVIDER_ID,
                 "OIDC_PROVIDER_NAME": "Test IdP", "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET}
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        settings.SOCIALACCOUNT_PROVIDERS = social_providers_from_env(env)
        # the token exchange and the userinfo call go to the provider's process: allauth's 5 s default was
        # exceeded once on a loaded CI machine (the callback then answers 401 and the browser test times out)
        settings.SOCIALACCOUNT_REQUESTS_TIMEOUT = 30
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return oidc_provider


class _Forms(HTMLParser):
    """Collects each form's action and inputs (name -> value) from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and attributes.get("name") and attributes.get("type") != "submit":
            if attributes.get("type") in ("checkbox", "radio") and "checked" not in attributes:
                return
            self.forms[-1]["fields"].setdefault(attributes["name"], []).append(attributes.get("value") or "")


def _forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def provider_sign_in(authorize_url: str, email: str) -> str:
    """As a person in a browser: open ``authorize_url`` at the provider, sign in as ``email``, grant consent.

    :returns: the redirect back to the client (its callback URL with ``code`` and ``state``).
    """
    session = requests.Session()
    page = session.get(authorize_url, timeout=10)
    login = next(form for form in _forms(page.text) if "login" in form["fields"])
    fields = {**login["fields"], "login": [email], "password": [PASSWORD]}
    page = session.post(urljoin(page.url, login["action"] or page.url), data=fields, timeout=10,
                        headers={"Referer": page.url}, allow_redirects=False)
    while page.is_redirect:
        location = urljoin(page.url, page.headers["Location"])
        if location.startswith("http://testserver"):
            return location
        page = session.get(location, timeout=10, allow_redirects=False)
    consent = next(form for form in _forms(page.text) if "request" in form["fields"])
    answer = session.post(urljoin(page.url, consent["action"] or page.url), data={**consent["fields"], "action": ["grant"]},
                          headers={"Referer": page.url}, timeout=10, allow_redirects=False)
    assert answer.is_redirect, answer.text[:2000]
    return urljoin(answer.url, answer.headers["Location"])
