"""Blocks: ``getBlock`` (details, encodings, versions), ``getBlocks``, ``getBlocksWithLimit``,
``getBlockTime``, ``getBlockCommitment``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from solana.rpc.commitment import Processed
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.codec import b58encode
from localnet.testing import Localnet
from localnet.tests.conftest import LAMPORTS_PER_SOL, rpc_call, wait_for, wait_for_status
from localnet.tests.solana_py import SyncAsyncClient
from localnet.tests.test_sol import transfer_transaction


def landed_transfer(client: SyncAsyncClient, payer: Keypair, lamports: int = 2_000_000) -> tuple[Signature, int, str]:
    """A confirmed transfer: (signature, its slot, the blockhash getLatestBlockhash gave for the slot
    it was signed at)."""
    latest = client.get_latest_blockhash(Processed)
    transaction = transfer_transaction(payer, Keypair().pubkey(), lamports, latest.value.blockhash)
    signature = client.send_transaction(transaction).value
    status = wait_for_status(client, signature, "confirmed")
    return signature, status.slot, str(latest.value.blockhash)


@pytest.mark.parametrize("encoding", ["json", "jsonParsed", "base64", "base58"])
def test_block_transaction_matches_get_transaction(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair], encoding: str
) -> None:
    # given a landed transfer
    signature, slot, _blockhash = landed_transfer(client, funded(LAMPORTS_PER_SOL))
    config = {"encoding": encoding, "commitment": "confirmed", "maxSupportedTransactionVersion": 0}
    # when its block and the transaction itself are read
    block = rpc_call(localnet.url, "getBlock", [slot, config])["result"]
    single = rpc_call(localnet.url, "getTransaction", [str(signature), config])["result"]
    # then the block holds exactly what getTransaction shows
    entries = [
        entry
        for entry in block["transactions"]
        if (
            entry["transaction"]["signatures"][0] == str(signature)
            if encoding in ("json", "jsonParsed")
            else entry["transaction"] == single["transaction"]
        )
    ]
    assert entries == [{"meta": single["meta"], "transaction": single["transaction"], "version": "legacy"}]
    assert (block["blockTime"], block["blockHeight"]) == (single["blockTime"], slot)


def test_block_header_chains_to_its_parent_and_to_get_latest_blockhash(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given the blockhash getLatestBlockhash gave at slot S (processed)
    latest = rpc_call(localnet.url, "getLatestBlockhash", [{"commitment": "processed"}])["result"]
    slot = latest["context"]["slot"]
    wait_for(lambda: rpc_call(localnet.url, "getSlot", [{"commitment": "confirmed"}])["result"] >= slot)
    # when blocks S - 1 and S are read
    parent = rpc_call(localnet.url, "getBlock", [slot - 1, {"commitment": "confirmed", "transactionDetails": "none"}])
    block = rpc_call(localnet.url, "getBlock", [slot, {"commitment": "confirmed", "transactionDetails": "none"}])
    # then S's blockhash is that one and it chains to S - 1
    assert block["result"]["blockhash"] == latest["value"]["blockhash"]
    assert block["result"]["previousBlockhash"] == parent["result"]["blockhash"]
    assert (block["result"]["parentSlot"], block["result"]["blockHeight"]) == (slot - 1, slot)
    assert block["result"]["blockTime"] == rpc_call(localnet.url, "getBlockTime", [slot])["result"]
    assert "transactions" not in block["result"]
    assert "signatures" not in block["result"]
    assert block["result"]["rewards"] == []


def test_block_signatures_and_no_rewards(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given a landed transfer
    signature, slot, _blockhash = landed_transfer(client, funded(LAMPORTS_PER_SOL))
    # when its block is read with signatures only and rewards off
    block = rpc_call(
        localnet.url,
        "getBlock",
        [slot, {"commitment": "confirmed", "transactionDetails": "signatures", "rewards": False}],
    )["result"]
    # then
    assert str(signature) in block["signatures"]
    assert "rewards" not in block
    assert "transactions" not in block


def test_solana_py_parses_get_block(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given a landed transfer
    signature, slot, _blockhash = landed_transfer(client, funded(LAMPORTS_PER_SOL))
    # when solana-py reads its block
    block = client.get_block(slot, encoding="json", max_supported_transaction_version=0).value
    # then the typed block has it
    assert block is not None
    assert block.block_height == slot
    assert signature in [entry.transaction.signatures[0] for entry in block.transactions]
    assert client.get_block_time(slot).value == block.block_time


def test_v0_transaction_in_a_block_needs_max_supported_version(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given a v0 transfer in a block
    payer = funded(LAMPORTS_PER_SOL)
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    instruction = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=2_000_000))
    transaction = VersionedTransaction(MessageV0.try_compile(payer.pubkey(), [instruction], [], blockhash), [payer])
    rpc_call(localnet.url, "sendTransaction", [b58encode(bytes(transaction))])
    slot = wait_for_status(client, transaction.signatures[0], "confirmed").slot
    # when the block is read without / with maxSupportedTransactionVersion
    refused = rpc_call(localnet.url, "getBlock", [slot, {"commitment": "confirmed"}])
    accepted = rpc_call(localnet.url, "getBlock", [slot, {"commitment": "confirmed", "maxSupportedTransactionVersion": 0}])
    # then
    assert refused["error"]["code"] == -32015
    versions = {entry["transaction"]["signatures"][0]: entry["version"] for entry in accepted["result"]["transactions"]}
    assert versions[str(transaction.signatures[0])] == 0


def test_blocks_not_reached_are_not_available(localnet: Localnet) -> None:
    # given the current slots
    confirmed = rpc_call(localnet.url, "getSlot", [{"commitment": "confirmed"}])["result"]
    # when blocks beyond them, or at processed, are asked for
    future = rpc_call(localnet.url, "getBlock", [confirmed + 1000, {"commitment": "confirmed"}])
    processed = rpc_call(localnet.url, "getBlock", [confirmed, {"commitment": "processed"}])
    finalized_too_far = rpc_call(localnet.url, "getBlock", [confirmed + 1000])
    # then
    assert future["error"] == {"code": -32004, "message": f"Block not available for slot {confirmed + 1000}"}
    assert processed["error"]["code"] == -32602
    assert finalized_too_far["error"]["code"] == -32004


def test_get_blocks_and_get_blocks_with_limit(localnet: Localnet) -> None:
    # given a chain past slot 40
    wait_for(lambda: rpc_call(localnet.url, "getSlot", [{"commitment": "confirmed"}])["result"] >= 40)
    # when
    blocks = rpc_call(localnet.url, "getBlocks", [5, 9, {"commitment": "confirmed"}])["result"]
    limited = rpc_call(localnet.url, "getBlocksWithLimit", [5, 3, {"commitment": "confirmed"}])["result"]
    open_ended = rpc_call(localnet.url, "getBlocks", [5])["result"]
    too_wide = rpc_call(localnet.url, "getBlocks", [0, 600_000])
    # then every slot is a block
    assert blocks == [5, 6, 7, 8, 9]
    assert limited == [5, 6, 7]
    assert open_ended[:3] == [5, 6, 7]
    assert open_ended == list(range(5, open_ended[-1] + 1))
    assert too_wide["error"] == {"code": -32602, "message": "Invalid params: Slot range too large; max 500000"}


def test_block_commitment(localnet: Localnet) -> None:
    # given a slot 40 behind the tip and a slot not produced yet
    slot = wait_for(
        lambda: (value := rpc_call(localnet.url, "getSlot", [{"commitment": "processed"}])["result"]) >= 40 and value
    )
    # when
    old = rpc_call(localnet.url, "getBlockCommitment", [slot - 40])["result"]
    future = rpc_call(localnet.url, "getBlockCommitment", [slot + 10_000])["result"]
    # then the old block has all the stake at the deepest lockout; the future one has none
    assert old["commitment"][31] == old["totalStake"]
    assert sum(old["commitment"]) == old["totalStake"]
    assert future == {"commitment": None, "totalStake": old["totalStake"]}
