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


@dataclass(frozen=True)
class AuthorityEntry:
    """An authority slot in use: ``slot`` is its index in the table (0..7)."""

    slot: int
    kind: int
    permissions: int
    key: Pubkey
    expires_at: int


@dataclass(frozen=True)
class LimitEntry:
    """A limit slot in use: caps and the spent counter of one authority for one mint (base units).

    ``period_start`` is unix seconds; the counter restarts when a whole period has passed
    (the program rolls it at the next spend; ``spent_at`` shows the effective value at a time).
    """

    index: int
    authority: Pubkey
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
    version: int
    config_bump: int
    vault_bump: int
    creator: Pubkey
    nonce: int
    authorities: tuple[AuthorityEntry, ...]
    limits: tuple[LimitEntry, ...]

    def authority(self, key: Pubkey) -> AuthorityEntry | None:
        return next((entry for entry in self.authorities if entry.key == key), None)

    def limit(self, authority: Pubkey, mint: Pubkey) -> LimitEntry | None:
        return next((entry for entry in self.limits if entry.authority == authority and entry.mint == mint), None)


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
    authorities = []
    keys: dict[int, Pubkey] = {}
    for slot in range(MAX_AUTHORITIES):
        at = AUTHORITIES_AT + slot * AUTHORITY_LEN
        kind, permissions = data[at], data[at + 1]
        if kind == 0:
            continue
        key = Pubkey(data[at + 8 : at + 40])
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
    return WalletConfig(version, config_bump, vault_bump, creator, nonce, tuple(authorities), tuple(limits))
