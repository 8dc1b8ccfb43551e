"""The sponsorship validator: every rule accepted and refused (DESIGN.md "Fee sponsorship")."""

from __future__ import annotations

import pytest
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, CompiledInstruction, Instruction
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.instructions import (
    create_associated_token_account,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from numpay.core.errors import ApplicationError
from numpay.core.solana.programs import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    COMPUTE_BUDGET_PROGRAM_ID,
    MEMO_PROGRAM_ID,
    MEMO_V1_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
)
from relayer.validation import validate_sponsored_message

from .conftest import ATA_RENT_LAMPORTS

FEE_PAYER = Pubkey(bytes([1] * 32))
SENDER = Pubkey(bytes([2] * 32))
RECIPIENT = Pubkey(bytes([3] * 32))
MINT = Pubkey(bytes([4] * 32))


def _message(*instructions: Instruction, payer: Pubkey = FEE_PAYER) -> Message:
    return Message.new_with_blockhash(list(instructions), payer, Hash.default())


def _validate(message: Message, *, ata_rent_lamports: int = ATA_RENT_LAMPORTS) -> int:
    return validate_sponsored_message(message, fee_payer=FEE_PAYER, ata_rent_lamports=ata_rent_lamports)


def _refusal(message: Message) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        _validate(message)
    return caught.value


def _sol_transfer(source: Pubkey = SENDER, lamports: int = 1_000_000) -> Instruction:
    return transfer(TransferParams(from_pubkey=source, to_pubkey=RECIPIENT, lamports=lamports))


def _usdc_transfer(*, owner: Pubkey = SENDER, program_id: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    return transfer_checked(TransferCheckedParams(
        program_id=program_id,
        source=get_associated_token_address(owner, MINT, program_id),
        mint=MINT,
        dest=get_associated_token_address(RECIPIENT, MINT, program_id),
        owner=owner,
        amount=1_500_000,
        decimals=6,
    ))


# --- accepted ----------------------------------------------------------------------------------------


def test_sol_transfer_costs_two_signature_fees():
    # given a system transfer signed by the sender, with the fee payer first
    message = _message(_sol_transfer())

    # when
    cost = _validate(message)

    # then 2 signatures x 5000 lamports, default compute unit price is 0
    assert cost == 10_000


def test_usdc_payment_with_idempotent_ata_create_memo_and_compute_budget_is_priced_exactly():
    # given the USDC payment the payments code builds, with a priority fee and the recipient ATA funded by the fee payer
    message = _message(
        set_compute_unit_limit(50_000),
        set_compute_unit_price(1_000),
        create_idempotent_associated_token_account(FEE_PAYER, RECIPIENT, MINT),
        _usdc_transfer(),
        create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=SENDER, message=b"lunch")),
    )

    # when
    cost = _validate(message)

    # then 2 x 5000 + ceil(1000 x 50_000 / 1e6) = 50 + one token account's rent
    assert cost == 10_000 + 50 + ATA_RENT_LAMPORTS


def test_legacy_ata_create_funded_by_fee_payer_counts_its_rent():
    message = _message(create_associated_token_account(FEE_PAYER, RECIPIENT, MINT), _usdc_transfer())

    assert _validate(message) == 10_000 + ATA_RENT_LAMPORTS


def test_ata_create_funded_by_the_sender_costs_the_fee_payer_no_rent():
    message = _message(create_idempotent_associated_token_account(SENDER, RECIPIENT, MINT), _usdc_transfer())

    assert _validate(message) == 10_000


def test_priority_fee_without_a_limit_uses_200k_units_per_instruction_and_rounds_up():
    # given a price of 3 micro-lamports per unit and no explicit limit: 3 x 200_000 / 1e6 = 0.6 lamports
    message = _message(set_compute_unit_price(3), _sol_transfer())

    # then it is rounded up to 1 lamport
    assert _validate(message) == 10_001


