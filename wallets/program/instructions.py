"""Instruction builders for the Numpay smart wallet program, following the byte layouts of
``docs/wallet-program.md`` ("Instructions"). All integers are little-endian; amounts are base units
(lamports for SOL); times are unix seconds.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID

from wallets.program.addresses import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
    config_address,
    vault_address,
)

TAG_CREATE = 0
TAG_EXECUTE = 1
TAG_ADD_AUTHORITY = 2
TAG_REMOVE_AUTHORITY = 3
TAG_SET_LIMITS = 4
TAG_SET_PERMISSIONS = 5
TAG_SET_SETTINGS = 6
TAG_RECOVERY_START = 7
TAG_RECOVERY_APPROVE = 8
TAG_RECOVERY_WITHDRAW = 9
TAG_RECOVERY_CANCEL = 10
TAG_RECOVERY_EXECUTE = 11
TAG_GUARDIANS_PROPOSE = 12
TAG_GUARDIANS_APPLY = 13
TAG_GUARDIANS_CANCEL = 14
#: Added to a tag: the passkey-approved form of the action (``wallets.program.approvals``).
PASSKEY_FLAG = 0x80

KIND_ED25519 = 1
KIND_SECP256R1 = 2  # passkey: 33-byte compressed P-256 public key
P256_KEY_LEN = 33

PERMISSION_SPEND = 1
PERMISSION_MANAGE = 2
PERMISSION_GUARDIAN = 4
#: ``recovery_cancel`` and nothing else (``manage`` implies it); protected mode gives it to the custody key.
PERMISSION_RECOVERY_CANCEL = 8

MAX_AUTHORITIES = 8
MAX_LIMITS = 16
MAX_TRANSFERS = 8
TRANSFER_KIND_SOL = 0
TRANSFER_KIND_TOKEN = 1
FIRST_EXTRA_ACCOUNT = 4


AuthorityKey = Pubkey | bytes
"""An authority's key: an Ed25519 ``Pubkey``, or the 33-byte compressed P-256 key of a passkey."""


def encode_target(key: AuthorityKey) -> bytes:
    """The target-key field of ``remove_authority``/``set_limits``/``set_permissions``: 32 bytes
    for an Ed25519 key, 33 bytes for a compressed P-256 key.

    :raises ValueError: bytes that are not a 33-byte compressed P-256 key (prefix 0x02/0x03).
    """
    if isinstance(key, Pubkey):
        return bytes(key)
    if len(key) != P256_KEY_LEN or key[0] not in (2, 3):
        raise ValueError("a passkey key is a 33-byte compressed P-256 public key")
    return bytes(key)


@dataclass(frozen=True)
class Authority:
    """An authority record (48 bytes): who may act, with which permission bits, until when.

    :param key: the Ed25519 public key that signs transactions (kind 1), or the 33-byte
        compressed P-256 public key of a passkey (kind 2; see ``Authority.passkey``).
    :param permissions: ``PERMISSION_SPEND | PERMISSION_MANAGE | PERMISSION_GUARDIAN | PERMISSION_RECOVERY_CANCEL``
        bits.
    :param expires_at: unix seconds after which the key may no longer act; 0 = never.
    :param kind: ``KIND_ED25519`` or ``KIND_SECP256R1``.
    """

    key: AuthorityKey
    permissions: int
    expires_at: int = 0
    kind: int = KIND_ED25519

    @classmethod
    def passkey(cls, public_key: bytes, permissions: int, expires_at: int = 0) -> Authority:
        """A kind-2 (Secp256r1) authority from a passkey's 33-byte compressed P-256 public key."""
        return cls(bytes(public_key), permissions, expires_at, KIND_SECP256R1)

    def encode(self) -> bytes:
        """Kind 1: ``kind, permissions, reserved 6, key 32, expires_at``; kind 2: ``kind,
        permissions, key prefix (0x02/0x03), reserved 5, key x-coordinate 32, expires_at``.

        :raises ValueError: a kind-2 key that is not a compressed P-256 key.
        """
        if self.kind == KIND_SECP256R1:
            key = encode_target(bytes(self.key))
            return struct.pack("<BBB5x32sq", self.kind, self.permissions, key[0], key[1:], self.expires_at)
        return struct.pack("<BB6x32sq", self.kind, self.permissions, bytes(self.key), self.expires_at)


