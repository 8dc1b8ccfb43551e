"""The threats the program must defeat (docs/wallet-program.md, "Threats"): every refusal leaves the
vault, the fee payer (beyond the fee) and the config untouched."""

from __future__ import annotations

import struct

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from programs.wallet.tests.conftest import DAY, SOL, SOLANA_FEE, START_TIME, Chain, Wallet, make_wallet
from wallets.program import (
    SOL_MINT,
    Authority,
    Limit,
    SolTransfer,
    TokenTransfer,
    add_authority,
    associated_token_address,
    config_address,
    create,
    execute,
    remove_authority,
    set_limits,
)
from wallets.program.errors import ProgramErrorCode
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND

U64_MAX = 2**64 - 1


def _replace(instruction: Instruction, index: int, meta: AccountMeta) -> Instruction:
    accounts = list(instruction.accounts)
    accounts[index] = meta
    return Instruction(instruction.program_id, instruction.data, accounts)


def _pay(chain: Chain, wallet: Wallet, recipient: Pubkey, amount: int, signer: Keypair | None = None) -> Instruction:
    signer = signer or wallet.owner
    return execute(chain.program_id, wallet.owner.pubkey(), signer.pubkey(), [SolTransfer(recipient, amount)])


class Snapshot:
    """Vault, config and fee payer before a refused attempt; ``unchanged`` checks the payer lost only fees."""

    def __init__(self, chain: Chain, wallet: Wallet) -> None:
        self.chain, self.wallet = chain, wallet
        self.vault = chain.balance(wallet.vault)
        self.config = chain.data(wallet.config)
        self.payer = chain.balance(chain.fee_payer.pubkey())

    def unchanged(self, signatures: int) -> bool:
        chain = self.chain
        return (
            chain.balance(self.wallet.vault) == self.vault
            and chain.data(self.wallet.config) == self.config
            and chain.balance(chain.fee_payer.pubkey()) == self.payer - signatures * SOLANA_FEE
        )


