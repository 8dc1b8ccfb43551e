"""Decoding of the wallet config account (``docs/wallet-program.md``, "Config account")."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.pubkey import Pubkey

DISCRIMINATOR = b"NPWALLET"
VERSION = 1
HEADER_LEN = 96
AUTHORITY_LEN = 80
LIMIT_LEN = 80
MAX_AUTHORITIES = 8
MAX_LIMITS = 16
EXTENSION_LEN = 256
AUTHORITIES_AT = HEADER_LEN
LIMITS_AT = AUTHORITIES_AT + MAX_AUTHORITIES * AUTHORITY_LEN
EXTENSION_AT = LIMITS_AT + MAX_LIMITS * LIMIT_LEN
CONFIG_LEN = EXTENSION_AT + EXTENSION_LEN
RP_ID_HASH_AT = EXTENSION_AT
RECOVERY_AT = EXTENSION_AT + 32
GUARDIAN_CHANGE_AT = RECOVERY_AT + 64
KIND_ED25519 = 1
KIND_SECP256R1 = 2


class P256Key(bytes):
    """A passkey authority's 33-byte compressed P-256 public key; ``str()`` is its hex form (for
    display next to base58 Ed25519 keys). Equal to the plain ``bytes`` of the key."""

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"P256Key({self.hex()})"


@dataclass(frozen=True)
class AuthorityEntry:
    """An authority slot in use: ``slot`` is its index in the table (0..7); ``key`` is a ``Pubkey``
    for kind 1 (Ed25519) and the 33-byte compressed P-256 key (``P256Key``, a ``bytes``) for kind 2 (passkey)."""

    slot: int
    kind: int
    permissions: int
    key: Pubkey | bytes
    expires_at: int


@dataclass(frozen=True)
class LimitEntry:
    """A limit slot in use: caps and the spent counter of one authority for one mint (base units).

    ``period_start`` is unix seconds; the counter restarts when a whole period has passed
    (the program rolls it at the next spend; ``spent_at`` shows the effective value at a time).
    """

    index: int
    authority: Pubkey | bytes
    mint: Pubkey
    per_transaction_cap: int
    period_cap: int
    period_seconds: int
    period_start: int
    spent: int

    def spent_at(self, now: int) -> int:
        """What counts as spent at unix time ``now`` (0 once the period has rolled over)."""
        return 0 if now - self.period_start >= self.period_seconds else self.spent


@dataclass(frozen=True)
class WalletConfig:
    """A decoded config.

    ``nonce`` counts passkey-approved actions (it is part of every approval challenge);
    ``rp_id_hash`` is the SHA-256 of the WebAuthn RP ID passkey approvals must carry (32 zero
    bytes = not set); ``joint_threshold`` the distinct ``manage`` passkeys whose joint approval of
    an ``execute`` lifts the limits (0 = off); ``guardian_threshold`` and ``recovery_timelock``
    (seconds) the recovery settings; ``guardian_change_delay`` (seconds) the wait between a
    ``guardians_propose`` and its ``guardians_apply``; ``guardian_change_pending``,
    ``guardian_change_effective_at`` (unix seconds) and ``guardian_change_hash`` (SHA-256 of the
    proposed body, ``None`` without a proposal) the pending guardian change.
    """

    version: int
    config_bump: int
    vault_bump: int
    creator: Pubkey
    nonce: int
    authorities: tuple[AuthorityEntry, ...]
    limits: tuple[LimitEntry, ...]
    joint_threshold: int = 0
    guardian_threshold: int = 0
    recovery_timelock: int = 0
    rp_id_hash: bytes = bytes(32)
    recovery_id: int = 0
    recovery_pending: bool = False
    recovery_approvals: int = 0
    recovery_new_owner: bytes | None = None
    recovery_executes_at: int = 0
    guardian_change_delay: int = 0
    guardian_change_pending: bool = False
    guardian_change_effective_at: int = 0
    guardian_change_hash: bytes | None = None

    @property
    def recovery_approving_slots(self) -> tuple[int, ...]:
        """The authority slots whose guardians approve the pending recovery."""
        return tuple(slot for slot in range(MAX_AUTHORITIES) if self.recovery_approvals >> slot & 1)

    def authority(self, key: Pubkey | bytes) -> AuthorityEntry | None:
        return next((entry for entry in self.authorities if entry.key == key), None)

    def limit(self, authority: Pubkey | bytes, mint: Pubkey) -> LimitEntry | None:
        return next((entry for entry in self.limits if entry.authority == authority and entry.mint == mint), None)

    @property
    def passkey_keys(self) -> tuple[bytes, ...]:
        """The 33-byte compressed P-256 keys of the kind-2 (passkey) authorities."""
        return tuple(bytes(entry.key) for entry in self.authorities if entry.kind == KIND_SECP256R1)


def decode_config(data: bytes) -> WalletConfig:
    """Decodes a config account's data.

    :raises ValueError: the data is not a version-1 Numpay wallet config.
    """
    if len(data) != CONFIG_LEN or data[:8] != DISCRIMINATOR:
        raise ValueError("not a Numpay wallet config account")
    version, config_bump, vault_bump = data[8], data[9], data[10]
    if version != VERSION:
        raise ValueError(f"unknown config version {version}")
    creator = Pubkey(data[16:48])
    (nonce,) = struct.unpack_from("<Q", data, 48)
    joint_threshold, guardian_threshold = data[56], data[57]
    (guardian_change_delay,) = struct.unpack_from("<I", data, 58)
    (recovery_timelock,) = struct.unpack_from("<q", data, 64)
    change_pending, change_effective_at = struct.unpack_from("<B7xq", data, GUARDIAN_CHANGE_AT)
    change_hash = bytes(data[GUARDIAN_CHANGE_AT + 16 : GUARDIAN_CHANGE_AT + 48]) if change_pending else None
    recovery_id, pending, approvals = struct.unpack_from("<QBB", data, RECOVERY_AT)
    recovery_new_owner = P256Key(data[RECOVERY_AT + 16 : RECOVERY_AT + 49]) if pending else None
    (recovery_executes_at,) = struct.unpack_from("<q", data, RECOVERY_AT + 56)
    rp_id_hash = bytes(data[RP_ID_HASH_AT : RP_ID_HASH_AT + 32])
    authorities = []
    keys: dict[int, Pubkey | bytes] = {}
    for slot in range(MAX_AUTHORITIES):
        at = AUTHORITIES_AT + slot * AUTHORITY_LEN
        kind, permissions = data[at], data[at + 1]
        if kind == 0:
            continue
        key: Pubkey | bytes = P256Key(data[at + 8 : at + 41]) if kind == KIND_SECP256R1 else Pubkey(data[at + 8 : at + 40])
        (expires_at,) = struct.unpack_from("<q", data, at + 48)
        keys[slot] = key
        authorities.append(AuthorityEntry(slot, kind, permissions, key, expires_at))
    limits = []
    for index in range(MAX_LIMITS):
        at = LIMITS_AT + index * LIMIT_LEN
        if data[at] == 0:
            continue
        per_transaction_cap, period_cap, period_seconds, period_start, spent = struct.unpack_from("<QQQqQ", data, at + 40)
        limits.append(
            LimitEntry(
                index=index,
                authority=keys[data[at + 1]],
                mint=Pubkey(data[at + 8 : at + 40]),
                per_transaction_cap=per_transaction_cap,
                period_cap=period_cap,
                period_seconds=period_seconds,
                period_start=period_start,
                spent=spent,
            )
        )
    return WalletConfig(
        version,
        config_bump,
        vault_bump,
        creator,
        nonce,
        tuple(authorities),
        tuple(limits),
        joint_threshold=joint_threshold,
        guardian_threshold=guardian_threshold,
        recovery_timelock=recovery_timelock,
        rp_id_hash=rp_id_hash,
        recovery_id=recovery_id,
        recovery_pending=bool(pending),
        recovery_approvals=approvals,
        recovery_new_owner=recovery_new_owner,
        recovery_executes_at=recovery_executes_at,
        guardian_change_delay=guardian_change_delay,
        guardian_change_pending=bool(change_pending),
        guardian_change_effective_at=change_effective_at,
        guardian_change_hash=change_hash,
    )
