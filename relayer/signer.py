"""The relayer fee payer's signer (DESIGN.md "Fee sponsorship").

In development and tests the fee payer is an in-memory keypair read from ``RELAYER_FEE_PAYER_KEYPAIR``
(a JSON array of 64 bytes, the ``solana-keygen`` file format) or from the file at
``RELAYER_FEE_PAYER_KEYPAIR_PATH``. In production, put the key in a KMS or Vault and implement
:class:`FeePayerSigner` over ``solana-keychain`` (its signer objects expose ``pubkey`` and
``sign_message``), selected by ``RELAYER_SIGNER_CLASS``; the key never has to touch this process.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from relayer.app_settings import app_settings


class FeePayerSigner(Protocol):
    """Signs messages as the transaction fee payer."""

    def pubkey(self) -> Pubkey:
        """The fee payer's address."""
        ...

    def sign_message(self, message: bytes) -> Signature:
        """Ed25519 signature over a serialized message."""
        ...


def load_keypair_file(path: str | Path) -> Keypair:
    """Read a ``solana-keygen`` JSON keypair file (64 integers).

    :raises ImproperlyConfigured: missing or malformed file (the message never includes key bytes).
    """
    try:
        raw = json.loads(Path(path).read_text())
        return Keypair.from_bytes(bytes(raw))
    except (OSError, ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"Cannot read a keypair from {path}") from exc


def write_keypair_file(path: str | Path, keypair: Keypair) -> None:
    """Write ``keypair`` as a ``solana-keygen`` JSON file readable only by its owner (0600)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(list(bytes(keypair)), handle)


@functools.lru_cache(maxsize=4)
def _fee_payer(inline: str, path: str) -> Keypair:
    if inline:
        try:
            return Keypair.from_bytes(bytes(json.loads(inline)))
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured("RELAYER_FEE_PAYER_KEYPAIR is not a JSON array of 64 bytes") from exc
    return load_keypair_file(path)


@functools.lru_cache(maxsize=4)
def _external_signer(path: str) -> FeePayerSigner:
    return import_string(path)()


def get_fee_payer() -> FeePayerSigner:
    """The configured fee payer signer.

    ``RELAYER_SIGNER_CLASS`` (a dotted path to a zero-argument class implementing :class:`FeePayerSigner`,
    e.g. a wrapper over a ``solana-keychain`` KMS/Vault signer) wins; otherwise the in-memory keypair from
    ``RELAYER_FEE_PAYER_KEYPAIR`` or ``RELAYER_FEE_PAYER_KEYPAIR_PATH`` (a solders ``Keypair`` satisfies
    the protocol).

    :raises ImproperlyConfigured: no usable key.
    """
    if app_settings.SIGNER_CLASS:
        return _external_signer(app_settings.SIGNER_CLASS)
    return _fee_payer(app_settings.FEE_PAYER_KEYPAIR, app_settings.FEE_PAYER_KEYPAIR_PATH)
