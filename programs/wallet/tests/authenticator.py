"""A software WebAuthn authenticator for the program tests: real P-256 keys (``cryptography``),
real authenticatorData and clientDataJSON, signed as an authenticator signs an assertion
(ECDSA-SHA256 over ``authenticatorData || SHA-256(clientDataJSON)``, DER-encoded)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from solders.instruction import Instruction
from solders.keypair import Keypair

from programs.wallet.tests.conftest import DAY, SOL, Chain, Sent, Wallet
from wallets.program import (
    INSTRUCTIONS_SYSVAR_ID,
    SOL_MINT,
    Authority,
    Limit,
    PasskeyAssertion,
    add_authority,
    approval_challenge,
    approve_with_passkeys,
    set_limits,
    set_permissions,
    set_settings,
)
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND

RP_ID = "numpay.example"
RP_ID_HASH = hashlib.sha256(RP_ID.encode()).digest()
ORIGIN = "https://numpay.example"
FLAG_UP, FLAG_UV = 0x01, 0x04
#: Where the passkey stands in an action built for passkey approval (replaced by the builders).
PLACEHOLDER = INSTRUCTIONS_SYSVAR_ID


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Passkey:
    """One passkey: a P-256 key pair and its sign counter."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    sign_count: int = 0

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    def client_data(self, challenge: bytes, type_: str = "webauthn.get") -> bytes:
        # The browser's serialization: type, challenge, origin, crossOrigin (WebAuthn §5.8.1.1).
        return json.dumps(
            {"type": type_, "challenge": b64url(challenge), "origin": ORIGIN, "crossOrigin": False}, separators=(",", ":")
        ).encode()

    def get_assertion(
        self,
        challenge: bytes,
        *,
        flags: int = FLAG_UP | FLAG_UV,
        rp_id_hash: bytes = RP_ID_HASH,
        type_: str = "webauthn.get",
        client_data_json: bytes | None = None,
    ) -> PasskeyAssertion:
        """A ``navigator.credentials.get`` response for ``challenge``."""
        self.sign_count += 1
        authenticator_data = rp_id_hash + bytes([flags]) + struct.pack(">I", self.sign_count)
        client_data_json = client_data_json if client_data_json is not None else self.client_data(challenge, type_)
        signed = authenticator_data + hashlib.sha256(client_data_json).digest()
        signature = self.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return PasskeyAssertion(self.public_key, authenticator_data, client_data_json, signature)


def challenge_for(chain: Chain, wallet: Wallet, action: Instruction, expires_at: int, nonce: int | None = None) -> bytes:
    config = chain.config_of(wallet.owner.pubkey())
    return approval_challenge(chain.program_id, wallet.config, config.nonce if nonce is None else nonce, expires_at, action)


def expiry(chain: Chain, seconds: int = 300) -> int:
    return chain.svm.get_clock().unix_timestamp + seconds


def approved(
    chain: Chain, wallet: Wallet, action: Instruction, passkeys: Sequence[Passkey], expires_at: int | None = None
) -> list[Instruction]:
    """``action`` approved by ``passkeys`` over the wallet's current nonce."""
    expires_at = expires_at if expires_at is not None else expiry(chain)
    challenge = challenge_for(chain, wallet, action, expires_at)
    return approve_with_passkeys(action, [passkey.get_assertion(challenge) for passkey in passkeys], expires_at=expires_at)


def send_approved(
    chain: Chain, wallet: Wallet, action: Instruction, passkeys: Sequence[Passkey], signers: Sequence[Keypair] = ()
) -> Sent:
    return chain.send(approved(chain, wallet, action, passkeys), list(signers))


def protect(
    chain: Chain,
    wallet: Wallet,
    passkey: Passkey,
    *,
    passkey_permissions: int = PERMISSION_SPEND | PERMISSION_MANAGE,
    passkey_sol: Limit | None = None,
    custody_sol: Limit | None = None,
    joint_threshold: int = 0,
    custody_permissions: int = PERMISSION_SPEND,
) -> Sent:
    """Protected mode in one transaction signed by the custody key (the wallet's owner): the RP ID
    hash, the passkey as a kind-2 owner with its limit, the custody key capped and without ``manage``
    (``custody_permissions``: ``spend`` as before the ``recovery_cancel`` bit, or with it as Numpay now
    writes)."""
    program, me = chain.program_id, wallet.owner.pubkey()
    passkey_sol = passkey_sol or Limit(SOL_MINT, 2 * SOL, 4 * SOL, DAY)
    custody_sol = custody_sol or Limit(SOL_MINT, SOL // 10, SOL // 5, DAY)
    return chain.send(
        [
            set_settings(program, me, me, rp_id_hash=RP_ID_HASH, joint_threshold=joint_threshold),
            add_authority(program, me, me, Authority.passkey(passkey.public_key, passkey_permissions)),
            set_limits(program, me, me, passkey.public_key, passkey_sol),
            set_limits(program, me, me, me, custody_sol),
            set_permissions(program, me, me, me, custody_permissions),
        ],
        [wallet.owner],
    )


def vault_and_config(chain: Chain, wallet: Wallet) -> tuple[int, bytes]:
    return chain.balance(wallet.vault), chain.data(wallet.config)
