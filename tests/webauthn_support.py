"""A software WebAuthn authenticator (P-256, ``cryptography``) producing real registration and assertion
responses in the browser's JSON form (WebAuthn Level 3, ``PublicKeyCredential.toJSON()``), so server tests
can run the real ceremonies against allauth's headless API, and tamper with exactly one thing each."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """One passkey: a P-256 key pair, a credential id and a signature counter.

    :ivar counter: the signCount the next ceremony reports (incremented before each assertion).
    """

    def __init__(self, *, rp_id: str = "localhost", origin: str = "http://localhost:8000", counter: int = 0) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.rp_id, self.origin, self.counter = rp_id, origin, counter
        self.user_handle = b""

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def _auth_data(self, flags: int, rp_id: str | None, extra: bytes = b"") -> bytes:
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        return rp_hash + bytes([flags]) + struct.pack(">I", self.counter) + extra

    def create(self, options: dict[str, Any], *, flags: int = UP | UV | AT, origin: str | None = None,
               rp_id: str | None = None) -> dict[str, Any]:
        """The registration response to ``options`` (``publicKey`` creation options, JSON form)."""
        self.user_handle = unb64u(options["user"]["id"])
        attested = b"\0" * 16 + struct.pack(">H", len(self.credential_id)) + self.credential_id + self.cose_key()
        auth_data = self._auth_data(flags, rp_id, attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {"id": b64u(self.credential_id), "rawId": b64u(self.credential_id), "type": "public-key",
                "authenticatorAttachment": "platform",
                "response": {"clientDataJSON": b64u(self._client_data("webauthn.create", options["challenge"], origin)),
                             "attestationObject": b64u(attestation), "transports": ["internal", "hybrid"]},
                "clientExtensionResults": {"credProps": {"rk": True}}}

    def get(self, options: dict[str, Any], *, flags: int = UP | UV, origin: str | None = None,
            rp_id: str | None = None, advance: bool = True) -> dict[str, Any]:
        """A signed assertion for ``options`` (``publicKey`` request options, JSON form)."""
        if advance:
            self.counter += 1
        auth_data = self._auth_data(flags, rp_id)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": b64u(self.credential_id), "rawId": b64u(self.credential_id), "type": "public-key",
                "authenticatorAttachment": "platform",
                "response": {"clientDataJSON": b64u(client_data), "authenticatorData": b64u(auth_data),
                             "signature": b64u(signature), "userHandle": b64u(self.user_handle)},
                "clientExtensionResults": {}}