def test_compute_unit_limit_above_the_maximum_is_capped_at_1_4_million():
    message = _message(set_compute_unit_limit(5_000_000), set_compute_unit_price(1_000_000), _sol_transfer())

    assert _validate(message) == 10_000 + 1_400_000


def test_token_2022_transfer_and_old_memo_program_are_allowed():
    message = _message(
        _usdc_transfer(program_id=TOKEN_2022_PROGRAM_ID),
        create_memo(MemoParams(program_id=MEMO_V1_PROGRAM_ID, signer=SENDER, message=b"hi")),
    )

    assert _validate(message) == 10_000


def test_fee_payer_as_only_signer_costs_one_signature_fee():
    message = _message(create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=SENDER, message=b"x")))
    # the memo signer makes it 2 signatures; a message with no other signer costs 1
    lone = _message(Instruction(MEMO_PROGRAM_ID, b"hello", []))

    assert _validate(message) == 10_000
    assert _validate(lone) == 5_000


# --- refused -----------------------------------------------------------------------------------------


def test_fee_payer_as_transfer_source_is_refused():
    error = _refusal(_message(_sol_transfer(source=FEE_PAYER)))

    assert error.code == "transaction_not_allowed"
    assert error.status == 400
    assert error.extra == {"reason": "fee_payer_in_instruction"}
    assert "Instruction 1 uses the relayer's fee payer" in error.message


def test_fee_payer_as_token_authority_is_refused():
    error = _refusal(_message(_usdc_transfer(owner=FEE_PAYER)))

    assert error.extra == {"reason": "fee_payer_in_instruction"}


def test_fee_payer_as_memo_signer_is_refused():
    error = _refusal(_message(create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=FEE_PAYER, message=b"x"))))

    assert error.extra == {"reason": "fee_payer_in_instruction"}


def test_fee_payer_as_owner_of_a_new_ata_is_refused():
    # given the fee payer is the wallet of the ATA (account 2), not its funder
    error = _refusal(_message(create_idempotent_associated_token_account(SENDER, FEE_PAYER, MINT)))

    assert error.extra == {"reason": "fee_payer_in_instruction"}


def test_fee_payer_in_an_ata_instruction_other_than_create_is_refused():
    # given RecoverNested (tag 2) with the fee payer as account 0
    instruction = create_idempotent_associated_token_account(FEE_PAYER, RECIPIENT, MINT)
    recover = Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, b"\x02", instruction.accounts)

    error = _refusal(_message(recover))

    assert error.extra == {"reason": "fee_payer_in_instruction"}


def test_ata_create_for_an_unknown_token_program_is_refused():
    # given an ATA create funded by the fee payer whose token program account is not a token program
    accounts = list(create_idempotent_associated_token_account(FEE_PAYER, RECIPIENT, MINT).accounts)
    accounts[5] = AccountMeta(SENDER, False, False)

    error = _refusal(_message(Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, b"\x01", accounts)))

    assert error.extra == {"reason": "malformed_message"}


def test_unknown_program_is_refused():
    unknown = Pubkey(bytes([5] * 32))
    error = _refusal(_message(_sol_transfer(), Instruction(unknown, b"", [AccountMeta(SENDER, True, True)])))

    assert error.code == "transaction_not_allowed"
    assert error.extra == {"reason": "program_not_allowed"}
    assert str(unknown) in error.message


def test_fee_payer_not_first_signer_is_refused():
    # given the sender is the message's fee payer and the relayer's key is only a second signer
    error = _refusal(_message(
        create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=FEE_PAYER, message=b"x")), payer=SENDER
    ))

    assert error.extra == {"reason": "fee_payer_not_first_signer"}


def test_message_without_the_fee_payer_is_refused():
    error = _refusal(_message(_sol_transfer(), payer=SENDER))

    assert error.extra == {"reason": "fee_payer_not_first_signer"}