def test_a_strangers_signature_moves_nothing(chain: Chain, wallet: Wallet) -> None:
    # given a stranger who names the victim's wallet and signs as authority
    stranger = Keypair()
    before = Snapshot(chain, wallet)
    # when
    sent = chain.send([_pay(chain, wallet, stranger.pubkey(), SOL // 10, signer=stranger)], [stranger])
    # then
    assert sent.error_code == ProgramErrorCode.UNKNOWN_AUTHORITY
    assert before.unchanged(signatures=2)


def test_an_authority_that_did_not_sign_moves_nothing(chain: Chain, wallet: Wallet) -> None:
    # given the owner's key named as authority but not signing (the fee payer signs alone)
    instruction = _replace(
        _pay(chain, wallet, Keypair().pubkey(), SOL // 10), 2, AccountMeta(wallet.owner.pubkey(), False, False)
    )
    before = Snapshot(chain, wallet)
    # when
    sent = chain.send([instruction], [])
    # then
    assert sent.error_code == ProgramErrorCode.MISSING_SIGNATURE
    assert before.unchanged(signatures=1)


def test_someone_elses_vault_cannot_be_spent_with_your_own_wallet(chain: Chain, wallet: Wallet) -> None:
    # given an attacker with a wallet of their own
    attacker = make_wallet(chain)
    instruction = _pay(chain, attacker, attacker.owner.pubkey(), SOL // 10)
    before = Snapshot(chain, wallet)
    # when the attacker pairs their config with the victim's vault
    sent = chain.send([_replace(instruction, 1, AccountMeta(wallet.vault, False, True))], [attacker.owner])
    # then
    assert sent.error_code == ProgramErrorCode.INVALID_VAULT_ACCOUNT
    assert before.unchanged(signatures=2)


def test_a_forged_config_owned_by_another_program_is_refused(chain: Chain, wallet: Wallet) -> None:
    # given a copy of the victim's config data listing the attacker as owner, owned by the System program
    attacker = Keypair()
    forged = bytearray(chain.data(wallet.config))
    forged[96 + 8 : 96 + 40] = bytes(attacker.pubkey())
    fake = Keypair().pubkey()
    chain.svm.set_account(fake, Account(10**8, bytes(forged), Pubkey(bytes(32)), False, 0))
    before = Snapshot(chain, wallet)
    # when the attacker presents it with the victim's vault
    instruction = _replace(
        _pay(chain, wallet, attacker.pubkey(), SOL // 10, signer=attacker), 0, AccountMeta(fake, False, True)
    )
    sent = chain.send([instruction], [attacker])
    # then
    assert sent.error_code == ProgramErrorCode.INVALID_CONFIG_ACCOUNT
    assert before.unchanged(signatures=2)


def test_a_forged_config_at_a_non_pda_address_is_refused(chain: Chain, wallet: Wallet) -> None:
    # given (test-only, a runtime cannot produce it) a program-owned copy of the victim's config at
    # another address, listing the attacker as owner
    attacker = Keypair()
    forged = bytearray(chain.data(wallet.config))
    forged[96 + 8 : 96 + 40] = bytes(attacker.pubkey())
    fake = Keypair().pubkey()
    chain.svm.set_account(fake, Account(10**8, bytes(forged), chain.program_id, False, 0))
    before = Snapshot(chain, wallet)
    # when
    instruction = _replace(
        _pay(chain, wallet, attacker.pubkey(), SOL // 10, signer=attacker), 0, AccountMeta(fake, False, True)
    )
    sent = chain.send([instruction], [attacker])
    # then the address does not derive from the stored creator and bump
    assert sent.error_code == ProgramErrorCode.INVALID_CONFIG_ADDRESS
    assert before.unchanged(signatures=2)


@pytest.mark.parametrize("vault_kind", ["random key", "fee payer", "config of another wallet"])
def test_a_forged_vault_is_refused(chain: Chain, wallet: Wallet, vault_kind: str) -> None:
    # given a vault account that is not the config's vault PDA
    fake = {
        "random key": Keypair().pubkey(),
        "fee payer": chain.fee_payer.pubkey(),
        "config of another wallet": make_wallet(chain).config,
    }[vault_kind]
    before = Snapshot(chain, wallet)
    # when
    sent = chain.send(
        [_replace(_pay(chain, wallet, Keypair().pubkey(), SOL // 10), 1, AccountMeta(fake, False, True))], [wallet.owner]
    )
    # then
    assert sent.error_code == ProgramErrorCode.INVALID_VAULT_ACCOUNT
    assert before.unchanged(signatures=2)


@pytest.mark.parametrize(
    ("position", "duplicate_of"),
    [(1, 0), (2, 0), (4, 1), (4, 0)],
    ids=["vault=config", "authority=config", "destination=vault", "destination=config"],
)
def test_duplicated_accounts_are_refused(chain: Chain, wallet: Wallet, position: int, duplicate_of: int) -> None:
    # given an execute whose account at `position` repeats the one at `duplicate_of`
    instruction = _pay(chain, wallet, Keypair().pubkey(), SOL // 10)
    original = instruction.accounts[duplicate_of]
    instruction = _replace(instruction, position, AccountMeta(original.pubkey, original.is_signer, True))
    owner_signs = any(meta.pubkey == wallet.owner.pubkey() for meta in instruction.accounts)
    before = Snapshot(chain, wallet)
    # when
    sent = chain.send([instruction], [wallet.owner] if owner_signs else [])
    # then
    assert sent.error_code == ProgramErrorCode.DUPLICATE_ACCOUNT
    assert before.unchanged(signatures=2 if owner_signs else 1)


def test_per_transaction_cap_exactly_at_passes_and_one_above_is_refused(chain: Chain, wallet: Wallet) -> None:
    # given a cap of 1 SOL per transaction
    recipient = Keypair().pubkey()
    # when paying exactly 1 SOL, then 1 SOL + 1 lamport
    at_cap = chain.send([_pay(chain, wallet, recipient, SOL)], [wallet.owner])
    before = Snapshot(chain, wallet)
    above = chain.send([_pay(chain, wallet, recipient, SOL + 1)], [wallet.owner])
    # then
    assert not at_cap.failed, at_cap.logs
    assert above.error_code == ProgramErrorCode.PER_TRANSACTION_LIMIT_EXCEEDED
    assert before.unchanged(signatures=2)
    assert chain.balance(recipient) == SOL


def test_period_cap_exactly_at_passes_and_one_above_is_refused(chain: Chain, wallet: Wallet) -> None:
    # given a 2 SOL daily cap, 1 SOL per transaction
    recipient = Keypair().pubkey()
    # when paying 1 SOL twice (exactly the cap), then 1 lamport more
    first = chain.send([_pay(chain, wallet, recipient, SOL)], [wallet.owner])
    second = chain.send([_pay(chain, wallet, recipient, SOL)], [wallet.owner])
    before = Snapshot(chain, wallet)
    above = chain.send([_pay(chain, wallet, recipient, 1)], [wallet.owner])
    # then
    assert not first.failed
    assert not second.failed
    assert above.error_code == ProgramErrorCode.PERIOD_LIMIT_EXCEEDED
    assert before.unchanged(signatures=2)
    assert chain.config_of(wallet.owner.pubkey()).limit(wallet.owner.pubkey(), SOL_MINT).spent == 2 * SOL


def test_the_period_rolls_over_after_exactly_one_period(chain: Chain, wallet: Wallet) -> None:
    # given the daily cap used up at the start of the period
    recipient = Keypair().pubkey()
    owner = wallet.owner.pubkey()
    for _ in range(2):
        assert not chain.send([_pay(chain, wallet, recipient, SOL)], [wallet.owner]).failed

    # when one second before the period ends
    chain.set_time(START_TIME + DAY - 1)
    early = chain.send([_pay(chain, wallet, recipient, 1)], [wallet.owner])
    # then still refused
    assert early.error_code == ProgramErrorCode.PERIOD_LIMIT_EXCEEDED

    # when the period has passed (2.5 days later: the start advances by whole periods)
    chain.set_time(START_TIME + 2 * DAY + DAY // 2)
    rolled = chain.send([_pay(chain, wallet, recipient, SOL)], [wallet.owner])
    # then the counter restarted
    assert not rolled.failed, rolled.logs
    limit = chain.config_of(owner).limit(owner, SOL_MINT)
    assert (limit.period_start, limit.spent) == (START_TIME + 2 * DAY, SOL)
    assert chain.balance(recipient) == 3 * SOL


def test_u64_overflow_of_the_spent_counter_is_refused(chain: Chain) -> None:
    # given unlimited caps (u64 max) and some spent already
    wallet = make_wallet(chain, sol_per_transaction=U64_MAX, sol_per_period=U64_MAX)
    recipient = Keypair().pubkey()
    chain.airdrop(recipient, SOL)  # rent-exempt, so tiny amounts can land
    assert not chain.send([_pay(chain, wallet, recipient, 5)], [wallet.owner]).failed
    before = Snapshot(chain, wallet)

    # when an amount that would wrap the counter is sent, alone or split over a batch
    alone = chain.send([_pay(chain, wallet, recipient, U64_MAX - 4)], [wallet.owner])
    split = [SolTransfer(recipient, 2**63), SolTransfer(recipient, 2**63)]
    batched = chain.send([execute(chain.program_id, wallet.owner.pubkey(), wallet.owner.pubkey(), split)], [wallet.owner])

    # then both are refused as overflow, nothing moved
    assert alone.error_code == ProgramErrorCode.ARITHMETIC_OVERFLOW
    assert batched.error_code == ProgramErrorCode.ARITHMETIC_OVERFLOW
    assert before.unchanged(signatures=4)
    assert chain.balance(recipient) == SOL + 5


def test_the_clock_and_period_arithmetic_survive_extreme_values(chain: Chain) -> None:
    # given a period of i64 max seconds
    wallet = make_wallet(chain, period_seconds=2**63 - 1)
    # when time jumps far ahead
    chain.set_time(2**62)
    sent = chain.send([_pay(chain, wallet, chain.fee_payer.pubkey(), 1)], [wallet.owner])
    # then no wrap: still in the first period
    assert not sent.failed, sent.logs
    assert chain.config_of(wallet.owner.pubkey()).limit(wallet.owner.pubkey(), SOL_MINT).period_start == START_TIME
    # and a period longer than i64 is refused
    owner = wallet.owner.pubkey()
    refused = chain.send([set_limits(chain.program_id, owner, owner, owner, Limit(SOL_MINT, 1, 1, 2**63))], [wallet.owner])
    assert refused.error_code == ProgramErrorCode.INVALID_LIMIT


def test_execute_cannot_make_the_fee_payer_pay_anything_but_fees_and_sponsored_rent(chain: Chain) -> None:
    # given a token wallet and a recipient that already has a token account
    mint, mint_authority = chain.create_mint()
    wallet = make_wallet(chain, extra_limits=[Limit(mint, 10**9, 10**9, DAY)])
    chain.mint_to(mint, mint_authority, wallet.vault, 10**6)
    recipient = Keypair().pubkey()
    chain.mint_to(mint, mint_authority, recipient, 1)
    payer = chain.fee_payer.pubkey()
    owner = wallet.owner.pubkey()
    before = Snapshot(chain, wallet)

    # when an authority names the fee payer as the "vault" (the SOL source), as the source token
    # account, and as the payer of an ATA that already exists
    as_vault = _replace(_pay(chain, wallet, owner, SOL // 10), 1, AccountMeta(payer, True, True))
    refused = chain.send([as_vault], [wallet.owner])
    source_is_payer = execute(chain.program_id, owner, owner, [TokenTransfer(mint, recipient, 10, 6, payer)])
    accounts = list(source_is_payer.accounts)
    source_index = source_is_payer.data[8 + 4]
    accounts[source_index] = AccountMeta(payer, True, True)
    wrong_source = chain.send([Instruction(chain.program_id, source_is_payer.data, accounts)], [wallet.owner])
    sponsored = chain.send(
        [execute(chain.program_id, owner, owner, [TokenTransfer(mint, recipient, 10, 6, payer)])], [wallet.owner]
    )

    # then the forgeries are refused and the payer lost exactly the fees of the three transactions
    assert refused.error_code == ProgramErrorCode.INVALID_VAULT_ACCOUNT
    assert wrong_source.error_code == ProgramErrorCode.DUPLICATE_ACCOUNT  # it is already the payer
    assert not sponsored.failed, sponsored.logs
    assert chain.balance(payer) == before.payer - 6 * SOLANA_FEE
    assert chain.balance(wallet.vault) == before.vault
    assert chain.token_balance(associated_token_address(recipient, mint)) == 11


def test_the_vault_cannot_be_named_as_payer_or_destination(chain: Chain) -> None:
    # given a token wallet
    mint, mint_authority = chain.create_mint()
    wallet = make_wallet(chain, extra_limits=[Limit(mint, 10**9, 10**9, DAY)])
    chain.mint_to(mint, mint_authority, wallet.vault, 10**6)
    owner = wallet.owner.pubkey()
    instruction = execute(
        chain.program_id, owner, owner, [TokenTransfer(mint, Keypair().pubkey(), 10, 6, chain.fee_payer.pubkey())]
    )
    data = bytearray(instruction.data)
    data[8 + 7] = 1  # payer index -> the vault
    before = Snapshot(chain, wallet)
    # when
    sent = chain.send([Instruction(chain.program_id, bytes(data), instruction.accounts)], [wallet.owner])
    # then refused by the index rule (indexes < 4 are the fixed accounts)
    assert sent.error_code == ProgramErrorCode.INVALID_INSTRUCTION_DATA
    assert before.unchanged(signatures=2)


def test_wrong_program_accounts_are_refused(chain: Chain) -> None:
    # given a token transfer whose token program is replaced by the System program, or whose
    # mint belongs to another token program
    mint, mint_authority = chain.create_mint()
    wallet = make_wallet(chain, extra_limits=[Limit(mint, 10**9, 10**9, DAY)])
    chain.mint_to(mint, mint_authority, wallet.vault, 10**6)
    owner = wallet.owner.pubkey()
    instruction = execute(
        chain.program_id, owner, owner, [TokenTransfer(mint, Keypair().pubkey(), 10, 6, chain.fee_payer.pubkey())]
    )
    token_program_index = instruction.data[8 + 5]
    fake_program = _replace(instruction, token_program_index, AccountMeta(Pubkey(bytes(32)), False, False))
    system_as_mint_owner = Keypair().pubkey()
    chain.svm.set_account(system_as_mint_owner, Account(10**7, bytes(82), Pubkey(bytes(32)), False, 0))
    fake_mint = _replace(instruction, instruction.data[8 + 3], AccountMeta(system_as_mint_owner, False, False))
    before = Snapshot(chain, wallet)
    # when
    first = chain.send([fake_program], [wallet.owner])
    second = chain.send([fake_mint], [wallet.owner])
    # then
    assert first.error_code == ProgramErrorCode.INVALID_PROGRAM_ACCOUNT
    assert second.error_code == ProgramErrorCode.INVALID_MINT
    assert before.unchanged(signatures=4)
    assert chain.token_balance(associated_token_address(wallet.vault, mint)) == 10**6


def test_another_wallets_token_account_cannot_be_the_source(chain: Chain) -> None:
    # given two token wallets; the attacker names the victim's token account as source
    mint, mint_authority = chain.create_mint()
    victim = make_wallet(chain, extra_limits=[Limit(mint, 10**9, 10**9, DAY)])
    attacker = make_wallet(chain, extra_limits=[Limit(mint, 10**9, 10**9, DAY)])
    victim_tokens = chain.mint_to(mint, mint_authority, victim.vault, 10**6)
    owner = attacker.owner.pubkey()
    instruction = execute(chain.program_id, owner, owner, [TokenTransfer(mint, owner, 10, 6, chain.fee_payer.pubkey())])
    instruction = _replace(instruction, instruction.data[8 + 4], AccountMeta(victim_tokens, False, True))
    # when
    sent = chain.send([instruction], [attacker.owner])
    # then
    assert sent.error_code == ProgramErrorCode.INVALID_TOKEN_ACCOUNT
    assert chain.token_balance(victim_tokens) == 10**6


def test_a_mint_without_a_limit_cannot_be_spent(chain: Chain, wallet: Wallet) -> None:
    # given tokens in the vault of a wallet whose owner has only a SOL limit
    mint, mint_authority = chain.create_mint()
    source = chain.mint_to(mint, mint_authority, wallet.vault, 10**6)
    owner = wallet.owner.pubkey()
    # when
    sent = chain.send(
        [execute(chain.program_id, owner, owner, [TokenTransfer(mint, owner, 10, 6, chain.fee_payer.pubkey())])],
        [wallet.owner],
    )
    # then
    assert sent.error_code == ProgramErrorCode.NO_LIMIT_FOR_MINT
    assert chain.token_balance(source) == 10**6


def test_a_read_only_config_is_refused(chain: Chain, wallet: Wallet) -> None:
    instruction = _replace(_pay(chain, wallet, Keypair().pubkey(), 1), 0, AccountMeta(wallet.config, False, False))
    before = Snapshot(chain, wallet)
    sent = chain.send([instruction], [wallet.owner])
    assert sent.error_code == ProgramErrorCode.ACCOUNT_NOT_WRITABLE
    assert before.unchanged(signatures=2)


def test_every_truncation_of_valid_instruction_data_is_refused(chain: Chain, wallet: Wallet) -> None:
    # given a valid instruction of every kind (create for a fresh creator)
    owner = wallet.owner.pubkey()
    newcomer = Keypair()
    valid = [
        (_pay(chain, wallet, Keypair().pubkey(), 1), [wallet.owner]),
        (add_authority(chain.program_id, owner, owner, Authority(Keypair().pubkey(), PERMISSION_SPEND)), [wallet.owner]),
        (remove_authority(chain.program_id, owner, owner, owner), [wallet.owner]),
        (set_limits(chain.program_id, owner, owner, owner, Limit(SOL_MINT, 1, 1, DAY)), [wallet.owner]),
        (
            create(
                chain.program_id,
                newcomer.pubkey(),
                chain.fee_payer.pubkey(),
                [Authority(newcomer.pubkey(), PERMISSION_MANAGE)],
                [(newcomer.pubkey(), Limit(SOL_MINT, 1, 1, DAY))],
            ),
            [newcomer],
        ),
    ]
    before = Snapshot(chain, wallet)
    # when every strict prefix of their data is sent
    codes, signatures = set(), 0
    for instruction, signers in valid:
        for length in range(len(instruction.data)):
            truncated = Instruction(chain.program_id, instruction.data[:length], instruction.accounts)
            codes.add(chain.send([truncated], signers).error_code)
            signatures += 2
    # then all are refused as invalid data, and nothing changed or was created
    assert codes == {ProgramErrorCode.INVALID_INSTRUCTION_DATA}
    assert before.unchanged(signatures=signatures)
    assert chain.svm.get_account(config_address(chain.program_id, newcomer.pubkey())[0]) is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: bytes([5]) + d[1:],  # unknown tag
        lambda d: bytes([255]) + d[1:],
        lambda d: d + b"\0",  # trailing byte
        lambda d: d[:1] + bytes([2]) + d[2:],  # count says 2, one entry present
        lambda d: d[:1] + bytes([0]) + d[2:],  # zero transfers
        lambda d: d[:3] + b"\1" + d[4:],  # reserved header byte
        lambda d: d[:8] + bytes([7]) + d[9:],  # unknown transfer kind
        lambda d: d[: 8 + 10] + b"\1" + d[8 + 11 :],  # reserved transfer byte
        lambda d: d[: 8 + 1] + bytes([200]) + d[8 + 2 :],  # account index out of range
        lambda d: d[: 8 + 16] + struct.pack("<Q", 0),  # zero amount
    ],
    ids=[
        "tag-5",
        "tag-255",
        "trailing",
        "count-2",
        "count-0",
        "reserved-header",
        "kind-7",
        "reserved-entry",
        "index-200",
        "zero-amount",
    ],
)
def test_garbage_instruction_data_is_refused(chain: Chain, wallet: Wallet, mutate) -> None:  # noqa: ANN001
    pay = _pay(chain, wallet, Keypair().pubkey(), 1)
    before = Snapshot(chain, wallet)
    sent = chain.send([Instruction(chain.program_id, mutate(bytes(pay.data)), pay.accounts)], [wallet.owner])
    assert sent.error_code == ProgramErrorCode.INVALID_INSTRUCTION_DATA
    assert before.unchanged(signatures=2)


def test_too_few_accounts_are_refused(chain: Chain, wallet: Wallet) -> None:
    pay = _pay(chain, wallet, Keypair().pubkey(), 1)
    before = Snapshot(chain, wallet)
    sent = chain.send([Instruction(chain.program_id, pay.data, pay.accounts[:3])], [wallet.owner])
    assert sent.error_code == ProgramErrorCode.NOT_ENOUGH_ACCOUNTS
    assert before.unchanged(signatures=2)


def test_a_stranger_cannot_manage_someone_elses_wallet(chain: Chain, wallet: Wallet) -> None:
    stranger = Keypair()
    owner = wallet.owner.pubkey()
    before = Snapshot(chain, wallet)
    added = chain.send(
        [add_authority(chain.program_id, owner, stranger.pubkey(), Authority(stranger.pubkey(), PERMISSION_MANAGE))],
        [stranger],
    )
    limits = chain.send(
        [set_limits(chain.program_id, owner, stranger.pubkey(), owner, Limit(SOL_MINT, U64_MAX, U64_MAX))], [stranger]
    )
    assert [added.error_code, limits.error_code] == [ProgramErrorCode.UNKNOWN_AUTHORITY] * 2
    assert before.unchanged(signatures=4)


def test_a_rent_payer_that_did_not_sign_is_refused(chain: Chain) -> None:
    # given a token transfer to a new recipient whose rent payer is a rich bystander who did not sign
    mint, mint_authority = chain.create_mint()
    wallet = make_wallet(chain, extra_limits=[Limit(mint, 10**9, 10**9, DAY)])
    chain.mint_to(mint, mint_authority, wallet.vault, 10**6)
    bystander = Keypair().pubkey()
    chain.airdrop(bystander, SOL)
    owner = wallet.owner.pubkey()
    instruction = execute(
        chain.program_id, owner, owner, [TokenTransfer(mint, Keypair().pubkey(), 10, 6, chain.fee_payer.pubkey())]
    )
    instruction = _replace(instruction, instruction.data[8 + 7], AccountMeta(bystander, False, True))
    before = Snapshot(chain, wallet)
    # when
    sent = chain.send([instruction], [wallet.owner])
    # then
    assert sent.error_code == ProgramErrorCode.MISSING_SIGNATURE
    assert chain.balance(bystander) == SOL
    assert before.unchanged(signatures=2)


def test_more_accounts_than_the_program_reads_are_refused(chain: Chain, wallet: Wallet) -> None:
    pay = _pay(chain, wallet, Keypair().pubkey(), 1)
    padding = [AccountMeta(Keypair().pubkey(), False, False) for _ in range(25 - len(pay.accounts))]
    before = Snapshot(chain, wallet)
    sent = chain.send([Instruction(chain.program_id, pay.data, [*pay.accounts, *padding])], [wallet.owner])
    assert sent.error_code == ProgramErrorCode.TOO_MANY_ACCOUNTS
    assert before.unchanged(signatures=2)
