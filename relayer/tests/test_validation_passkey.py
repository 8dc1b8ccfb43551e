"""The sponsorship validator on passkey-approved wallet program actions (protected mode): the secp256r1 precompile
instruction is allowed without accounts and each of its signatures is priced as a signature fee; the approved
action's body is checked as in the signer form."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message
from solders.pubkey import Pubkey

from numpay.core.errors import ApplicationError
from relayer.validation import validate_sponsored_message
from wallets import program as wallet_program
from wallets.smart import wallet_program_id

from .conftest import ATA_RENT_LAMPORTS

FEE_PAYER = Pubkey(bytes([1] * 32))
AUTHORITY = Pubkey(bytes([2] * 32))
RECIPIENT = Pubkey(bytes([3] * 32))
MINT = Pubkey(bytes([4] * 32))
SIGNATURE_FEE = 5000


def _assertion() -> wallet_program.PasskeyAssertion:
    key = ec.generate_private_key(ec.SECP256R1())
    authenticator_data = hashlib.sha256(b"localhost").digest() + bytes([5]) + (1).to_bytes(4, "big")
    client_data = b'{"type":"webauthn.get","challenge":"' + b"A" * 43 + b'"}'
    return wallet_program.PasskeyAssertion(
        public_key=key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint),
        authenticator_data=authenticator_data, client_data_json=client_data,
        signature=key.sign(authenticator_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())))


def _approved(*transfers: wallet_program.SolTransfer | wallet_program.TokenTransfer, approvals: int = 1
              ) -> list[Instruction]:
    action = wallet_program.execute(wallet_program_id(), AUTHORITY, AUTHORITY, list(transfers))
    return wallet_program.approve_with_passkeys(action, [_assertion() for _ in range(approvals)], expires_at=10**10)


def _validate(*instructions: Instruction) -> int:
    message = Message.new_with_blockhash(list(instructions), FEE_PAYER, Hash.default())
    return validate_sponsored_message(message, fee_payer=FEE_PAYER, ata_rent_lamports=ATA_RENT_LAMPORTS)


def _refusal(*instructions: Instruction) -> str:
    with pytest.raises(ApplicationError) as caught:
        _validate(*instructions)
    return caught.value.extra["reason"]


def _token(payer: Pubkey) -> wallet_program.TokenTransfer:
    return wallet_program.TokenTransfer(mint=MINT, destination=RECIPIENT, amount=5, decimals=6, payer=payer)


def test_a_passkey_approved_payment_costs_the_fee_payers_and_the_precompiles_signatures() -> None:
    # the Instructions sysvar stands where the custody key would: here only the fee payer signs, plus the
    # precompile's signature, plus the recipient's token account rent as for a custody-signed execute
    assert _validate(*_approved(_token(payer=FEE_PAYER))) == 2 * SIGNATURE_FEE + ATA_RENT_LAMPORTS
    # a token transfer whose rent payer is the custody key (an existing account) has it sign too
    assert _validate(*_approved(_token(payer=AUTHORITY))) == 3 * SIGNATURE_FEE
    assert _validate(*_approved(_token(payer=AUTHORITY), approvals=2)) == 4 * SIGNATURE_FEE


def test_the_approved_body_is_checked_as_the_signer_form() -> None:
    assert _refusal(*_approved(wallet_program.SolTransfer(destination=FEE_PAYER, amount=1))) == "fee_payer_in_instruction"
    precompile, approved = _approved(_token(payer=AUTHORITY))
    truncated = Instruction(approved.program_id, bytes(approved.data)[:5], list(approved.accounts))
    assert _refusal(precompile, truncated) == "malformed_message"


def test_a_precompile_instruction_naming_accounts_or_too_many_signatures_is_refused() -> None:
    precompile, approved = _approved(_token(payer=AUTHORITY))
    with_account = Instruction(precompile.program_id, bytes(precompile.data), [AccountMeta(FEE_PAYER, False, False)])
    assert _refusal(with_account, approved) == "malformed_message"
    too_many = Instruction(precompile.program_id, bytes([9]) + bytes(precompile.data)[1:], [])
    assert _refusal(too_many, approved) == "malformed_message"
    empty = Instruction(precompile.program_id, b"", [])
    assert _refusal(empty, approved) == "malformed_message"