@dataclass(frozen=True)
class Limit:
    """A limit body (56 bytes) of one authority for one mint.

    :param mint: the token mint, or ``SOL_MINT`` (32 zero bytes) for SOL.
    :param per_transaction_cap: most base units one ``execute`` may move of this mint (summed over
        its transfers).
    :param period_cap: most base units per period.
    :param period_seconds: the period length (>= 1); periods advance in whole steps from the start.
    """

    mint: Pubkey
    per_transaction_cap: int
    period_cap: int
    period_seconds: int = 86_400

    def encode(self) -> bytes:
        return struct.pack("<32sQQQ", bytes(self.mint), self.per_transaction_cap, self.period_cap, self.period_seconds)


@dataclass(frozen=True)
class SolTransfer:
    """Move ``amount`` lamports from the vault to ``destination``."""

    destination: Pubkey
    amount: int


@dataclass(frozen=True)
class TokenTransfer:
    """Move ``amount`` base units of ``mint`` from the vault's associated token account to
    ``destination``'s associated token account, created first (idempotently) with ``payer``
    paying its rent if it does not exist.
    """

    mint: Pubkey
    destination: Pubkey
    amount: int
    decimals: int
    payer: Pubkey
    token_program: Pubkey = TOKEN_PROGRAM_ID


def create(
    program_id: Pubkey,
    creator: Pubkey,
    payer: Pubkey,
    authorities: Sequence[Authority],
    limits: Sequence[tuple[Pubkey, Limit]] = (),
) -> Instruction:
    """``create``: the config account at ``["config", creator]``; ``creator`` and ``payer`` sign.

    :param limits: (authority key, limit) pairs; the key must be one of ``authorities``.
    :raises ValueError: a limit names a key that is not in ``authorities``.
    """
    config, _ = config_address(program_id, creator)
    keys = [authority.key for authority in authorities]
    data = struct.pack("<BBB5x", TAG_CREATE, len(authorities), len(limits))
    data += b"".join(authority.encode() for authority in authorities)
    for key, limit in limits:
        if key not in keys:
            raise ValueError(f"limit for {key} which is not an initial authority")
        data += struct.pack("<B7x", keys.index(key)) + limit.encode()
    return Instruction(
        program_id,
        data,
        [
            AccountMeta(config, is_signer=False, is_writable=True),
            AccountMeta(creator, is_signer=True, is_writable=False),
            AccountMeta(payer, is_signer=True, is_writable=True),
            AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
        ],
    )


@dataclass
class _AccountList:
    metas: list[AccountMeta] = field(default_factory=list)

    def index(self, key: Pubkey, *, signer: bool = False, writable: bool = False) -> int:
        # Transfers name accounts from index 4 on: a key equal to a fixed account (the authority
        # paying itself, say) gets its own entry there; the runtime passes it as a duplicate.
        for i, meta in enumerate(self.metas[FIRST_EXTRA_ACCOUNT:], start=FIRST_EXTRA_ACCOUNT):
            if meta.pubkey == key:
                self.metas[i] = AccountMeta(key, meta.is_signer or signer, meta.is_writable or writable)
                return i
        self.metas.append(AccountMeta(key, signer, writable))
        return len(self.metas) - 1


def execute(
    program_id: Pubkey,
    creator: Pubkey,
    authority: Pubkey,
    transfers: Sequence[SolTransfer | TokenTransfer],
) -> Instruction:
    """``execute``: up to 8 transfers out of the vault of the wallet created by ``creator``,
    authorized by ``authority`` (which signs the transaction).

    :raises ValueError: no transfers, or more than ``MAX_TRANSFERS``.
    """
    if not 1 <= len(transfers) <= MAX_TRANSFERS:
        raise ValueError(f"execute takes 1 to {MAX_TRANSFERS} transfers")
    config, _ = config_address(program_id, creator)
    vault, _ = vault_address(program_id, config)
    accounts = _AccountList(
        [
            AccountMeta(config, is_signer=False, is_writable=True),
            AccountMeta(vault, is_signer=False, is_writable=True),
            AccountMeta(authority, is_signer=True, is_writable=False),
            AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
        ]
    )
    entries = b""
    for transfer in transfers:
        if isinstance(transfer, SolTransfer):
            destination = accounts.index(transfer.destination, writable=True)
            entries += struct.pack("<BB7x7xQ", TRANSFER_KIND_SOL, destination, transfer.amount)
            continue
        destination_token_account = associated_token_address(transfer.destination, transfer.mint, transfer.token_program)
        source = associated_token_address(vault, transfer.mint, transfer.token_program)
        entries += struct.pack(
            "<9B7xQ",
            TRANSFER_KIND_TOKEN,
            accounts.index(transfer.destination),
            accounts.index(destination_token_account, writable=True),
            accounts.index(transfer.mint),
            accounts.index(source, writable=True),
            accounts.index(transfer.token_program),
            accounts.index(ASSOCIATED_TOKEN_PROGRAM_ID),
            accounts.index(transfer.payer, signer=True, writable=True),
            transfer.decimals,
            transfer.amount,
        )
    data = struct.pack("<BB6x", TAG_EXECUTE, len(transfers)) + entries
    return Instruction(program_id, data, accounts.metas)


