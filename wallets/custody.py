"""Custodial key custody: envelope encryption and the one signing entry point (DESIGN.md "Key custody").

- Each wallet's 32-byte Ed25519 seed is encrypted with a fresh 256-bit data key, AES-256-GCM (NIST SP
  800-38D), nonce 96 bits, AAD = ``numpay:wallet:<wallet id>:<address>`` so a ciphertext moved to another
  row fails to decrypt.
- The data key is wrapped by a key-encryption key (KEK) from a :class:`KeyEncryptionKeyProvider`, also
  AES-256-GCM with the same AAD plus the KEK id. KEKs carry ids, so ``rotate_kek`` re-wraps data keys
  under a new KEK while old ones still decrypt.
- :func:`sign` is the only place the plaintext seed exists, only in memory, only while signing.

All primitives come from ``cryptography`` and ``solders``; nothing is implemented here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.utils.module_loading import import_string
from solders.keypair import Keypair
from solders.signature import Signature

NONCE_BYTES = 12
KEY_BYTES = 32


class CustodyError(Exception):
    """Key material could not be used: unknown KEK id, wrong KEK, tampered ciphertext or AAD.

    Messages never contain key material.
    """


class KeyEncryptionKeyProvider(Protocol):
    """Wraps and unwraps data keys. Local keys in dev; a KMS (AWS/GCP/Vault transit) in production."""

    def current_key_id(self) -> str:
        """The KEK id new data keys are wrapped with."""
        ...

    def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` under the current KEK. :returns: ``(kek_id, wrapped bytes)``."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        """Unwrap with KEK ``kek_id``. :raises CustodyError: unknown id, wrong key or tampering."""
        ...


class LocalKeyEncryptionKeyProvider:
    """KEKs from settings: ``NUMPAY_KEKS = "id1:<base64 32 bytes>,id2:<...>"``, ``NUMPAY_KEK_CURRENT_ID``.

    :raises CustodyError: at construction if a key is not 32 bytes of base64 or the current id is missing.
    """

    def __init__(self, keks: str, current_id: str):
        self._keys: dict[str, bytes] = {}
        for item in filter(None, (part.strip() for part in keks.split(","))):
            key_id, _, encoded = item.partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error as exc:
                raise CustodyError(f"KEK {key_id!r} is not valid base64") from exc
            if len(key) != KEY_BYTES:
                raise CustodyError(f"KEK {key_id!r} must be {KEY_BYTES} bytes")
            self._keys[key_id] = key
        if current_id not in self._keys:
            raise CustodyError("NUMPAY_KEK_CURRENT_ID does not name a key in NUMPAY_KEKS")
        self._current_id = current_id

    def current_key_id(self) -> str:
        return self._current_id

    def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        aad = context + b"|kek:" + self._current_id.encode()
        return self._current_id, nonce + AESGCM(self._keys[self._current_id]).encrypt(nonce, data_key, aad)

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        key = self._keys.get(kek_id)
        if key is None:
            raise CustodyError(f"KEK {kek_id!r} is not configured")
        aad = context + b"|kek:" + kek_id.encode()
        try:
            return AESGCM(key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise CustodyError("The data key could not be unwrapped (wrong KEK or tampered envelope)") from exc


@functools.lru_cache(maxsize=4)
def _provider(path: str, keks: str, current_id: str) -> KeyEncryptionKeyProvider:
    cls = import_string(path)
    if cls is LocalKeyEncryptionKeyProvider:
        return cls(keks, current_id)
    return cls()


def get_kek_provider() -> KeyEncryptionKeyProvider:
    """The configured KEK provider (``NUMPAY_KEK_PROVIDER``), built once per configuration."""
    return _provider(settings.NUMPAY_KEK_PROVIDER, settings.NUMPAY_KEKS, settings.NUMPAY_KEK_CURRENT_ID)


def wallet_aad(*, wallet_id: object, address: str) -> bytes:
    """The associated data binding an envelope to its wallet row: ``numpay:wallet:<id>:<address>``."""
    return f"numpay:wallet:{wallet_id}:{address}".encode()


@dataclass(frozen=True)
class Envelope:
    """What is stored: seed ciphertext, wrapped data key, and the KEK id."""

    ciphertext: bytes
    wrapped_data_key: bytes
    kek_id: str


def new_keypair_envelope(*, wallet_id: object) -> tuple[str, Envelope]:
    """Generate an Ed25519 keypair for a wallet and seal its seed.

    :returns: ``(base58 address, envelope)``. The seed is not returned.
    """
    keypair = Keypair()
    address = str(keypair.pubkey())
    seed = bytes(keypair.secret())
    return address, seal_seed(wallet_id=wallet_id, address=address, seed=seed)


def seal_seed(*, wallet_id: object, address: str, seed: bytes) -> Envelope:
    """Encrypt a 32-byte seed under a fresh data key, wrapped by the current KEK."""
    aad = wallet_aad(wallet_id=wallet_id, address=address)
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = nonce + AESGCM(data_key).encrypt(nonce, seed, aad)
    kek_id, wrapped = get_kek_provider().wrap(data_key, context=aad)
    return Envelope(ciphertext=ciphertext, wrapped_data_key=wrapped, kek_id=kek_id)


def rewrap_data_key(*, wallet_id: object, address: str, kek_id: str, wrapped: bytes) -> tuple[str, bytes]:
    """Unwrap a data key with its old KEK and wrap it under the current one (the seed is not touched).

    :returns: ``(new kek_id, new wrapped data key)``.
    :raises CustodyError: the old KEK is unknown or the envelope was tampered with.
    """
    provider = get_kek_provider()
    aad = wallet_aad(wallet_id=wallet_id, address=address)
    data_key = provider.unwrap(kek_id, wrapped, context=aad)
    return provider.wrap(data_key, context=aad)


def sign(*, wallet_id: object, address: str, ciphertext: bytes, wrapped_data_key: bytes, kek_id: str,
         message: bytes) -> Signature:
    """Sign ``message`` (a serialized Solana message) with the wallet's key. The one signing entry point.

    :param message: bytes to sign, e.g. ``bytes(MessageV0)`` / ``to_bytes_versioned(message)``.
    :returns: the Ed25519 signature (64 bytes).
    :raises CustodyError: the envelope does not decrypt, or decrypts to a key for another address.
    """
    aad = wallet_aad(wallet_id=wallet_id, address=address)
    data_key = get_kek_provider().unwrap(kek_id, bytes(wrapped_data_key), context=aad)
    blob = bytes(ciphertext)
    try:
        seed = AESGCM(data_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise CustodyError("The wallet key could not be decrypted (tampered ciphertext or AAD)") from exc
    keypair = Keypair.from_seed(seed)
    del seed, data_key
    if str(keypair.pubkey()) != address:
        raise CustodyError("The decrypted key does not belong to this wallet")
    return keypair.sign_message(message)
