"""Passkey (WebAuthn, secp256r1) approvals of wallet program actions (``docs/wallet-program.md``,
"Passkey approvals").

Flow: build the action with the ordinary builder (``execute``, ``add_authority``, ... in their
Ed25519-signer form; the authority key there is a placeholder, it is replaced and not part of
the challenge), compute ``approval_challenge`` with the config's current ``nonce``, have the
passkey(s) sign it with ``navigator.credentials.get`` (the challenge's 32 bytes), then
``approve_with_passkeys`` turns the action and the assertions into the two instructions of the
transaction: the secp256r1 precompile instruction and the passkey-approved program instruction.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from wallets.program.instructions import (
    P256_KEY_LEN,
    PASSKEY_FLAG,
    TAG_CREATE,
    TAG_EXECUTE,
    TAG_GUARDIANS_APPLY,
    TAG_RECOVERY_EXECUTE,
)

#: The Instructions sysvar: stands where the Ed25519 authority would in a passkey-approved action.
INSTRUCTIONS_SYSVAR_ID = Pubkey.from_string("Sysvar1nstructions1111111111111111111111111")
#: The secp256r1 signature-verify precompile (SIMD-0075).
SECP256R1_PROGRAM_ID = Pubkey.from_string("Secp256r1SigVerify1111111111111111111111111")
#: Domain separation of action challenges.
APPROVAL_DOMAIN = b"numpay-wallet/approval/v1"
#: The order n of the P-256 group (public curve parameter): signatures are sent with s <= n/2.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_THIS_INSTRUCTION = 0xFFFF
_OFFSETS_LEN = 14
_MAX_APPROVALS = 8


def approver_position(tag: int) -> int:
    """Index of the approving account (Ed25519 signer or Instructions sysvar) for an action tag:
    2 for ``execute``, 1 for the manage actions."""
    return 2 if tag == TAG_EXECUTE else 1


def first_bound_account(tag: int) -> int:
    """Index of the first account whose key is bound into the challenge (4 for ``execute``: the
    destinations, mints, token programs, payers; 2 for the manage actions)."""
    return 4 if tag == TAG_EXECUTE else 2


def _split_action(action: Instruction) -> tuple[int, bytes]:
    data = bytes(action.data)
    if not data or data[0] & PASSKEY_FLAG or data[0] in (TAG_CREATE, TAG_RECOVERY_EXECUTE, TAG_GUARDIANS_APPLY):
        raise ValueError(
            "pass an action in its Ed25519-signer form"
            " (not create, recovery_execute or guardians_apply, not already approved)"
        )
    return data[0], data[1:]


def approval_challenge(program_id: Pubkey, config: Pubkey, nonce: int, expires_at: int, action: Instruction) -> bytes:
    """The 32-byte WebAuthn challenge that approves ``action`` on the wallet ``config``.

    SHA-256 of ``"numpay-wallet/approval/v1" || program id || config || nonce u64 LE ||
    expires_at i64 LE || tag || body || keys of the accounts from ``first_bound_account(tag)`` on``.
    The authority account is not part of it.

    :param nonce: the config's current nonce (``WalletConfig.nonce``); each passkey-approved
        action bumps it, so an approval is good once.
    :param expires_at: unix seconds; the program refuses the approval after it (6036).
    :param action: the instruction as a builder of ``wallets.program.instructions`` makes it.
    :raises ValueError: ``action`` is not for ``program_id`` / ``config``, or not a signer-form action.
    """
    if action.program_id != program_id or action.accounts[0].pubkey != config:
        raise ValueError("the action is not for this program and config")
    tag, body = _split_action(action)
    keys = b"".join(bytes(meta.pubkey) for meta in action.accounts[first_bound_account(tag) :])
    digest = APPROVAL_DOMAIN + bytes(program_id) + bytes(config) + struct.pack("<Qq", nonce, expires_at)
    return hashlib.sha256(digest + bytes([tag]) + body + keys).digest()


@dataclass(frozen=True)
class PasskeyAssertion:
    """One WebAuthn assertion (``navigator.credentials.get`` response) by a passkey.

    :param public_key: the passkey's 33-byte compressed P-256 public key (its kind-2 authority key).
    :param authenticator_data: ``response.authenticatorData`` bytes (rpIdHash 32, flags 1,
        signCount 4, extensions).
    :param client_data_json: ``response.clientDataJSON`` bytes, exactly as the browser returned them.
    :param signature: ``response.signature``: the DER-encoded ECDSA signature.
    """

    public_key: bytes
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes

    def message(self) -> bytes:
        """What the passkey signed: ``authenticatorData || SHA-256(clientDataJSON)``."""
        return self.authenticator_data + hashlib.sha256(self.client_data_json).digest()

    def raw_signature(self) -> bytes:
        """``r || s`` (32 bytes each, big-endian) with low S, as the secp256r1 precompile requires.

        :raises ValueError: the signature is not DER.
        """
        r, s = decode_dss_signature(self.signature)
        if s > P256_ORDER // 2:
            s = P256_ORDER - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def secp256r1_instruction(assertions: Sequence[PasskeyAssertion]) -> Instruction:
    """The secp256r1 precompile instruction verifying every assertion's signature; all offsets
    point into this instruction (``0xFFFF``), as the wallet program requires.

    Data: ``count u8, 0``, then per signature 7 u16 ``(signature_offset, 0xFFFF, public_key_offset,
    0xFFFF, message_offset, message_size, 0xFFFF)``, then per signature the public key (33), the
    signature (64) and the message.

    :raises ValueError: no assertions, a key that is not 33 bytes, or more than 64 KiB of data.
    """
    if not assertions:
        raise ValueError("at least one assertion")
    offsets = b""
    payload = b""
    start = 2 + _OFFSETS_LEN * len(assertions)
    for assertion in assertions:
        if len(assertion.public_key) != P256_KEY_LEN:
            raise ValueError("a passkey public key is 33 bytes (compressed P-256)")
        message = assertion.message()
        key_at = start + len(payload)
        signature_at = key_at + P256_KEY_LEN
        message_at = signature_at + 64
        offsets += struct.pack(
            "<7H", signature_at, _THIS_INSTRUCTION, key_at, _THIS_INSTRUCTION, message_at, len(message), _THIS_INSTRUCTION
        )
        payload += bytes(assertion.public_key) + assertion.raw_signature() + message
    data = bytes([len(assertions), 0]) + offsets + payload
    if len(data) > 0xFFFF:
        raise ValueError("too much data for one precompile instruction")
    return Instruction(SECP256R1_PROGRAM_ID, data, [])


def approvals_section(assertions: Sequence[PasskeyAssertion], *, expires_at: int, precompile_index: int) -> bytes:
    """The approvals section of a passkey-approved action: ``expires_at i64, count u8, reserved 7``,
    then per assertion ``precompile instruction index u16, signature index u8, 0, clientDataJSON
    length u16, 0 0, clientDataJSON``."""
    section = struct.pack("<qB7x", expires_at, len(assertions))
    for index, assertion in enumerate(assertions):
        section += struct.pack("<HBxH2x", precompile_index, index, len(assertion.client_data_json))
        section += assertion.client_data_json
    return section


def approve_with_passkeys(
    action: Instruction,
    assertions: Sequence[PasskeyAssertion],
    *,
    expires_at: int,
    precompile_index: int = 0,
) -> list[Instruction]:
    """The instructions that carry ``action`` approved by passkeys, in transaction order:
    ``[secp256r1 precompile instruction, passkey-approved program instruction]``.

    The program instruction is ``action`` with the tag's passkey flag (0x80), the body length
    (u16) before the body, the approvals section after it, and the Instructions sysvar in place of
    the authority account. Each assertion must sign ``approval_challenge(..., expires_at, action)``.

    :param precompile_index: the index the precompile instruction will have in the transaction
        (0 when these two instructions come first; a compute-budget instruction in front makes it 1).
    :raises ValueError: 0 or more than 8 assertions, or ``action`` is not a signer-form action.
    """
    if not 1 <= len(assertions) <= _MAX_APPROVALS:
        raise ValueError(f"1 to {_MAX_APPROVALS} passkey assertions")
    tag, body = _split_action(action)
    data = struct.pack("<BH", tag | PASSKEY_FLAG, len(body)) + body
    data += approvals_section(assertions, expires_at=expires_at, precompile_index=precompile_index)
    accounts = list(action.accounts)
    accounts[approver_position(tag)] = AccountMeta(INSTRUCTIONS_SYSVAR_ID, is_signer=False, is_writable=False)
    return [secp256r1_instruction(assertions), Instruction(action.program_id, data, accounts)]


def split_approved(data: bytes) -> tuple[int, bytes, bytes]:
    """Splits a passkey-approved instruction's data into ``(tag without the flag, body, approvals
    section)`` (for readers such as the relayer's checks, which inspect the body as in the signer form).

    :raises ValueError: not the passkey-approved form, or a body length past the end.
    """
    if len(data) < 3 or not data[0] & PASSKEY_FLAG:
        raise ValueError("not a passkey-approved instruction")
    (body_len,) = struct.unpack_from("<H", data, 1)
    if 3 + body_len > len(data):
        raise ValueError("the body length runs past the data")
    return data[0] & ~PASSKEY_FLAG & 0xFF, bytes(data[3 : 3 + body_len]), bytes(data[3 + body_len :])
