"""``create``: the config account appears at the creator's PDA, funded by the payer, and nobody
else can create it (squatting)."""

from __future__ import annotations

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from programs.wallet.tests.conftest import DAY, SOL, SOLANA_FEE, START_TIME, Chain
from wallets.program import SOL_MINT, Authority, Limit, config_address, create, vault_address
from wallets.program.config import CONFIG_LEN
from wallets.program.errors import ProgramErrorCode
from wallets.program.instructions import KIND_SECP256R1, PERMISSION_GUARDIAN, PERMISSION_MANAGE, PERMISSION_SPEND


def test_create_writes_the_config_at_the_creator_pda_and_the_payer_funds_exactly_the_rent(chain: Chain) -> None:
    # given a creator key and a guardian
    owner, guardian = Keypair(), Keypair()
    config, config_bump = config_address(chain.program_id, owner.pubkey())
    vault, vault_bump = vault_address(chain.program_id, config)
    payer_before = chain.balance(chain.fee_payer.pubkey())
    rent = chain.svm.minimum_balance_for_rent_exemption(CONFIG_LEN)

    # when the creator creates the wallet with two authorities and a SOL limit
    sent = chain.send(
        [
            create(
                chain.program_id,
                owner.pubkey(),
                chain.fee_payer.pubkey(),
                [
                    Authority(owner.pubkey(), PERMISSION_SPEND | PERMISSION_MANAGE),
                    Authority(guardian.pubkey(), PERMISSION_GUARDIAN, expires_at=START_TIME + DAY),
                ],
                [(owner.pubkey(), Limit(SOL_MINT, SOL, 3 * SOL, DAY))],
            )
        ],
        [owner],
    )

    # then the config is program-owned, rent-exempt, and decodes to exactly what was asked
    assert not sent.failed, sent.logs
    account = chain.svm.get_account(config)
    assert account.owner == chain.program_id
    assert account.lamports == rent
    assert chain.balance(chain.fee_payer.pubkey()) == payer_before - 2 * SOLANA_FEE - rent
    decoded = chain.config_of(owner.pubkey())
    assert (decoded.version, decoded.config_bump, decoded.vault_bump) == (1, config_bump, vault_bump)
    assert decoded.creator == owner.pubkey()
    assert decoded.nonce == 0
    assert [(a.slot, a.kind, a.permissions, a.key, a.expires_at) for a in decoded.authorities] == [
        (0, 1, 3, owner.pubkey(), 0),
        (1, 1, 4, guardian.pubkey(), START_TIME + DAY),
    ]
    [limit] = decoded.limits
    assert (limit.authority, limit.mint, limit.per_transaction_cap, limit.period_cap) == (
        owner.pubkey(),
        SOL_MINT,
        SOL,
        3 * SOL,
    )
    assert (limit.period_seconds, limit.period_start, limit.spent) == (DAY, START_TIME, 0)
    # and the vault does not exist yet (it only receives)
    assert chain.balance(vault) == 0


def test_create_succeeds_when_someone_prefunded_the_config_address(chain: Chain) -> None:
    # given lamports sent to the config address before the wallet exists (a cheap denial of service)
    owner = Keypair()
    config, _ = config_address(chain.program_id, owner.pubkey())
    chain.airdrop(config, 1_000_000)
    rent = chain.svm.minimum_balance_for_rent_exemption(CONFIG_LEN)
    payer_before = chain.balance(chain.fee_payer.pubkey())

    # when the creator creates the wallet
    sent = chain.send(
        [create(chain.program_id, owner.pubkey(), chain.fee_payer.pubkey(), [Authority(owner.pubkey(), PERMISSION_MANAGE)])],
        [owner],
    )

    # then it exists, and the payer paid only the missing part of the rent
    assert not sent.failed, sent.logs
    assert chain.svm.get_account(config).owner == chain.program_id
    assert chain.balance(config) == rent
    assert chain.balance(chain.fee_payer.pubkey()) == payer_before - 2 * SOLANA_FEE - (rent - 1_000_000)


