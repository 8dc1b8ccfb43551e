"""``execute``: SOL and token transfers out of the vault, within the authority's limits, the spent
counters updated with the transfers."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from programs.wallet.tests.conftest import DAY, SOL, SOLANA_FEE, START_TIME, Chain, Wallet, make_wallet
from wallets.program import (
    SOL_MINT,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    Limit,
    SolTransfer,
    TokenTransfer,
    associated_token_address,
    execute,
)

TOKEN_ACCOUNT_RENT = 2_039_280  # lamports, a 165-byte token account


def test_sol_transfer_moves_lamports_from_the_vault_and_counts_them(chain: Chain, wallet: Wallet) -> None:
    # given a funded vault and a recipient
    recipient = Keypair().pubkey()
    vault_before = chain.balance(wallet.vault)
    payer_before = chain.balance(chain.fee_payer.pubkey())

    # when the owner sends 0.4 SOL
    sent = chain.send(
        [execute(chain.program_id, wallet.owner.pubkey(), wallet.owner.pubkey(), [SolTransfer(recipient, 400_000_000)])],
        [wallet.owner],
    )

    # then the lamports moved from the vault, the fee payer paid only the fees, the counter moved
    assert not sent.failed, sent.logs
    assert chain.balance(recipient) == 400_000_000
    assert chain.balance(wallet.vault) == vault_before - 400_000_000
    assert chain.balance(chain.fee_payer.pubkey()) == payer_before - 2 * SOLANA_FEE
    config = chain.config_of(wallet.owner.pubkey())
    assert config.nonce == 0  # the nonce counts passkey-approved actions only
    assert config.limit(wallet.owner.pubkey(), SOL_MINT).spent == 400_000_000


@pytest.mark.parametrize("token_program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["token", "token-2022"])
def test_token_transfer_creates_the_recipient_account_with_rent_from_the_payer(chain: Chain, token_program: Pubkey) -> None:
    # given a mint, a wallet allowed 50 tokens per transaction, holding 100
    mint, mint_authority = chain.create_mint(decimals=6, token_program=token_program)
    wallet = make_wallet(chain, extra_limits=[Limit(mint, 50_000_000, 80_000_000, DAY)])
    source = chain.mint_to(mint, mint_authority, wallet.vault, 100_000_000, token_program)
    recipient = Keypair().pubkey()
    recipient_account = associated_token_address(recipient, mint, token_program)
    payer_before = chain.balance(chain.fee_payer.pubkey())

    # when the owner sends 12.5 tokens to someone without a token account
    transfer = TokenTransfer(mint, recipient, 12_500_000, 6, chain.fee_payer.pubkey(), token_program)
    sent = chain.send([execute(chain.program_id, wallet.owner.pubkey(), wallet.owner.pubkey(), [transfer])], [wallet.owner])

    # then the recipient's account exists with the tokens; the payer paid fees + its rent only
    assert not sent.failed, sent.logs
    assert chain.token_balance(recipient_account) == 12_500_000
    assert chain.token_balance(source) == 87_500_000
    assert chain.svm.get_account(recipient_account).owner == token_program
    rent = chain.svm.minimum_balance_for_rent_exemption(len(chain.data(recipient_account)))  # Token-2022: 170 bytes
    assert rent == (TOKEN_ACCOUNT_RENT if token_program == TOKEN_PROGRAM_ID else 2_074_080)
    assert chain.balance(chain.fee_payer.pubkey()) == payer_before - 2 * SOLANA_FEE - rent
    assert chain.config_of(wallet.owner.pubkey()).limit(wallet.owner.pubkey(), mint).spent == 12_500_000


def test_token_transfer_to_an_existing_account_costs_the_payer_only_fees(chain: Chain) -> None:
    # given a recipient who already has a token account
    mint, mint_authority = chain.create_mint()
    wallet = make_wallet(chain, extra_limits=[Limit(mint, 50_000_000, 80_000_000, DAY)])
    chain.mint_to(mint, mint_authority, wallet.vault, 100_000_000)
    recipient = Keypair().pubkey()
    recipient_account = chain.mint_to(mint, mint_authority, recipient, 1)
    payer_before = chain.balance(chain.fee_payer.pubkey())

    # when the owner pays them
    transfer = TokenTransfer(mint, recipient, 2_000_000, 6, chain.fee_payer.pubkey())
    sent = chain.send([execute(chain.program_id, wallet.owner.pubkey(), wallet.owner.pubkey(), [transfer])], [wallet.owner])

    # then
    assert not sent.failed, sent.logs
    assert chain.token_balance(recipient_account) == 2_000_001
    assert chain.balance(chain.fee_payer.pubkey()) == payer_before - 2 * SOLANA_FEE


def test_one_execute_carries_several_transfers_under_one_authorization(chain: Chain) -> None:
    # given a wallet with SOL and two tokens (one of them Token-2022)
    usdc, usdc_authority = chain.create_mint(decimals=6)
    points, points_authority = chain.create_mint(decimals=2, token_program=TOKEN_2022_PROGRAM_ID)
    wallet = make_wallet(chain, extra_limits=[Limit(usdc, 10**9, 10**9, DAY), Limit(points, 10**6, 10**6, DAY)])
    chain.mint_to(usdc, usdc_authority, wallet.vault, 10**8)
    chain.mint_to(points, points_authority, wallet.vault, 10**5, TOKEN_2022_PROGRAM_ID)
    alice, bob = Keypair().pubkey(), Keypair().pubkey()
    payer = chain.fee_payer.pubkey()

    # when one execute pays alice SOL and USDC, and bob USDC and points
    transfers = [
        SolTransfer(alice, 100_000_000),
        TokenTransfer(usdc, alice, 1_000_000, 6, payer),
        TokenTransfer(usdc, bob, 2_000_000, 6, payer),
        TokenTransfer(points, bob, 300, 2, payer, TOKEN_2022_PROGRAM_ID),
    ]
    sent = chain.send([execute(chain.program_id, wallet.owner.pubkey(), wallet.owner.pubkey(), transfers)], [wallet.owner])

    # then every transfer landed and each mint's counter holds its sum
    assert not sent.failed, sent.logs
    assert chain.balance(alice) == 100_000_000
    assert chain.token_balance(associated_token_address(alice, usdc)) == 1_000_000
    assert chain.token_balance(associated_token_address(bob, usdc)) == 2_000_000
    assert chain.token_balance(associated_token_address(bob, points, TOKEN_2022_PROGRAM_ID)) == 300
    config = chain.config_of(wallet.owner.pubkey())
    owner = wallet.owner.pubkey()
    assert [config.limit(owner, m).spent for m in (SOL_MINT, usdc, points)] == [100_000_000, 3_000_000, 300]
    assert config.nonce == 0  # the nonce counts passkey-approved actions only


def test_a_refused_transfer_in_a_batch_undoes_the_whole_batch(chain: Chain, wallet: Wallet) -> None:
    # given a 1 SOL per-transaction cap
    alice, bob = Keypair().pubkey(), Keypair().pubkey()
    vault_before = chain.balance(wallet.vault)

    # when a batch's second transfer takes the sum over the cap
    transfers = [SolTransfer(alice, 600_000_000), SolTransfer(bob, 400_000_001)]
    sent = chain.send([execute(chain.program_id, wallet.owner.pubkey(), wallet.owner.pubkey(), transfers)], [wallet.owner])

    # then nothing moved and nothing was counted
    assert sent.error_code == 6013
    assert (chain.balance(alice), chain.balance(bob), chain.balance(wallet.vault)) == (0, 0, vault_before)
    config = chain.config_of(wallet.owner.pubkey())
    assert config.limit(wallet.owner.pubkey(), SOL_MINT).spent == 0
    assert config.nonce == 0
    assert config.limit(wallet.owner.pubkey(), SOL_MINT).period_start == START_TIME


def test_sol_amount_is_limited_by_the_vault_balance(chain: Chain) -> None:
    # given a vault with 0.5 SOL and generous limits
    wallet = make_wallet(chain, vault_lamports=SOL // 2)
    recipient = Keypair().pubkey()

    # when the owner sends more than the vault holds
    sent = chain.send(
        [execute(chain.program_id, wallet.owner.pubkey(), wallet.owner.pubkey(), [SolTransfer(recipient, SOL)])],
        [wallet.owner],
    )

    # then the System program refuses it and nothing moved
    assert sent.failed
    assert chain.balance(recipient) == 0
    assert chain.balance(wallet.vault) == SOL // 2
    assert chain.config_of(wallet.owner.pubkey()).limit(wallet.owner.pubkey(), SOL_MINT).spent == 0
