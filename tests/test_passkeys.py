"""Passkeys through allauth's headless API with a software authenticator making real WebAuthn responses:
register several, rename, remove, sign in with one; the public key for later verifications; the rules of
accounts/passkeys.py (exact origin, RP ID, single-use expiring challenge, UV, sign count), each attack refused
with nothing changed; the relying party's system check."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.webauthn.internal import auth as allauth_webauthn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.cache import cache

from accounts import checks, passkeys
from accounts.models import PasskeyState
from accounts.selectors import can_remove_sign_in_method, passkey_cose_public_key, passkey_public_key
from accounts.selectors import passkeys as passkeys_of
from tests.webauthn_support import BS, UP, UV, SoftAuthenticator, b64u, unb64u

API = "/_allauth/browser/v1"
PASSWORD = "pw-Numpay-1"  # noqa: S105 - the make_user fixture's password
JSON = "application/json"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


def _sign_in_with_password(client: Any, email: str) -> None:
    assert client.post(f"{API}/auth/login", {"email": email, "password": PASSWORD}, content_type=JSON).status_code == 200
    assert client.post(f"{API}/auth/reauthenticate", {"password": PASSWORD}, content_type=JSON).status_code == 200


def _register(client: Any, soft: SoftAuthenticator, name: str, **tamper: Any) -> Any:
    options = client.get(f"{API}/account/authenticators/webauthn?passwordless").json()["data"]["creation_options"]
    return client.post(f"{API}/account/authenticators/webauthn",
                       {"name": name, "credential": soft.create(options["publicKey"], **tamper)}, content_type=JSON)


def _login_options(client: Any) -> dict[str, Any]:
    return client.get(f"{API}/auth/webauthn/login").json()["data"]["request_options"]["publicKey"]


def _login(client: Any, credential: dict[str, Any]) -> Any:
    return client.post(f"{API}/auth/webauthn/login", {"credential": credential}, content_type=JSON)


def _signed_in(client: Any) -> bool:
    return client.get(f"{API}/auth/session").status_code == 200


@pytest.fixture
def registered(client: Any, make_user: Any) -> tuple[Any, SoftAuthenticator, Authenticator]:
    """A user with one passkey (counter 5 at registration), signed out."""
    user = make_user(email="ada@example.com")
    EmailAddress.objects.create(user=user, email="ada@example.com", primary=True, verified=True)
    _sign_in_with_password(client, "ada@example.com")
    soft = SoftAuthenticator(counter=5)
    assert _register(client, soft, "Laptop").status_code == 200
    client.delete(f"{API}/auth/session")
    return user, soft, Authenticator.objects.get(user=user)


def _assert_unchanged(client: Any, authenticator: Authenticator, sign_count: int) -> None:
    assert not _signed_in(client)
    authenticator.refresh_from_db()
    assert authenticator.last_used_at is None
    assert PasskeyState.objects.get(authenticator=authenticator).sign_count == sign_count


# --- registering, listing, renaming, removing ---


@pytest.mark.django_db
def test_register_two_passkeys_then_rename_and_remove_one(client, make_user) -> None:
    # given a signed-in user who re-entered their password
    user = make_user(email="ada@example.com")
    _sign_in_with_password(client, "ada@example.com")
    laptop, phone = SoftAuthenticator(counter=3), SoftAuthenticator()
    # when they register two passkeys
    assert _register(client, laptop, "Laptop").status_code == 200
    assert _register(client, phone, "Phone", flags=UP | UV | 0x40 | 0x08 | BS).status_code == 200
    # then both are listed with what the account page shows
    listed = passkeys_of(user=user)
    assert [(p.name, p.credential_id, p.sign_count, p.transports, p.backed_up, p.last_used_at) for p in listed] == [
        ("Laptop", laptop.credential_id, 3, ("internal", "hybrid"), False, None),
        ("Phone", phone.credential_id, 0, ("internal", "hybrid"), True, None)]
    # when one is renamed, then the other removed
    first, second = listed
    response = client.put(f"{API}/account/authenticators/webauthn", {"id": first.id, "name": "Work laptop"},
                          content_type=JSON)
    assert response.status_code == 200
    response = client.delete(f"{API}/account/authenticators/webauthn", {"authenticators": [second.id]},
                             content_type=JSON)
    assert response.status_code == 200
    # then one passkey remains, renamed, and its state row went with the removed one
    assert [p.name for p in passkeys_of(user=user)] == ["Work laptop"]
    assert list(PasskeyState.objects.values_list("authenticator_id", flat=True)) == [first.id]


@pytest.mark.django_db
def test_registration_without_user_verification_is_refused_and_stores_nothing(client, make_user) -> None:
    make_user(email="ada@example.com")
    _sign_in_with_password(client, "ada@example.com")
    response = _register(client, SoftAuthenticator(), "Laptop", flags=UP | 0x40)
    assert response.status_code == 400
    assert Authenticator.objects.count() == 0
    assert PasskeyState.objects.count() == 0


@pytest.mark.django_db
def test_registration_from_another_origin_is_refused_and_stores_nothing(client, make_user) -> None:
    make_user(email="ada@example.com")
    _sign_in_with_password(client, "ada@example.com")
    response = _register(client, SoftAuthenticator(), "Laptop", origin="https://evil.example")
    assert response.status_code == 400
    assert Authenticator.objects.count() == 0


@pytest.mark.django_db
def test_a_passkey_never_replaces_the_last_email_but_can_always_be_removed(registered) -> None:
    user, _, authenticator = registered
    email = EmailAddress.objects.get(user=user)
    # the email stays the way back in (a lost device must not lock the wallet's owner out)
    assert can_remove_sign_in_method(user=user, kind="email", key=str(email.pk)) is False
    assert can_remove_sign_in_method(user=user, kind="passkey", key=str(authenticator.pk)) is True


# --- signing in ---


@pytest.mark.django_db
def test_sign_in_with_a_passkey_records_use_and_counter(client, registered) -> None:
    user, soft, authenticator = registered
    # when the passkey signs the server's challenge (discoverable: no user named first)
    options = _login_options(client)
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    response = _login(client, soft.get(options))
    # then the user is signed in, and the passkey's counter and last use are recorded
    assert response.status_code == 200
    assert response.json()["data"]["user"]["id"] == user.pk
    assert _signed_in(client)
    authenticator.refresh_from_db()
    assert authenticator.last_used_at is not None
    assert PasskeyState.objects.get(authenticator=authenticator).sign_count == 6


@pytest.mark.django_db
def test_a_password_sign_in_is_not_asked_for_the_passkey(client, registered) -> None:
    # a passkey is a way in, not a second factor
    assert client.post(f"{API}/auth/login", {"email": "ada@example.com", "password": PASSWORD},
                       content_type=JSON).status_code == 200
    assert _signed_in(client)


@pytest.mark.django_db
def test_the_public_key_verifies_a_real_assertion(client, registered) -> None:
    # given the stored credential's public key (for payment step-up and the secp256r1 precompile)
    _, soft, authenticator = registered
    key = passkey_public_key(authenticator=authenticator)
    # then it is the authenticator's P-256 key, in the precompile's 33-byte compressed form too
    expected = soft.key.public_key()
    assert key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint) == \
        expected.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    # and it verifies an assertion signed over authenticatorData || SHA-256(clientDataJSON)
    assertion = soft.get({"challenge": b64u(b"\1" * 32)})
    data = unb64u(assertion["response"]["authenticatorData"])
    client_hash = hashlib.sha256(unb64u(assertion["response"]["clientDataJSON"])).digest()
    key.verify(unb64u(assertion["response"]["signature"]), data + client_hash, ec.ECDSA(hashes.SHA256()))


@pytest.mark.django_db
def test_py_webauthn_verifies_an_assertion_with_the_same_stored_credential(registered) -> None:
    # given the stored credential (no second store): what a payment step-up with py_webauthn will use
    from webauthn import verify_authentication_response

    _, soft, authenticator = registered
    challenge = b"\2" * 32
    assertion = soft.get({"challenge": b64u(challenge)})
    # when py_webauthn checks an assertion against the stored COSE key and sign count
    verified = verify_authentication_response(
        credential=assertion, expected_challenge=challenge, expected_rp_id="localhost",
        expected_origin="http://localhost:8000", credential_public_key=passkey_cose_public_key(
            authenticator=authenticator),
        credential_current_sign_count=PasskeyState.objects.get(authenticator=authenticator).sign_count,
        require_user_verification=True)
    # then it verifies, for this credential, with the next counter
    assert verified.credential_id == soft.credential_id
    assert verified.new_sign_count == 6


# --- attacks: each refused, nothing changed ---


@pytest.mark.django_db
def test_assertion_for_another_origin_is_refused(client, registered) -> None:
    _, soft, authenticator = registered
    response = _login(client, soft.get(_login_options(client), origin="https://evil.example"))
    assert response.status_code == 400
    _assert_unchanged(client, authenticator, 5)


@pytest.mark.django_db
def test_assertion_for_a_subdomain_origin_not_allowed_is_refused(client, registered) -> None:
    _, soft, authenticator = registered
    response = _login(client, soft.get(_login_options(client), origin="http://evil.localhost:8000"))
    assert response.status_code == 400
    _assert_unchanged(client, authenticator, 5)


@pytest.mark.django_db
def test_assertion_for_another_rp_id_is_refused(client, registered) -> None:
    _, soft, authenticator = registered
    response = _login(client, soft.get(_login_options(client), rp_id="evil.example"))
    assert response.status_code == 400
    _assert_unchanged(client, authenticator, 5)


@pytest.mark.django_db
def test_assertion_without_user_verification_is_refused(client, registered) -> None:
    _, soft, authenticator = registered
    response = _login(client, soft.get(_login_options(client), flags=UP))
    assert response.status_code == 400
    _assert_unchanged(client, authenticator, 5)


@pytest.mark.django_db
def test_sign_count_regression_is_refused(client, registered) -> None:
    _, soft, authenticator = registered
    soft.counter = 3  # a clone that is behind the stored 5
    response = _login(client, soft.get(_login_options(client)))
    assert response.status_code == 400
    _assert_unchanged(client, authenticator, 5)


@pytest.mark.django_db
def test_sign_count_equal_to_the_stored_one_is_refused(client, registered) -> None:
    _, soft, authenticator = registered
    response = _login(client, soft.get(_login_options(client), advance=False))
    assert response.status_code == 400
    _assert_unchanged(client, authenticator, 5)


@pytest.mark.django_db
def test_expired_challenge_is_refused(client, registered, settings) -> None:
    _, soft, authenticator = registered
    options = _login_options(client)
    session = client.session
    state = session[allauth_webauthn.STATE_SESSION_KEY]
    state[passkeys.ISSUED_AT] -= settings.WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS + 1  # time passes
    session[allauth_webauthn.STATE_SESSION_KEY] = state
    session.save()
    response = _login(client, soft.get(options))
    assert response.status_code == 400
    _assert_unchanged(client, authenticator, 5)


@pytest.mark.django_db
def test_replayed_assertion_is_refused(client, registered) -> None:
    # given an assertion that signed the user in once, captured
    _, soft, authenticator = registered
    captured = soft.get(_login_options(client))
    assert _login(client, captured).status_code == 200
    client.delete(f"{API}/auth/session")
    last_used = Authenticator.objects.get(pk=authenticator.pk).last_used_at
    # when it is sent again against a new challenge
    _login_options(client)
    response = _login(client, captured)
    # then it is refused and nothing moves
    assert response.status_code == 400
    assert not _signed_in(client)
    assert Authenticator.objects.get(pk=authenticator.pk).last_used_at == last_used
    assert PasskeyState.objects.get(authenticator=authenticator).sign_count == 6


@pytest.mark.django_db
def test_reused_challenge_is_refused(client, registered) -> None:
    # given a challenge already answered once
    _, soft, authenticator = registered
    options = _login_options(client)
    assert _login(client, soft.get(options)).status_code == 200
    last_used = Authenticator.objects.get(pk=authenticator.pk).last_used_at
    # when a new, well-signed assertion (counter 7) answers the same challenge again
    response = _login(client, soft.get(options))
    # then it is refused (the challenge was single use) and the passkey keeps its first answer's state
    assert response.status_code == 400
    assert Authenticator.objects.get(pk=authenticator.pk).last_used_at == last_used
    assert PasskeyState.objects.get(authenticator=authenticator).sign_count == 6


@pytest.mark.django_db
def test_assertion_by_an_unknown_credential_is_refused(client, registered) -> None:
    _, soft, authenticator = registered
    stranger = SoftAuthenticator()
    stranger.user_handle = soft.user_handle  # claims to be the same user, with another key
    response = _login(client, stranger.get(_login_options(client)))
    assert response.status_code == 400
    _assert_unchanged(client, authenticator, 5)


# --- wiring and configuration ---


def test_allauth_webauthn_ceremonies_go_through_numpays_rules() -> None:
    # fails if an allauth upgrade renames what accounts.passkeys.install replaces
    assert allauth_webauthn.get_server is passkeys.get_server
    assert getattr(allauth_webauthn.complete_authentication, "numpay", False) is True


@pytest.mark.parametrize(("rp_id", "origins", "ids"), [
    ("localhost", ["http://localhost:8000"], []),
    ("numpay.example", ["https://numpay.example", "https://app.numpay.example:8443"], []),
    ("numpay.example", ["http://numpay.example"], ["accounts.E006"]),
    ("numpay.example", ["https://numpay.example.evil"], ["accounts.E006"]),
    ("numpay.example", ["https://numpay.example/path"], ["accounts.E006"]),
    ("numpay.example", [], ["accounts.E005"]),
    ("https://numpay.example", ["https://numpay.example"], ["accounts.E004"]),
])
def test_relying_party_check(settings, rp_id: str, origins: list[str], ids: list[str]) -> None:
    settings.WEBAUTHN_RP_ID, settings.WEBAUTHN_ALLOWED_ORIGINS = rp_id, origins
    assert [message.id for message in checks.webauthn_relying_party(None)] == ids


def test_relying_party_check_refuses_localhost_on_a_real_cluster(settings) -> None:
    settings.SOLANA_CLUSTER, settings.DEBUG = "devnet", False
    settings.WEBAUTHN_RP_ID, settings.WEBAUTHN_ALLOWED_ORIGINS = "localhost", ["http://localhost:8000"]
    assert [message.id for message in checks.webauthn_relying_party(None)] == ["accounts.E007"]


# --- the account page ---


@pytest.mark.django_db
def test_the_account_page_lists_renames_and_removes_passkeys(client, make_user) -> None:
    # given a user with a confirmed email and two passkeys
    user = make_user(email="ada@example.com")
    EmailAddress.objects.create(user=user, email="ada@example.com", primary=True, verified=True)
    _sign_in_with_password(client, "ada@example.com")
    assert _register(client, SoftAuthenticator(), "Laptop").status_code == 200
    assert _register(client, SoftAuthenticator(), "Phone").status_code == 200
    laptop, phone = passkeys_of(user=user)
    # then the account page lists both
    page = client.get("/accounts/methods/").content.decode()
    assert page.count('data-testid="passkey-row"') == 2
    # when one is renamed and the other removed from the page
    assert client.post(f"/accounts/methods/passkeys/{laptop.id}/rename/", {"name": "Work laptop"}).status_code == 302
    assert client.post(f"/accounts/methods/passkeys/{phone.id}/remove/").status_code == 302
    # then
    assert [p.name for p in passkeys_of(user=user)] == ["Work laptop"]


@pytest.mark.django_db
def test_another_users_passkey_cannot_be_renamed_or_removed(client, registered, make_user) -> None:
    _, _, authenticator = registered
    make_user(email="eve@example.com")
    _sign_in_with_password(client, "eve@example.com")
    assert client.post(f"/accounts/methods/passkeys/{authenticator.pk}/rename/", {"name": "x"}).status_code == 404
    assert client.post(f"/accounts/methods/passkeys/{authenticator.pk}/remove/").status_code == 404
    assert [p.name for p in passkeys_of(user=authenticator.user)] == ["Laptop"]