def _manage(program_id: Pubkey, creator: Pubkey, authority: Pubkey, data: bytes) -> Instruction:
    config, _ = config_address(program_id, creator)
    return Instruction(
        program_id,
        data,
        [
            AccountMeta(config, is_signer=False, is_writable=True),
            AccountMeta(authority, is_signer=True, is_writable=False),
        ],
    )


def add_authority(program_id: Pubkey, creator: Pubkey, authority: Pubkey, new: Authority) -> Instruction:
    """``add_authority``: ``authority`` (``manage``) adds ``new``."""
    return _manage(program_id, creator, authority, bytes([TAG_ADD_AUTHORITY]) + new.encode())


def remove_authority(program_id: Pubkey, creator: Pubkey, authority: Pubkey, removed: AuthorityKey) -> Instruction:
    """``remove_authority``: ``authority`` (``manage``) removes ``removed`` (Ed25519 key or
    33-byte passkey key) and its limits."""
    return _manage(program_id, creator, authority, bytes([TAG_REMOVE_AUTHORITY]) + encode_target(removed))


def set_limits(program_id: Pubkey, creator: Pubkey, authority: Pubkey, target: AuthorityKey, limit: Limit) -> Instruction:
    """``set_limits``: ``authority`` (``manage``) sets ``target``'s limit for ``limit.mint``
    (both caps 0 deletes it)."""
    return _manage(program_id, creator, authority, bytes([TAG_SET_LIMITS]) + encode_target(target) + limit.encode())


def set_permissions(
    program_id: Pubkey, creator: Pubkey, authority: Pubkey, target: AuthorityKey, permissions: int
) -> Instruction:
    """``set_permissions``: ``authority`` (``manage``) sets ``target``'s permission bits (non-zero).
    The program refuses (6021) when no live ``manage`` authority would remain."""
    return _manage(
        program_id, creator, authority, struct.pack("<BB", TAG_SET_PERMISSIONS, permissions) + encode_target(target)
    )


def set_settings(
    program_id: Pubkey,
    creator: Pubkey,
    authority: Pubkey,
    *,
    rp_id_hash: bytes,
    joint_threshold: int = 0,
    guardian_threshold: int = 0,
    recovery_timelock: int = 0,
    guardian_change_delay: int = 0,
) -> Instruction:
    """``set_settings``: ``authority`` (``manage``) writes all the wallet settings at once (read the
    config first to keep the others).

    :param rp_id_hash: SHA-256 of the WebAuthn RP ID (32 bytes) that passkey approvals must carry.
    :param joint_threshold: 0 (off) or 2..8 distinct ``manage`` passkeys whose joint approval of an
        ``execute`` lifts the spending limits.
    :param guardian_threshold: 0 (recovery off) or the guardian approvals a recovery needs (1..8).
    :param recovery_timelock: seconds between the threshold being met and the recovery executing.
    :param guardian_change_delay: seconds (u32) between a ``guardians_propose`` and the earliest
        ``guardians_apply`` of it (0 = at once).
    :raises ValueError: ``rp_id_hash`` is not 32 bytes.
    """
    if len(rp_id_hash) != 32:
        raise ValueError("rp_id_hash is 32 bytes (SHA-256 of the RP ID)")
    body = struct.pack(
        "<32sBBI2xq", rp_id_hash, joint_threshold, guardian_threshold, guardian_change_delay, recovery_timelock
    )
    return _manage(program_id, creator, authority, bytes([TAG_SET_SETTINGS]) + body)


def _passkey_key(key: bytes) -> bytes:
    encoded = encode_target(bytes(key))
    if len(encoded) != P256_KEY_LEN:
        raise ValueError("the new owner is a passkey: a 33-byte compressed P-256 public key")
    return encoded


def recovery_start(program_id: Pubkey, creator: Pubkey, authority: Pubkey, new_owner: bytes) -> Instruction:
    """``recovery_start``: a guardian opens the wallet's recovery request for the passkey
    ``new_owner`` (33-byte compressed P-256 key); the starting guardians' approvals count. Normally
    passkey-approved by guardians (``approve_with_passkeys``); ``authority`` is then a placeholder.

    :raises ValueError: ``new_owner`` is not a compressed P-256 key.
    """
    return _manage(program_id, creator, authority, bytes([TAG_RECOVERY_START]) + _passkey_key(new_owner))