def test_cost_above_the_per_transaction_cap_is_refused():
    # given a priority fee of 1_400_000 x 2_000_000 / 1e6 = 2_800_000 lamports (+ 10_000 + rent > 3_000_000)
    message = _message(
        set_compute_unit_limit(1_400_000),
        set_compute_unit_price(2_000_000),
        create_idempotent_associated_token_account(FEE_PAYER, RECIPIENT, MINT),
        _usdc_transfer(),
    )

    with pytest.raises(ApplicationError) as caught:
        _validate(message)

    assert caught.value.code == "fee_payer_cap_exceeded"
    assert caught.value.status == 400
    assert caught.value.extra == {
        "reason": "fee_payer_cap_exceeded",
        "cost_lamports": 10_000 + 2_800_000 + ATA_RENT_LAMPORTS,
        "cap_lamports": 3_000_000,
    }


def test_two_ata_creations_exceed_the_cap():
    other_mint = Pubkey(bytes([6] * 32))
    message = _message(
        create_idempotent_associated_token_account(FEE_PAYER, RECIPIENT, MINT),
        create_idempotent_associated_token_account(FEE_PAYER, RECIPIENT, other_mint),
    )

    with pytest.raises(ApplicationError) as caught:
        _validate(message)

    assert caught.value.code == "fee_payer_cap_exceeded"


def test_cost_equal_to_the_cap_is_accepted(settings):
    settings.RELAYER_MAX_LAMPORTS_PER_TX = 10_000

    assert _validate(_message(_sol_transfer())) == 10_000


def test_ata_rent_is_refused_when_the_setting_is_off(settings):
    settings.RELAYER_SPONSOR_ATA_RENT = False

    error = _refusal(_message(create_idempotent_associated_token_account(FEE_PAYER, RECIPIENT, MINT), _usdc_transfer()))

    assert error.extra == {"reason": "ata_rent_not_sponsored"}


def test_system_instruction_other_than_transfer_is_refused():
    new_account = Pubkey(bytes([7] * 32))
    create = create_account(CreateAccountParams(
        from_pubkey=SENDER, to_pubkey=new_account, lamports=1, space=0, owner=TOKEN_PROGRAM_ID
    ))

    error = _refusal(_message(create))

    assert error.extra == {"reason": "system_instruction_not_allowed"}


def test_duplicate_compute_budget_instruction_is_refused():
    error = _refusal(_message(set_compute_unit_price(1), set_compute_unit_price(2), _sol_transfer()))

    assert error.extra == {"reason": "duplicate_compute_budget_instruction"}


def test_deprecated_request_units_is_refused():
    request_units = Instruction(COMPUTE_BUDGET_PROGRAM_ID, bytes(9), [])

    error = _refusal(_message(request_units, _sol_transfer()))

    assert error.extra == {"reason": "compute_budget_instruction_not_allowed"}


def test_instruction_pointing_outside_the_key_list_is_refused():
    message = Message.new_with_compiled_instructions(
        1, 0, 1, [FEE_PAYER, MEMO_PROGRAM_ID], Hash.default(), [CompiledInstruction(1, b"x", bytes([7]))]
    )

    error = _refusal(message)

    assert error.extra == {"reason": "malformed_message"}


def test_versioned_message_is_refused():
    message = MessageV0.try_compile(FEE_PAYER, [_sol_transfer()], [], Hash.default())

    with pytest.raises(ApplicationError) as caught:
        validate_sponsored_message(message, fee_payer=FEE_PAYER, ata_rent_lamports=ATA_RENT_LAMPORTS)

    assert caught.value.extra == {"reason": "unsupported_message"}


def test_token_2022_ata_rent_is_priced_for_its_largest_account():
    # given a Token-2022 ATA funded by the fee payer: rent scales as (128 + 200) / (128 + 165)
    message = _message(
        create_idempotent_associated_token_account(FEE_PAYER, RECIPIENT, MINT, TOKEN_2022_PROGRAM_ID),
        _usdc_transfer(program_id=TOKEN_2022_PROGRAM_ID),
    )

    # then 2_039_280 x 328 / 293 = 2_282_880 lamports (the rent of a 200-byte account) plus 2 signatures
    assert _validate(message) == 10_000 + 2_282_880
