"""The ledger survives ``kill -9``: accounts, tokens, history, slots."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.models import TokenAccountOpts, TxOpts
from solders.keypair import Keypair
from spl.token.constants import TOKEN_PROGRAM_ID

from localnet.testing import Localnet
from localnet.tests.conftest import LAMPORTS_PER_SOL, rpc_call, wait_for_status
from localnet.tests.solana_py import SyncAsyncClient, Token
from localnet.tests.test_sol import FEE, transfer_transaction


def test_restart_after_kill_keeps_everything(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a chain with SOL, a mint, token accounts and history
    node = fresh_localnet()
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    payer = Keypair()
    airdrop = client.request_airdrop(payer.pubkey(), 5 * LAMPORTS_PER_SOL).value
    wait_for_status(client, airdrop, "confirmed")
    recipient = Keypair().pubkey()
    sent = client.send_transaction(
        transfer_transaction(payer, recipient, 1_234_567, client.get_latest_blockhash(Processed).value.blockhash)
    ).value
    opts = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)
    token = Token.create_mint(client, payer, payer.pubkey(), 6, TOKEN_PROGRAM_ID)
    account = token.create_associated_token_account(payer.pubkey())
    minted = token.mint_to(account, payer, 42_000_000, opts=opts).value
    wait_for_status(client, minted, "confirmed")
    genesis = client.get_genesis_hash().value
    payer_balance = client.get_balance(payer.pubkey(), Processed).value
    history = [entry.signature for entry in client.get_signatures_for_address(payer.pubkey(), commitment=Confirmed).value]
    slot_before = client.get_slot(Processed).value
    # when the process is killed without warning and started again on the same ledger
    node.kill()
    node.restart()
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    # then
    assert client.get_genesis_hash().value == genesis
    assert client.get_slot(Processed).value > slot_before
    assert client.get_balance(payer.pubkey(), Processed).value == payer_balance
    assert client.get_balance(recipient, Processed).value == 1_234_567
    assert client.get_token_account_balance(account, Processed).value.amount == "42000000"
    assert client.get_token_supply(token.pubkey, Processed).value.amount == "42000000"
    holdings = client.get_token_accounts_by_owner(payer.pubkey(), TokenAccountOpts(mint=token.pubkey), Processed).value
    assert [entry.pubkey for entry in holdings] == [account]
    assert [
        entry.signature for entry in client.get_signatures_for_address(payer.pubkey(), commitment=Confirmed).value
    ] == history
    assert client.get_transaction(sent, commitment=Confirmed).value.transaction.meta.fee == FEE
    assert client.get_signature_statuses([sent]).value[0].err is None
    assert rpc_call(node.url, "getTransactionCount")["result"] == 5


def test_transactions_work_after_restart_and_replays_are_refused(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a landed transfer, then a crash and restart
    node = fresh_localnet()
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    payer = Keypair()
    wait_for_status(client, client.request_airdrop(payer.pubkey(), LAMPORTS_PER_SOL).value, "confirmed")
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    first = transfer_transaction(payer, Keypair().pubkey(), 1_000_000, blockhash)
    client.send_transaction(first, TxOpts(skip_confirmation=True))
    node.kill()
    node.restart()
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    # when
    replay = rpc_call(
        node.url, "sendTransaction", [__import__("base64").b64encode(bytes(first)).decode(), {"encoding": "base64"}]
    )
    second = client.send_transaction(
        transfer_transaction(payer, Keypair().pubkey(), 2_000_000, client.get_latest_blockhash(Processed).value.blockhash)
    ).value
    wait_for_status(client, second, "confirmed")
    # then
    assert replay["error"]["message"] == "Transaction simulation failed: This transaction has already been processed"
    assert client.get_balance(payer.pubkey(), Confirmed).value == LAMPORTS_PER_SOL - 1_000_000 - 2_000_000 - 2 * FEE


def test_commitment_reads_survive_a_restart(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a transfer that is confirmed but not finalized when the chain crashes
    node = fresh_localnet(slot_ms=100)
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    payer = Keypair()
    wait_for_status(client, client.request_airdrop(payer.pubkey(), LAMPORTS_PER_SOL).value, "confirmed")
    recipient = Keypair().pubkey()
    signature = client.send_transaction(
        transfer_transaction(payer, recipient, 70_000_000, client.get_latest_blockhash(Processed).value.blockhash)
    ).value
    wait_for_status(client, signature, "confirmed")
    node.kill()
    # when
    node.restart()
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    finalized_after_restart = client.get_balance(recipient, Finalized).value
    processed_after_restart = client.get_balance(recipient, Processed).value
    wait_for_status(client, signature, "finalized", timeout=30)
    # then
    assert finalized_after_restart == 0
    assert processed_after_restart == 70_000_000
    assert client.get_balance(recipient, Finalized).value == 70_000_000


def test_second_process_on_the_same_ledger_is_refused(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a running localnet
    node = fresh_localnet()
    # when a second one is started on its ledger
    second = subprocess.run(
        [sys.executable, "-m", "localnet", "--port", "0", "--ledger", str(node.ledger_dir)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    # then
    assert second.returncode == 3
    assert b"is in use by another localnet" in second.stderr
    assert second.stdout == b""
    assert rpc_call(node.url, "getHealth")["result"] == "ok"
