"""In-process chain for the wallet program tests: solders' LiteSVM with ``numpay_wallet.so`` loaded.

Needs solders >= 0.29 (LiteSVM on agave 4.x runs SBPF v3); with an older solders the whole
directory is skipped with that reason.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import solders
from solders.clock import Clock
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction

from wallets.program import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SOL_MINT,
    TOKEN_PROGRAM_ID,
    Authority,
    Limit,
    WalletConfig,
    associated_token_address,
    config_address,
    create,
    decode_config,
    vault_address,
)
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND

PROGRAM_SO = Path(__file__).resolve().parents[1] / "numpay_wallet.so"
SOLANA_FEE = 5_000  # lamports per signature
START_TIME = 1_800_000_000  # unix seconds the tests' clock starts at
DAY = 86_400
SOL = 1_000_000_000

SOLDERS_RUNS_SBPF_V3 = tuple(int(part) for part in solders.__version__.split(".")[:2]) >= (0, 29)
TESTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips this directory's tests, saying why, when solders cannot run an SBPF v3 program."""
    if SOLDERS_RUNS_SBPF_V3:
        return
    reason = f"the wallet program is SBPF v3: its tests need solders >= 0.29 (installed: {solders.__version__})"
    for item in items:
        path = Path(item.path)
        if TESTS_DIR in path.parents and path.name != "test_artifact.py":  # the ELF checks need no LiteSVM
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Sent:
    """The outcome of one transaction: ``error_code`` is the custom error of the failing
    instruction (``None`` on success or for a non-custom failure), ``failed`` tells them apart."""

    failed: bool
    error_code: int | None
    error: object
    logs: list[str]
    compute_units: int


class Chain:
    """A LiteSVM with the wallet program at a fresh id, a funded fee payer and a settable clock."""

    def __init__(self) -> None:
        from solders.litesvm import LiteSVM

        self.svm = LiteSVM()
        self.program_id = Keypair().pubkey()
        self.svm.add_program_from_file(self.program_id, str(PROGRAM_SO))
        self.fee_payer = Keypair()
        self.svm.airdrop(self.fee_payer.pubkey(), 100 * SOL)
        self.set_time(START_TIME)

    def set_time(self, unix_timestamp: int) -> None:
        clock = self.svm.get_clock()
        self.svm.set_clock(
            Clock(clock.slot, clock.epoch_start_timestamp, clock.epoch, clock.leader_schedule_epoch, unix_timestamp)
        )

    def send(self, instructions: Sequence[Instruction], signers: Sequence[Keypair], payer: Keypair | None = None) -> Sent:
        payer = payer or self.fee_payer
        keypairs = [payer, *[signer for signer in signers if signer.pubkey() != payer.pubkey()]]
        transaction = Transaction(keypairs, Message(list(instructions), payer.pubkey()), self.svm.latest_blockhash())
        result = self.svm.send_transaction(transaction)
        self.svm.expire_blockhash()
        if type(result).__name__ == "TransactionMetadata":
            return Sent(False, None, None, list(result.logs()), result.compute_units_consumed())
        error = result.err()
        code = None
        inner = getattr(error, "err", None)
        if inner is not None and type(inner).__name__ == "InstructionErrorCustom":
            code = inner.code
        return Sent(True, code, error, list(result.meta().logs()), result.meta().compute_units_consumed())

    def balance(self, key: Pubkey) -> int:
        return self.svm.get_balance(key) or 0

    def airdrop(self, key: Pubkey, lamports: int) -> None:
        self.svm.airdrop(key, lamports)

    def data(self, key: Pubkey) -> bytes:
        account = self.svm.get_account(key)
        return bytes(account.data) if account is not None else b""

    def config_of(self, creator: Pubkey) -> WalletConfig:
        return decode_config(self.data(config_address(self.program_id, creator)[0]))

    # --- tokens (real Token / Token-2022 / Associated Token program instructions)

    def create_mint(self, decimals: int = 6, token_program: Pubkey = TOKEN_PROGRAM_ID) -> tuple[Pubkey, Keypair]:
        mint, authority = Keypair(), Keypair()
        rent = self.svm.minimum_balance_for_rent_exemption(82)
        initialize_mint2 = Instruction(
            token_program,
            struct.pack("<BB32sB", 20, decimals, bytes(authority.pubkey()), 0),
            [AccountMeta(mint.pubkey(), False, True)],
        )
        params = CreateAccountParams(
            from_pubkey=self.fee_payer.pubkey(), to_pubkey=mint.pubkey(), lamports=rent, space=82, owner=token_program
        )
        sent = self.send([create_account(params), initialize_mint2], [mint])
        assert not sent.failed, sent.logs
        return mint.pubkey(), authority

    def mint_to(
        self, mint: Pubkey, authority: Keypair, owner: Pubkey, amount: int, token_program: Pubkey = TOKEN_PROGRAM_ID
    ) -> Pubkey:
        account = associated_token_address(owner, mint, token_program)
        create_ata = Instruction(
            ASSOCIATED_TOKEN_PROGRAM_ID,
            bytes([1]),
            [
                AccountMeta(self.fee_payer.pubkey(), True, True),
                AccountMeta(account, False, True),
                AccountMeta(owner, False, False),
                AccountMeta(mint, False, False),
                AccountMeta(Pubkey(bytes(32)), False, False),
                AccountMeta(token_program, False, False),
            ],
        )
        mint_to = Instruction(
            token_program,
            struct.pack("<BQ", 7, amount),
            [
                AccountMeta(mint, False, True),
                AccountMeta(account, False, True),
                AccountMeta(authority.pubkey(), True, False),
            ],
        )
        sent = self.send([create_ata, mint_to], [authority])
        assert not sent.failed, sent.logs
        return account

    def token_balance(self, account: Pubkey) -> int | None:
        data = self.data(account)
        return struct.unpack_from("<Q", data, 64)[0] if len(data) >= 72 else None


@dataclass
class Wallet:
    """A created smart wallet: its creator/owner key, config and vault addresses."""

    owner: Keypair
    config: Pubkey
    vault: Pubkey


@pytest.fixture
def chain() -> Chain:
    return Chain()


def make_wallet(
    chain: Chain,
    *,
    sol_per_transaction: int = SOL,
    sol_per_period: int = 2 * SOL,
    period_seconds: int = DAY,
    extra_limits: Sequence[Limit] = (),
    vault_lamports: int = 10 * SOL,
) -> Wallet:
    """Creates a wallet whose creator is its owner (spend + manage) with a SOL limit, and funds the vault."""
    owner = Keypair()
    limits = [(owner.pubkey(), Limit(SOL_MINT, sol_per_transaction, sol_per_period, period_seconds))]
    limits += [(owner.pubkey(), limit) for limit in extra_limits]
    instruction = create(
        chain.program_id,
        owner.pubkey(),
        chain.fee_payer.pubkey(),
        [Authority(owner.pubkey(), PERMISSION_SPEND | PERMISSION_MANAGE)],
        limits,
    )
    sent = chain.send([instruction], [owner])
    assert not sent.failed, sent.logs
    config, _ = config_address(chain.program_id, owner.pubkey())
    vault, _ = vault_address(chain.program_id, config)
    if vault_lamports:
        chain.airdrop(vault, vault_lamports)
    return Wallet(owner, config, vault)


@pytest.fixture
def wallet(chain: Chain) -> Wallet:
    return make_wallet(chain)