def recovery_approve(
    program_id: Pubkey, creator: Pubkey, authority: Pubkey, recovery_id: int, new_owner: bytes
) -> Instruction:
    """``recovery_approve``: a guardian approves the pending request ``recovery_id`` (from
    ``WalletConfig.recovery_id``) for ``new_owner``."""
    body = struct.pack("<BQ", TAG_RECOVERY_APPROVE, recovery_id) + _passkey_key(new_owner)
    return _manage(program_id, creator, authority, body)


def recovery_withdraw(
    program_id: Pubkey, creator: Pubkey, authority: Pubkey, recovery_id: int, new_owner: bytes
) -> Instruction:
    """``recovery_withdraw``: a guardian takes back its approval of the pending request; below the
    threshold the clock stops."""
    body = struct.pack("<BQ", TAG_RECOVERY_WITHDRAW, recovery_id) + _passkey_key(new_owner)
    return _manage(program_id, creator, authority, body)


def recovery_cancel(program_id: Pubkey, creator: Pubkey, authority: Pubkey, recovery_id: int) -> Instruction:
    """``recovery_cancel``: an owner (``manage``) or an authority holding ``recovery_cancel`` (a signer, or
    passkey-approved) ends the pending request."""
    return _manage(program_id, creator, authority, struct.pack("<BQ", TAG_RECOVERY_CANCEL, recovery_id))


def recovery_execute(program_id: Pubkey, creator: Pubkey, recovery_id: int) -> Instruction:
    """``recovery_execute``: completes the pending request once its timelock has run out; anyone may
    submit it (no signer besides the fee payer). Only account: the config (writable)."""
    config, _ = config_address(program_id, creator)
    return Instruction(
        program_id,
        struct.pack("<BQ", TAG_RECOVERY_EXECUTE, recovery_id),
        [AccountMeta(config, is_signer=False, is_writable=True)],
    )


def guardian_set_body(guardians: Sequence[bytes], threshold: int) -> bytes:
    """The guardian set body of ``guardians_propose`` / ``guardians_apply``: ``guardian_threshold u8,
    count u8``, then the ``count`` 33-byte compressed P-256 keys in the given order (the program
    stores the SHA-256 of these exact bytes: propose and apply must send the same order).

    :raises ValueError: a key that is not a compressed P-256 key, more than 8 keys.
    """
    keys = [_passkey_key(bytes(key)) for key in guardians]
    if len(keys) > MAX_AUTHORITIES:
        raise ValueError(f"at most {MAX_AUTHORITIES} guardians")
    return struct.pack("<BB", threshold, len(keys)) + b"".join(keys)


def guardian_change_hash(guardians: Sequence[bytes], threshold: int) -> bytes:
    """SHA-256 of the guardian set body: what ``guardians_propose`` stores and ``guardians_cancel`` names."""
    return hashlib.sha256(guardian_set_body(guardians, threshold)).digest()


def guardians_propose(
    program_id: Pubkey, creator: Pubkey, authority: Pubkey, guardians: Sequence[bytes], threshold: int
) -> Instruction:
    """``guardians_propose``: an owner (``manage``; normally passkey-approved, ``authority`` then a
    placeholder) proposes the guardian set ``guardians`` (33-byte compressed P-256 keys) with
    ``threshold``; it can be applied ``guardian_change_delay`` seconds later (Clock sysvar)."""
    body = guardian_set_body(guardians, threshold)
    return _manage(program_id, creator, authority, bytes([TAG_GUARDIANS_PROPOSE]) + body)


def guardians_apply(program_id: Pubkey, creator: Pubkey, guardians: Sequence[bytes], threshold: int) -> Instruction:
    """``guardians_apply``: makes the pending proposal (the same ``guardians`` in the same order and
    ``threshold``) the wallet's guardian set once its delay has passed; anyone may submit it (no
    signer besides the fee payer). Only account: the config (writable)."""
    config, _ = config_address(program_id, creator)
    return Instruction(
        program_id,
        bytes([TAG_GUARDIANS_APPLY]) + guardian_set_body(guardians, threshold),
        [AccountMeta(config, is_signer=False, is_writable=True)],
    )


def guardians_cancel(program_id: Pubkey, creator: Pubkey, authority: Pubkey, change_hash: bytes) -> Instruction:
    """``guardians_cancel``: an owner (``manage``) drops the pending guardian change whose hash is
    ``change_hash`` (``WalletConfig.guardian_change_hash``).

    :raises ValueError: ``change_hash`` is not 32 bytes.
    """
    if len(change_hash) != 32:
        raise ValueError("the guardian change hash is 32 bytes")
    return _manage(program_id, creator, authority, bytes([TAG_GUARDIANS_CANCEL]) + bytes(change_hash))
