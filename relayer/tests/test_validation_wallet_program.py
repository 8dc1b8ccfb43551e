"""The sponsorship validator on Numpay wallet program instructions: the fee payer funds only the config's
rent and recipients' token account rent it agreed to, and is never an account a transfer debits."""

from __future__ import annotations

import pytest
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message
from solders.pubkey import Pubkey

from numpay.core.errors import ApplicationError
from relayer.validation import validate_sponsored_message
from wallets import program as wallet_program
from wallets.program.config import CONFIG_LEN
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND
from wallets.smart import wallet_program_id

from .conftest import ATA_RENT_LAMPORTS

FEE_PAYER = Pubkey(bytes([1] * 32))
AUTHORITY = Pubkey(bytes([2] * 32))
RECIPIENT = Pubkey(bytes([3] * 32))
MINT = Pubkey(bytes([4] * 32))
FEE = 2 * 5000
CONFIG_RENT = -(-ATA_RENT_LAMPORTS * (128 + CONFIG_LEN) // (128 + 165))


def _validate(*instructions: Instruction) -> int:
    message = Message.new_with_blockhash(list(instructions), FEE_PAYER, Hash.default())
    return validate_sponsored_message(message, fee_payer=FEE_PAYER, ata_rent_lamports=ATA_RENT_LAMPORTS)


def _refusal(*instructions: Instruction) -> str:
    with pytest.raises(ApplicationError) as caught:
        _validate(*instructions)
    return caught.value.extra["reason"]


def _create(payer: Pubkey = FEE_PAYER) -> Instruction:
    return wallet_program.create(wallet_program_id(), AUTHORITY, payer,
                                 [wallet_program.Authority(AUTHORITY, PERMISSION_SPEND | PERMISSION_MANAGE)])


def _execute(*transfers: wallet_program.SolTransfer | wallet_program.TokenTransfer) -> Instruction:
    return wallet_program.execute(wallet_program_id(), AUTHORITY, AUTHORITY, list(transfers))


def _token(payer: Pubkey, destination: Pubkey = RECIPIENT) -> wallet_program.TokenTransfer:
    return wallet_program.TokenTransfer(mint=MINT, destination=destination, amount=5, decimals=6, payer=payer)


def test_a_first_payment_is_priced_at_fees_plus_the_config_rent_and_the_new_token_account() -> None:
    assert _validate(_create(), _execute(_token(payer=FEE_PAYER))) == FEE + CONFIG_RENT + ATA_RENT_LAMPORTS


def test_a_later_payment_to_an_existing_token_account_costs_only_the_fees() -> None:
    assert _validate(_execute(_token(payer=AUTHORITY))) == FEE
    assert _validate(_execute(wallet_program.SolTransfer(destination=RECIPIENT, amount=1))) == FEE


def test_the_network_fee_may_go_to_the_fee_payer() -> None:
    assert _validate(_execute(_token(payer=AUTHORITY), _token(payer=AUTHORITY, destination=FEE_PAYER))) == FEE


def test_the_config_rent_may_pass_the_per_transaction_cap_but_not_ata_rent(settings) -> None:
    settings.RELAYER_MAX_LAMPORTS_PER_TX = FEE + ATA_RENT_LAMPORTS
    assert _validate(_create(), _execute(_token(payer=FEE_PAYER))) == FEE + CONFIG_RENT + ATA_RENT_LAMPORTS
    settings.RELAYER_MAX_LAMPORTS_PER_TX = FEE
    with pytest.raises(ApplicationError) as caught:
        _validate(_execute(_token(payer=FEE_PAYER)))
    assert caught.value.code == "fee_payer_cap_exceeded"


def test_config_rent_sponsorship_can_be_turned_off(settings) -> None:
    settings.RELAYER_SPONSOR_WALLET_CONFIG_RENT = False
    assert _refusal(_create(), _execute(_token(payer=AUTHORITY))) == "wallet_config_rent_not_sponsored"


def test_the_fee_payer_is_never_a_debited_or_wallet_account() -> None:
    # as a SOL destination, the creator, the authority, or a transfer's mint
    assert _refusal(_execute(wallet_program.SolTransfer(destination=FEE_PAYER, amount=1))) == "fee_payer_in_instruction"
    as_creator = wallet_program.create(wallet_program_id(), FEE_PAYER, FEE_PAYER,
                                       [wallet_program.Authority(FEE_PAYER, PERMISSION_MANAGE)])
    assert _refusal(as_creator) == "fee_payer_in_instruction"
    as_authority = wallet_program.execute(wallet_program_id(), AUTHORITY, FEE_PAYER,
                                          [wallet_program.SolTransfer(destination=RECIPIENT, amount=1)])
    assert _refusal(as_authority) == "fee_payer_in_instruction"
    mint_is_fee_payer = wallet_program.TokenTransfer(mint=FEE_PAYER, destination=RECIPIENT, amount=1, decimals=6,
                                                     payer=AUTHORITY)
    assert _refusal(_execute(mint_is_fee_payer)) == "fee_payer_in_instruction"


def test_a_management_instruction_naming_the_fee_payer_is_refused() -> None:
    instruction = wallet_program.add_authority(wallet_program_id(), AUTHORITY, FEE_PAYER,
                                               wallet_program.Authority(RECIPIENT, PERMISSION_SPEND))
    assert _refusal(instruction) == "fee_payer_in_instruction"


def test_garbage_execute_data_is_refused() -> None:
    instruction = _execute(_token(payer=AUTHORITY))
    truncated = Instruction(instruction.program_id, bytes(instruction.data)[:-1], instruction.accounts)
    assert _refusal(truncated) == "malformed_message"
    pointing_outside = bytearray(instruction.data)
    pointing_outside[8 + 7] = 200
    assert _refusal(Instruction(instruction.program_id, bytes(pointing_outside),
                                [*instruction.accounts, AccountMeta(FEE_PAYER, True, True)])) == "malformed_message"


def test_another_program_at_a_wallet_like_instruction_is_refused() -> None:
    other = Instruction(Pubkey(bytes([9] * 32)), bytes(_create().data), _create().accounts)
    assert _refusal(other) == "program_not_allowed"
