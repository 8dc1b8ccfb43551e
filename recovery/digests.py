"""What passkeys sign in recovery: SHA-256 digests of exactly what is approved (DESIGN.md "Passkeys,
policies, recovery, sessions": "a step-up challenge is a digest of exactly what is approved").

Each digest starts with a domain tag so that a signature for one purpose is never valid for another. A
recovery request's digest names the wallet (its config address, or its address for a keypair wallet), the
request id, the new owner key and the request's expiry: a guardian's approval cannot be moved to another
request, wallet or key. When the program's recovery instructions land, :func:`approval_challenge` becomes
the program's ``approval_challenge`` (wallets/program/approvals.py) over the same facts.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from typing import Any


def _digest(tag: bytes, *parts: bytes) -> bytes:
    hasher = hashlib.sha256(tag)
    for part in parts:
        hasher.update(struct.pack("<I", len(part)))
        hasher.update(part)
    return hasher.digest()


def request_digest(*, wallet_key: str, request_id: uuid.UUID, new_owner_key: bytes, expires_at: int) -> bytes:
    """The 32-byte digest of a recovery request.

    :param wallet_key: the wallet's config address (base58), or its address for a keypair wallet.
    :param new_owner_key: the pending passkey's compressed P-256 key (33 bytes).
    :param expires_at: the request's expiry, unix seconds.
    """
    return _digest(b"numpay/recovery/request/v1", wallet_key.encode(), request_id.bytes, new_owner_key,
                   struct.pack("<q", expires_at))


def approval_challenge(request: Any) -> bytes:
    """What a guardian's passkey signs to approve ``request`` (a :class:`~recovery.models.RecoveryRequest`):
    for a smart wallet the program's approval challenge of its ``recovery_start``
    (:func:`recovery.chain.start_challenge`), so the same assertion is checked on-chain; for a keypair wallet
    (nothing on-chain) a digest of the request."""
    if request.chain_nonce is not None:
        from .chain import start_challenge

        return start_challenge(request)
    return _digest(b"numpay/recovery/approve/v1", bytes.fromhex(request.digest))


def cancel_challenge(request: Any) -> bytes:
    """What the owner's passkey signs to cancel ``request``."""
    return _digest(b"numpay/recovery/cancel/v1", bytes.fromhex(request.digest))


def invitation_challenge(invitation_id: uuid.UUID) -> bytes:
    """What the invited guardian's passkey signs to accept invitation ``invitation_id``."""
    return _digest(b"numpay/recovery/guardian-accept/v1", invitation_id.bytes)


def guardian_change_challenge(*, owner_id: int, action: str, subject: str, nonce: str) -> bytes:
    """What the owner's passkey signs to change their guardians or recovery rules.

    :param action: ``add`` | ``remove`` | ``cancel`` | ``settings``.
    :param subject: the guardian id, or the canonical text of the new settings.
    :param nonce: a per-owner single-use nonce (:func:`recovery.services.guardians.owner_nonce`).
    """
    return _digest(b"numpay/recovery/guardian-change/v1", str(owner_id).encode(), action.encode(),
                   subject.encode(), nonce.encode())
