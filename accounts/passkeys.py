"""Passkeys (WebAuthn): allauth's MFA WebAuthn support, held to Numpay's rules.

One credential store: allauth's ``mfa.Authenticator`` rows of type ``webauthn`` (the registration response as
allauth stores it) plus :class:`accounts.models.PasskeyState` (sign count, backed-up flag), keyed by that row.
allauth gives the pages, the headless API, passkey sign-in and sign-up; this module makes its ceremonies
follow WebAuthn Level 3 (https://www.w3.org/TR/webauthn-3/) as Numpay needs:

- the RP ID and the exact allowed origins come from settings (:mod:`accounts.app_settings`), never from
  the request's Host header (section 7.1 step 9 / 7.2 step 13, checked by :mod:`accounts.checks`);
- user verification is required in every ceremony (7.1 step 15 / 7.2 step 17);
- attestation conveyance is ``none`` and only ES256 (P-256) keys are accepted, so that a later payment
  step-up (py_webauthn or ``cryptography``) and the on-chain secp256r1 precompile can use the same key
  (:func:`accounts.selectors.passkey_public_key`);
- a challenge is single use (allauth drops it from the session once used) and expires after
  ``WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS``;
- a signature counter that does not grow is refused (7.2 step 22: "a signal that the authenticator may
  be cloned"), except for authenticators that never count (0 then 0, as synced passkeys do).

allauth builds its ``fido2`` server in ``allauth.mfa.webauthn.internal.auth.get_server`` and checks assertions
in ``complete_authentication``, used by its pages and its headless API alike; it has no adapter hook for
either, so :func:`install` (from ``AccountsConfig.ready``) points those two names at :func:`get_server` and
:func:`complete_authentication` below. ``tests/test_passkeys.py`` fails if allauth renames them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import transaction
from fido2.cose import ES256
from fido2.server import Fido2Server
from fido2.webauthn import (
    AttestationConveyancePreference,
    AttestedCredentialData,
    AuthenticationResponse,
    PublicKeyCredentialParameters,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialType,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .app_settings import app_settings

#: Key of the issue time (UNIX seconds) added to allauth's ceremony state in the session.
ISSUED_AT = "numpay_issued_at"


def origin_allowed(origin: str) -> bool:
    """Whether ``origin`` (``clientDataJSON.origin``) is exactly one of ``WEBAUTHN_ALLOWED_ORIGINS``."""
    return origin in app_settings.WEBAUTHN_ALLOWED_ORIGINS


def _check_fresh(state: Mapping[str, Any]) -> None:
    """:raises ValueError: the challenge was issued more than ``WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS`` ago."""
    issued_at = state.get(ISSUED_AT)
    if not isinstance(issued_at, (int, float)):
        raise ValueError("Challenge without issue time.")
    age = time.time() - issued_at
    if not 0 <= age <= app_settings.WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS:
        raise ValueError("Challenge expired.")


class NumpayFido2Server(Fido2Server):
    """``fido2``'s server with Numpay's rules: exact origins, UV required, no attestation, ES256 only,
    resident (discoverable) keys, expiring challenges. Every refusal is a ``ValueError`` (allauth answers it
    as its ``incorrect_code`` error, and nothing is stored)."""

    def __init__(self) -> None:
        super().__init__(
            PublicKeyCredentialRpEntity(id=app_settings.WEBAUTHN_RP_ID, name=app_settings.WEBAUTHN_RP_NAME),
            attestation=AttestationConveyancePreference.NONE,
            verify_origin=origin_allowed,
        )
        self.allowed_algorithms = [PublicKeyCredentialParameters(type=PublicKeyCredentialType.PUBLIC_KEY,
                                                                 alg=ES256.ALGORITHM)]
        self.timeout = app_settings.WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS * 1000

    def register_begin(self, user: Any, credentials: Any = None, resident_key_requirement: Any = None,
                       user_verification: Any = None, authenticator_attachment: Any = None,
                       challenge: bytes | None = None, extensions: Any = None) -> Any:
        options, state = super().register_begin(
            user, credentials, resident_key_requirement=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
            authenticator_attachment=authenticator_attachment, challenge=challenge, extensions=extensions)
        return options, {**state, ISSUED_AT: time.time()}

    def register_complete(self, state: Any, response: Any) -> Any:
        _check_fresh(state)
        return super().register_complete(state, response)

    def authenticate_begin(self, credentials: Any = None, user_verification: Any = None,
                           challenge: bytes | None = None, extensions: Any = None) -> Any:
        options, state = super().authenticate_begin(
            credentials, user_verification=UserVerificationRequirement.REQUIRED, challenge=challenge,
            extensions=extensions)
        return options, {**state, ISSUED_AT: time.time()}

    def authenticate_complete(self, state: Any, credentials: Sequence[AttestedCredentialData],
                              response: Any) -> AttestedCredentialData:
        _check_fresh(state)
        return super().authenticate_complete(state, credentials, response)


def get_server() -> Fido2Server:
    """The server of every WebAuthn ceremony (installed as allauth's ``get_server``)."""
    return NumpayFido2Server()


def sign_count_advance(*, authenticator: Any, counter: int, backed_up: bool) -> None:
    """Record the signature counter of a verified assertion by ``authenticator``.

    :param counter: ``authenticatorData.signCount`` of the assertion (unsigned 32-bit).
    :raises ValueError: the counter did not grow (WebAuthn Level 3, 7.2 step 22); nothing is changed.
    """
    from .models import PasskeyState

    with transaction.atomic():
        state, _ = PasskeyState.objects.select_for_update().get_or_create(authenticator=authenticator)
        if (counter or state.sign_count) and counter <= state.sign_count:
            raise ValueError("Signature counter did not grow: the authenticator may be cloned.")
        state.sign_count, state.backed_up = counter, backed_up
        state.save(update_fields=["sign_count", "backed_up"])


def _complete_authentication_with_counter(original: Callable[..., Any]) -> Callable[..., Any]:
    def complete_authentication(user: Any, response: dict) -> Any:
        """allauth's assertion check, then the signature counter (refused as allauth's ``incorrect_code``)."""
        from allauth.mfa.adapter import get_adapter

        authenticator = original(user, response)
        data = AuthenticationResponse.from_dict(response).response.authenticator_data
        try:
            sign_count_advance(authenticator=authenticator, counter=data.counter, backed_up=data.is_backed_up())
        except ValueError as error:
            raise get_adapter().validation_error("incorrect_code") from error
        return authenticator

    complete_authentication.numpay = True  # type: ignore[attr-defined]
    return complete_authentication


def record_registration(*, authenticator: Any) -> None:
    """Store the sign count and backed-up flag a new passkey registered with."""
    from .models import PasskeyState

    data = authenticator.wrap().authenticator_data
    PasskeyState.objects.update_or_create(authenticator=authenticator, defaults={
        "sign_count": data.counter, "backed_up": data.is_backed_up()})


def _on_authenticator_added(sender: Any, request: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    if authenticator.type == "webauthn":
        record_registration(authenticator=authenticator)


def install() -> None:
    """Make allauth's WebAuthn ceremonies use :func:`get_server` and check the signature counter."""
    from allauth.mfa import signals
    from allauth.mfa.webauthn.internal import auth

    auth.get_server = get_server
    if not getattr(auth.complete_authentication, "numpay", False):
        auth.complete_authentication = _complete_authentication_with_counter(auth.complete_authentication)
    signals.authenticator_added.connect(_on_authenticator_added, dispatch_uid="numpay_passkey_added")


# --- assertions outside allauth's sign-in: a payment's step-up (payments.approvals) ---


class AssertionRefused(ValueError):
    """A WebAuthn assertion was refused. :ivar reason: ``"invalid"`` (origin, RP ID, UP/UV, signature,
    type, challenge) or ``"sign_count"`` (the counter did not grow)."""

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


def passkey_for_credential(*, user: Any, credential_id: bytes) -> Any | None:
    """The ``mfa.Authenticator`` (type ``webauthn``) of ``user`` whose credential id is ``credential_id``,
    or ``None`` (another user's passkey, a removed one, or an unknown id)."""
    from allauth.mfa.models import Authenticator

    for authenticator in Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN):
        if bytes(authenticator.wrap().authenticator_data.credential_data.credential_id) == credential_id:
            return authenticator
    return None


def verify_assertion(*, authenticator: Any, credential: Mapping[str, Any], expected_challenge: bytes) -> int:
    """Verify a ``webauthn.get`` assertion by a stored passkey over ``expected_challenge`` and advance its
    signature counter (py_webauthn over the same stored credential: :func:`accounts.selectors.passkey_cose_public_key`).

    The rules of sign-in apply (WebAuthn Level 3, 7.2): ``clientDataJSON.type`` is ``webauthn.get``, its
    challenge is ``expected_challenge``, its origin one of ``WEBAUTHN_ALLOWED_ORIGINS``; the rpIdHash is
    SHA-256 of ``WEBAUTHN_RP_ID``; UP and UV are set; the ES256 signature verifies over
    ``authenticatorData || SHA-256(clientDataJSON)``; the counter grows (:func:`sign_count_advance`). Call
    inside the caller's transaction: the counter is written in it (rolled back with it).

    :param credential: the browser's ``PublicKeyCredential.toJSON()`` (base64url fields).
    :returns: the assertion's signature counter.
    :raises AssertionRefused: any check failed; the counter is unchanged.
    """
    from webauthn import verify_authentication_response
    from webauthn.helpers.exceptions import WebAuthnException

    from .selectors import passkey_cose_public_key

    try:
        verified = verify_authentication_response(
            credential=dict(credential), expected_challenge=expected_challenge,
            expected_rp_id=app_settings.WEBAUTHN_RP_ID, expected_origin=list(app_settings.WEBAUTHN_ALLOWED_ORIGINS),
            credential_public_key=passkey_cose_public_key(authenticator=authenticator),
            # the counter rule is sign_count_advance's (one place, under the state row's lock)
            credential_current_sign_count=0, require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise AssertionRefused(str(error)) from error
    backed_up = bool(getattr(verified, "credential_backed_up", False))
    try:
        sign_count_advance(authenticator=authenticator, counter=verified.new_sign_count, backed_up=backed_up)
    except ValueError as error:
        raise AssertionRefused(str(error), reason="sign_count") from error
    return verified.new_sign_count


def verify_payment_assertion(*, authenticator: Any, credential: Mapping[str, Any], expected_challenge: bytes,
                             expected_payment: Mapping[str, Any]) -> int:
    """Verify a Secure Payment Confirmation assertion (``clientDataJSON.type`` ``payment.get``; W3C Secure
    Payment Confirmation, "Verifying an Authentication Assertion") and advance the passkey's counter.

    py_webauthn refuses that type, so the checks are made here with ``cryptography``, as WebAuthn Level 3
    7.2 lists them plus SPC's: the type; the challenge; the origin one of ``WEBAUTHN_ALLOWED_ORIGINS``, not
    cross-origin; ``payment.rpId`` and the rpIdHash are ``WEBAUTHN_RP_ID``; ``payment.topOrigin`` allowed;
    the payee and the total the browser showed (``payment.payeeName``, ``payment.payeeOrigin``,
    ``payment.total``) and the instrument's ``displayName`` exactly ``expected_payment``'s; UP and UV set;
    the ES256 signature over ``authenticatorData || SHA-256(clientDataJSON)``; the counter grows.

    :param expected_payment: ``{"payeeName", "payeeOrigin", "total": {"currency", "value"},
        "instrument": {"displayName"}}`` as the server put them in the request options.
    :returns: the assertion's signature counter.
    :raises AssertionRefused: any check failed; the counter is unchanged.
    """
    import base64
    import hashlib
    import json

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from .selectors import passkey_public_key

    def unb64u(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    try:
        response = credential["response"]
        client_data_json = unb64u(response["clientDataJSON"])
        authenticator_data = unb64u(response["authenticatorData"])
        signature = unb64u(response["signature"])
        client_data = json.loads(client_data_json)
        payment = client_data["payment"]
        checks = {
            "type": client_data.get("type") == "payment.get",
            "challenge": unb64u(client_data["challenge"]) == expected_challenge,
            "origin": origin_allowed(client_data.get("origin", "")) and not client_data.get("crossOrigin", False),
            "rp id": payment.get("rpId") == app_settings.WEBAUTHN_RP_ID,
            "top origin": origin_allowed(payment.get("topOrigin", "")),
            "payee": payment.get("payeeName") == expected_payment["payeeName"]
            and payment.get("payeeOrigin") == expected_payment["payeeOrigin"],
            "total": payment.get("total") == dict(expected_payment["total"]),
            "instrument": (payment.get("instrument") or {}).get("displayName")
            == expected_payment["instrument"]["displayName"],
            "rp id hash": authenticator_data[:32] == hashlib.sha256(app_settings.WEBAUTHN_RP_ID.encode()).digest(),
            "user present and verified": len(authenticator_data) >= 37 and authenticator_data[32] & 0x05 == 0x05,
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise AssertionRefused(f"Not a payment assertion: {error}") from error
    failed = [name for name, passed in checks.items() if not passed]
    if failed:
        raise AssertionRefused(f"Payment assertion refused: {', '.join(failed)}.")
    try:
        passkey_public_key(authenticator=authenticator).verify(
            signature, authenticator_data + hashlib.sha256(client_data_json).digest(), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as error:
        raise AssertionRefused("The payment assertion's signature does not verify.") from error
    counter = int.from_bytes(authenticator_data[33:37], "big")
    try:
        sign_count_advance(authenticator=authenticator, counter=counter,
                           backed_up=bool(authenticator_data[32] & 0x10))
    except ValueError as error:
        raise AssertionRefused(str(error), reason="sign_count") from error
    return counter