def test_create_again_by_its_creator_changes_nothing_and_costs_nothing(chain: Chain) -> None:
    # given a created wallet
    owner = Keypair()
    instruction = create(
        chain.program_id, owner.pubkey(), chain.fee_payer.pubkey(), [Authority(owner.pubkey(), PERMISSION_MANAGE)]
    )
    assert not chain.send([instruction], [owner]).failed
    config = config_address(chain.program_id, owner.pubkey())[0]
    before = chain.data(config)
    payer_before = chain.balance(chain.fee_payer.pubkey())

    # when it is created again, signed by its creator, with other authorities
    other = Keypair()
    again = create(
        chain.program_id, owner.pubkey(), chain.fee_payer.pubkey(), [Authority(other.pubkey(), PERMISSION_MANAGE)]
    )
    sent = chain.send([again], [owner])

    # then it succeeds as a no-op: the config is unchanged and the payer paid only the fee
    assert not sent.failed, sent.logs
    assert chain.data(config) == before
    assert chain.balance(chain.fee_payer.pubkey()) == payer_before - 2 * SOLANA_FEE


def test_nobody_else_can_create_the_config_at_a_handed_out_address(chain: Chain) -> None:
    # given the address Numpay handed out for a user whose creator key the attacker does not hold
    user, attacker = Keypair(), Keypair()
    config, _ = config_address(chain.program_id, user.pubkey())
    mine = create(
        chain.program_id, attacker.pubkey(), chain.fee_payer.pubkey(), [Authority(attacker.pubkey(), PERMISSION_MANAGE)]
    )

    # when the attacker signs as creator but points the config at the user's address
    squat = Instruction(chain.program_id, mine.data, [AccountMeta(config, False, True), *mine.accounts[1:]])
    by_own_key = chain.send([squat], [attacker])
    # or names the user's key as creator without its signature
    unsigned = Instruction(
        chain.program_id,
        mine.data,
        [AccountMeta(config, False, True), AccountMeta(user.pubkey(), False, False), *mine.accounts[2:]],
    )
    without_signature = chain.send([unsigned], [])

    # then both are refused and the address stays free
    assert by_own_key.error_code == ProgramErrorCode.INVALID_CONFIG_ADDRESS
    assert without_signature.error_code == ProgramErrorCode.MISSING_SIGNATURE
    assert chain.svm.get_account(config) is None


def test_create_refuses_a_wallet_without_an_owner(chain: Chain) -> None:
    # given only a spend authority
    owner = Keypair()
    instruction = create(
        chain.program_id, owner.pubkey(), chain.fee_payer.pubkey(), [Authority(owner.pubkey(), PERMISSION_SPEND)]
    )

    # when creating
    sent = chain.send([instruction], [owner])

    # then it is refused: someone must hold `manage`
    assert sent.error_code == ProgramErrorCode.LAST_OWNER
    assert chain.svm.get_account(config_address(chain.program_id, owner.pubkey())[0]) is None


@pytest.mark.parametrize("prefix", [0, 1, 4, 0xFF])
def test_create_refuses_a_passkey_key_that_is_not_a_compressed_point(chain: Chain, prefix: int) -> None:
    owner = Keypair()
    record = Authority(owner.pubkey(), PERMISSION_MANAGE).encode()
    record = bytes([KIND_SECP256R1, PERMISSION_MANAGE, prefix]) + record[3:]  # kind 2 with a bad key prefix
    instruction = create(
        chain.program_id, owner.pubkey(), chain.fee_payer.pubkey(), [Authority(owner.pubkey(), PERMISSION_MANAGE)]
    )
    data = bytes(instruction.data)[:8] + record
    sent = chain.send([Instruction(chain.program_id, data, instruction.accounts)], [owner])
    assert sent.error_code == ProgramErrorCode.INVALID_INSTRUCTION_DATA
    assert chain.svm.get_account(config_address(chain.program_id, owner.pubkey())[0]) is None


def test_create_refuses_a_config_account_that_already_holds_data(chain: Chain) -> None:
    # given the config address occupied by a system account with data (cannot happen on a real
    # cluster without the PDA's signature; proves the program does not overwrite it)
    owner = Keypair()
    config, _ = config_address(chain.program_id, owner.pubkey())
    chain.svm.set_account(config, Account(10**7, bytes(8), Pubkey(bytes(32)), False, 0))
    sent = chain.send(
        [create(chain.program_id, owner.pubkey(), chain.fee_payer.pubkey(), [Authority(owner.pubkey(), PERMISSION_MANAGE)])],
        [owner],
    )
    assert sent.error_code == ProgramErrorCode.INVALID_CONFIG_ACCOUNT
    assert chain.data(config) == bytes(8)
