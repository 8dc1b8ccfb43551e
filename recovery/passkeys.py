"""WebAuthn ceremonies of recovery over the one credential store (allauth's ``mfa.Authenticator`` rows), with
the rules of :mod:`accounts.passkeys` (its :func:`~accounts.passkeys.get_server`: exact origins, RP ID from
settings, UV required, ES256 only, expiring challenges; and its signature counter,
:func:`~accounts.passkeys.sign_count_advance`).

Unlike sign-in, these assertions are *bound to what they approve*: the challenge is a digest computed by
the server (:mod:`recovery.digests`), not a random nonce kept in a session, so a guardian's approval is a
signature over exactly one recovery request and can be checked again later (and by the program's secp256r1
check once the on-chain instructions land).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allauth.mfa.models import Authenticator
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fido2.cose import ES256
from fido2.utils import websafe_encode
from fido2.webauthn import AttestedCredentialData, AuthenticationResponse, PublicKeyCredentialUserEntity

from accounts.passkeys import get_server, record_registration, sign_count_advance
from numpay.core.errors import ApplicationError


@dataclass(frozen=True)
class VerifiedAssertion:
    """A verified assertion: the passkey that made it and the raw parts (kept for the on-chain check)."""

    authenticator: Authenticator
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes


def request_options(*, user: Any, challenge: bytes) -> dict[str, Any]:
    """``navigator.credentials.get()`` options (JSON form) asking ``user``'s passkeys to sign ``challenge``.

    :param challenge: the digest to sign (32 bytes).
    :raises ApplicationError: ``passkey_required`` (the user has no passkey).
    """
    credentials = _credentials(user)
    options, _state = get_server().authenticate_begin(credentials=credentials, challenge=challenge)
    return dict(options)


def assertion_verify(*, user: Any, challenge: bytes, credential: Any) -> VerifiedAssertion:
    """Verify a WebAuthn assertion by one of ``user``'s passkeys over ``challenge`` (WebAuthn Level 3, 7.2:
    challenge, origin, RP ID hash, UP and UV flags, ES256 signature), then advance its signature counter.

    :param credential: the ``PublicKeyCredential.toJSON()`` of the assertion.
    :raises ApplicationError: ``passkey_required`` (no passkey), ``passkey_assertion_invalid`` (anything
        else: wrong challenge, origin, RP, key, flags, or a counter that did not grow); nothing is changed.
    """
    credentials = _credentials(user)
    server = get_server()
    _options, state = server.authenticate_begin(credentials=credentials, challenge=challenge)
    try:
        binding = server.authenticate_complete(state, credentials, credential)
        response = AuthenticationResponse.from_dict(credential).response
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ApplicationError("passkey_assertion_invalid") from error
    authenticator = _authenticator_of(user, bytes(binding.credential_id))
    if authenticator is None:
        raise ApplicationError("passkey_assertion_invalid")
    data = response.authenticator_data
    try:
        sign_count_advance(authenticator=authenticator, counter=data.counter, backed_up=data.is_backed_up())
    except ValueError as error:
        raise ApplicationError("passkey_assertion_invalid") from error
    authenticator.record_usage()
    return VerifiedAssertion(authenticator=authenticator, authenticator_data=bytes(data),
                             client_data_json=bytes(response.client_data), signature=bytes(response.signature))


def registration_begin(*, user: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Creation options for a new passkey of ``user`` (held pending until a recovery executes) and the
    ceremony state to keep server-side.

    The user handle is allauth's, so that once installed the passkey signs in like any other.

    :returns: ``(options in JSON form, state)``.
    """
    from allauth.mfa.webauthn.internal.auth import build_user_payload

    entity: PublicKeyCredentialUserEntity = build_user_payload(user)
    options, state = get_server().register_begin(entity, credentials=[])
    return dict(options), {key: str(value) if not isinstance(value, (int, float)) else value
                           for key, value in state.items()}


def registration_complete(*, state: dict[str, Any], credential: Any) -> bytes:
    """Verify a registration response (WebAuthn Level 3, 7.1) against ``state``.

    :returns: the new passkey's compressed P-256 public key (33 bytes).
    :raises ApplicationError: ``passkey_registration_invalid``.
    """
    try:
        data = get_server().register_complete(state, credential)
        return compressed_key(data.credential_data)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ApplicationError("passkey_registration_invalid") from error


def compressed_key(credential_data: AttestedCredentialData) -> bytes:
    """The 33-byte compressed P-256 key of an ES256 credential (what the secp256r1 precompile takes).

    :raises ValueError: not an ES256 key.
    """
    cose = credential_data.public_key
    if not isinstance(cose, ES256) or cose.get(-1) != 1:
        raise ValueError("Not an ES256 (P-256) passkey.")
    numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(cose[-2], "big"), int.from_bytes(cose[-3], "big"),
                                            ec.SECP256R1())
    return numbers.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def passkey_install(*, user: Any, credential: dict[str, Any], name: str) -> Authenticator:
    """Store a verified registration response as ``user``'s passkey (allauth's form) with its counter."""
    from allauth.mfa.webauthn.internal.auth import WebAuthn

    authenticator = WebAuthn.add(user, name, credential).instance
    record_registration(authenticator=authenticator)
    return authenticator


def authenticator_key(authenticator: Authenticator) -> bytes:
    """The compressed P-256 key (33 bytes) of a stored passkey."""
    return compressed_key(authenticator.wrap().authenticator_data.credential_data)


def credential_id_text(authenticator: Authenticator) -> str:
    """The credential id, base64url (for pages)."""
    return websafe_encode(authenticator.wrap().authenticator_data.credential_data.credential_id)


def _credentials(user: Any) -> list[AttestedCredentialData]:
    rows = Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN)
    credentials = [row.wrap().authenticator_data.credential_data for row in rows]
    if not credentials:
        raise ApplicationError("passkey_required")
    return credentials


def _authenticator_of(user: Any, credential_id: bytes) -> Authenticator | None:
    for row in Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN):
        if bytes(row.wrap().authenticator_data.credential_data.credential_id) == credential_id:
            return row
    return None
