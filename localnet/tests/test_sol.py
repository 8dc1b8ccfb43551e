"""SOL: airdrop, transfers, statuses, history, blockhash expiry, simulation."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from localnet.testing import Localnet
from localnet.tests.conftest import LAMPORTS_PER_SOL, rpc_call, rpc_raw, wait_for, wait_for_status
from localnet.tests.solana_py import SyncAsyncClient

FEE = 5_000


def transfer_transaction(payer: Keypair, destination: Pubkey, lamports: int, blockhash: Hash) -> Transaction:
    """A signed legacy SOL transfer."""
    instruction = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=destination, lamports=lamports))
    return Transaction([payer], Message([instruction], payer.pubkey()), blockhash)


def test_airdrop_credits_the_account(client: SyncAsyncClient) -> None:
    # given
    wallet = Keypair()
    # when
    signature = client.request_airdrop(wallet.pubkey(), 2 * LAMPORTS_PER_SOL).value
    wait_for_status(client, signature, "confirmed")
    # then
    assert client.get_balance(wallet.pubkey(), Confirmed).value == 2 * LAMPORTS_PER_SOL


def test_sol_transfer_moves_lamports_and_charges_the_fee(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    recipient = Keypair().pubkey()
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    # when
    signature = client.send_transaction(transfer_transaction(payer, recipient, 123_456_000, blockhash)).value
    wait_for_status(client, signature, "confirmed")
    # then
    assert client.get_balance(recipient, Confirmed).value == 123_456_000
    assert client.get_balance(payer.pubkey(), Confirmed).value == LAMPORTS_PER_SOL - 123_456_000 - FEE


def test_v0_transfer_sent_as_base58_lands(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    recipient = Keypair().pubkey()
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    instruction = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=recipient, lamports=7_770_000))
    transaction = VersionedTransaction(MessageV0.try_compile(payer.pubkey(), [instruction], [], blockhash), [payer])
    from localnet.codec import b58encode

    # when
    answer = rpc_call(localnet.url, "sendTransaction", [b58encode(bytes(transaction))])
    wait_for_status(client, transaction.signatures[0], "confirmed")
    # then
    assert answer["result"] == str(transaction.signatures[0])
    assert client.get_balance(recipient, Confirmed).value == 7_770_000
    fetched = client.get_transaction(transaction.signatures[0], max_supported_transaction_version=0).value
    assert fetched.transaction.version == 0
    refused = rpc_call(localnet.url, "getTransaction", [str(transaction.signatures[0]), {"commitment": "confirmed"}])
    assert refused["error"]["code"] == -32015


def test_status_walks_processed_confirmed_finalized(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    # when
    signature = client.send_transaction(
        transfer_transaction(payer, Keypair().pubkey(), 1_000_000, blockhash), TxOpts(skip_confirmation=True)
    ).value
    first = client.get_signature_statuses([signature]).value[0]
    confirmed = wait_for_status(client, signature, "confirmed")
    finalized = wait_for_status(client, signature, "finalized")
    # then
    assert str(first.confirmation_status).endswith(("Processed", "Confirmed"))
    assert confirmed.confirmations is not None
    assert confirmed.confirmations >= 1
    assert finalized.confirmations is None
    assert finalized.slot == first.slot
    assert finalized.err is None


def test_reads_at_finalized_lag_until_finalization(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    recipient = Keypair().pubkey()
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    # when
    signature = client.send_transaction(transfer_transaction(payer, recipient, 5_000_000, blockhash)).value
    landed = client.get_signature_statuses([signature]).value[0]
    before_finality = client.get_balance(recipient, Finalized)
    wait_for_status(client, signature, "finalized")
    after_finality = client.get_balance(recipient, Finalized)
    # then
    assert before_finality.value == 0
    assert before_finality.context.slot < landed.slot
    assert after_finality.value == 5_000_000
    assert after_finality.context.slot >= landed.slot


def test_get_transaction_meta_of_a_transfer(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    recipient = Keypair().pubkey()
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    # when
    signature = client.send_transaction(transfer_transaction(payer, recipient, 42_000_000, blockhash)).value
    status = wait_for_status(client, signature, "confirmed")
    fetched = client.get_transaction(signature, commitment=Confirmed).value
    # then
    meta = fetched.transaction.meta
    assert fetched.slot == status.slot
    assert meta.fee == FEE
    assert meta.err is None
    assert meta.pre_balances == [LAMPORTS_PER_SOL, 0, 1]
    assert meta.post_balances == [LAMPORTS_PER_SOL - 42_000_000 - FEE, 42_000_000, 1]
    assert meta.log_messages == [
        "Program 11111111111111111111111111111111 invoke [1]",
        "Program 11111111111111111111111111111111 success",
    ]
    assert fetched.block_time is not None


def test_get_transaction_encodings(localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    recipient = Keypair().pubkey()
    transaction = transfer_transaction(payer, recipient, 9_000_000, client.get_latest_blockhash(Processed).value.blockhash)
    signature = client.send_transaction(transaction).value
    wait_for_status(client, signature, "confirmed")
    # when
    as_base64 = rpc_call(localnet.url, "getTransaction", [str(signature), {"encoding": "base64", "commitment": "confirmed"}])
    parsed = client.get_transaction(signature, "jsonParsed", Confirmed).value
    # then
    assert base64.b64decode(as_base64["result"]["transaction"][0]) == bytes(transaction)
    instruction = parsed.transaction.transaction.message.instructions[0]
    assert instruction.parsed == {
        "info": {"destination": str(recipient), "lamports": 9_000_000, "source": str(payer.pubkey())},
        "type": "transfer",
    }


def test_get_transaction_refuses_processed_commitment(localnet: Localnet) -> None:
    # when
    answer = rpc_call(localnet.url, "getTransaction", [str(Signature.default()), {"commitment": "processed"}])
    # then
    assert answer["error"]["code"] == -32602


def test_failed_transaction_is_refused_by_preflight_with_logs(
    client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    transaction = transfer_transaction(
        payer, Keypair().pubkey(), 5 * LAMPORTS_PER_SOL, client.get_latest_blockhash(Processed).value.blockhash
    )
    # when
    with pytest.raises(RPCException) as refused:
        client.send_transaction(transaction)
    # then
    error = refused.value.args[0]
    assert error.message == "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1"
    assert error.data.logs[1] == f"Transfer: insufficient lamports {LAMPORTS_PER_SOL - FEE}, need {5 * LAMPORTS_PER_SOL}"
    assert client.get_balance(payer.pubkey(), Processed).value == LAMPORTS_PER_SOL
    assert client.get_signature_statuses([transaction.signatures[0]]).value == [None]


def test_failed_transaction_with_skip_preflight_lands_with_its_error(
    client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    transaction = transfer_transaction(
        payer, Keypair().pubkey(), 5 * LAMPORTS_PER_SOL, client.get_latest_blockhash(Processed).value.blockhash
    )
    # when
    signature = client.send_transaction(transaction, TxOpts(skip_preflight=True, skip_confirmation=True)).value
    status = wait_for_status(client, signature, "confirmed")
    # then
    assert status.err is not None
    assert client.get_balance(payer.pubkey(), Confirmed).value == LAMPORTS_PER_SOL - FEE
    meta = client.get_transaction(signature, commitment=Confirmed).value.transaction.meta
    assert meta.fee == FEE
    assert meta.post_balances[0] == LAMPORTS_PER_SOL - FEE


def test_duplicate_transaction_is_already_processed(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    recipient = Keypair().pubkey()
    transaction = transfer_transaction(payer, recipient, 1_000_000, client.get_latest_blockhash(Processed).value.blockhash)
    client.send_transaction(transaction, TxOpts(skip_confirmation=True))
    # when
    with pytest.raises(RPCException) as refused:
        client.send_transaction(transaction, TxOpts(skip_confirmation=True))
    # then
    assert refused.value.args[0].message == "Transaction simulation failed: This transaction has already been processed"
    assert client.get_balance(recipient, Processed).value == 1_000_000


def test_expired_blockhash_is_refused(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a fast chain and a blockhash that has aged past its 150 blocks
    node = fresh_localnet(slot_ms=10)
    fast = SyncAsyncClient(node.url, commitment=Confirmed)
    payer = Keypair()
    wait_for_status(fast, fast.request_airdrop(payer.pubkey(), LAMPORTS_PER_SOL).value, "confirmed")
    latest = fast.get_latest_blockhash(Processed).value
    wait_for(lambda: fast.get_block_height(Processed).value > latest.last_valid_block_height)
    expired = transfer_transaction(payer, Keypair().pubkey(), 1_000_000, latest.blockhash)
    # when
    with pytest.raises(RPCException) as refused:
        fast.send_transaction(expired)
    skipped = fast.send_transaction(expired, TxOpts(skip_preflight=True, skip_confirmation=True)).value
    # then
    assert refused.value.args[0].message == "Transaction simulation failed: Blockhash not found"
    assert (
        rpc_call(node.url, "isBlockhashValid", [str(latest.blockhash), {"commitment": "processed"}])["result"]["value"]
        is False
    )
    assert skipped == expired.signatures[0]
    assert fast.get_signature_statuses([skipped]).value == [None]
    assert fast.get_balance(payer.pubkey(), Processed).value == LAMPORTS_PER_SOL


def test_signatures_for_address_pages_newest_first(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given five transfers from one payer
    payer = funded(LAMPORTS_PER_SOL)
    signatures = []
    for amount in range(1, 6):
        blockhash = client.get_latest_blockhash(Processed).value.blockhash
        transaction = transfer_transaction(payer, Keypair().pubkey(), amount * 1_000_000, blockhash)
        signature = client.send_transaction(transaction).value
        signatures.append(signature)
    wait_for_status(client, signatures[-1], "confirmed")
    # when
    first_page = client.get_signatures_for_address(payer.pubkey(), limit=2, commitment=Confirmed).value
    second_page = client.get_signatures_for_address(
        payer.pubkey(), before=first_page[-1].signature, limit=2, commitment=Confirmed
    ).value
    until = client.get_signatures_for_address(payer.pubkey(), until=signatures[1], commitment=Confirmed).value
    everything = client.get_signatures_for_address(payer.pubkey(), commitment=Confirmed).value
    # then (the airdrop is the oldest entry)
    assert [entry.signature for entry in first_page] == [signatures[4], signatures[3]]
    assert [entry.signature for entry in second_page] == [signatures[2], signatures[1]]
    assert [entry.signature for entry in until] == [signatures[4], signatures[3], signatures[2]]
    assert len(everything) == 6


def test_simulate_transaction_reports_logs_and_changes_nothing(
    client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    recipient = Keypair().pubkey()
    transaction = transfer_transaction(payer, recipient, 10_000_000, client.get_latest_blockhash(Processed).value.blockhash)
    # when
    simulated = client.simulate_transaction(
        VersionedTransaction.from_legacy(transaction), sig_verify=True, commitment=Processed
    ).value
    # then
    assert simulated.err is None
    assert simulated.units_consumed == 150
    assert client.get_balance(recipient, Processed).value == 0
    assert client.get_signature_statuses([transaction.signatures[0]]).value == [None]


def test_simulate_with_replaced_blockhash_returns_the_replacement(
    localnet: Localnet, funded: Callable[[int], Keypair]
) -> None:
    # given a transaction signed over an unknown blockhash
    payer = funded(LAMPORTS_PER_SOL)
    transaction = transfer_transaction(payer, Keypair().pubkey(), 10_000_000, Hash.new_unique())
    encoded = base64.b64encode(bytes(transaction)).decode()
    # when
    plain = rpc_call(localnet.url, "simulateTransaction", [encoded, {"encoding": "base64"}])
    replaced = rpc_call(
        localnet.url,
        "simulateTransaction",
        [encoded, {"encoding": "base64", "replaceRecentBlockhash": True, "innerInstructions": True}],
    )
    conflicting = rpc_call(
        localnet.url,
        "simulateTransaction",
        [encoded, {"encoding": "base64", "replaceRecentBlockhash": True, "sigVerify": True}],
    )
    # then
    assert plain["result"]["value"]["err"] == "BlockhashNotFound"
    assert replaced["result"]["value"]["err"] is None
    assert replaced["result"]["value"]["innerInstructions"] == []
    value = replaced["result"]["value"]["replacementBlockhash"]
    assert value["lastValidBlockHeight"] >= replaced["result"]["context"]["slot"] + 150
    assert conflicting["error"]["code"] == -32602


def test_fee_for_message(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer = funded(LAMPORTS_PER_SOL)
    message = Message.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1))],
        payer.pubkey(),
        client.get_latest_blockhash(Processed).value.blockhash,
    )
    # when
    fee = client.get_fee_for_message(message, Processed).value
    # then
    assert fee == FEE


def test_unknown_signature_has_no_status(client: SyncAsyncClient) -> None:
    # when
    statuses = client.get_signature_statuses([Signature.default()], search_transaction_history=True).value
    # then
    assert statuses == [None]


def test_memo_shows_in_signatures_for_address(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given a transfer carrying an SPL memo
    from spl.memo.constants import MEMO_PROGRAM_ID
    from spl.memo.instructions import create_memo
    from spl.memo.models import MemoParams

    payer = funded(LAMPORTS_PER_SOL)
    instructions = [
        transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=5_000_000)),
        create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=payer.pubkey(), message=b"invoice 42")),
    ]
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    transaction = Transaction([payer], Message(instructions, payer.pubkey()), blockhash)
    # when
    signature = client.send_transaction(transaction).value
    wait_for_status(client, signature, "confirmed")
    newest = client.get_signatures_for_address(payer.pubkey(), limit=1, commitment=Confirmed).value[0]
    parsed = client.get_transaction(signature, "jsonParsed", Confirmed).value.transaction.transaction.message.instructions
    # then
    assert newest.signature == signature
    assert newest.memo == "[10] invoice 42"
    assert parsed[1].parsed == "invoice 42"
    assert parsed[1].program == "spl-memo"


def test_get_transaction_at_confirmed_is_null_while_only_processed(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a slow chain (1 s slots), so a transaction stays "processed" long enough to look at it
    node = fresh_localnet(slot_ms=1000)
    slow = SyncAsyncClient(node.url, commitment=Confirmed)
    payer = Keypair()
    wait_for_status(slow, slow.request_airdrop(payer.pubkey(), LAMPORTS_PER_SOL).value, "confirmed")
    # when a transfer is sent and, in one batch, its status and its confirmed transaction are read
    for amount in (1, 2, 3):  # retried only if a slot boundary falls between sending and reading
        transaction = transfer_transaction(
            payer, Keypair().pubkey(), amount * 1_000_000, slow.get_latest_blockhash(Processed).value.blockhash
        )
        signature = slow.send_transaction(transaction, TxOpts(skip_confirmation=True)).value
        status, fetched = rpc_raw(
            node.url,
            [
                {"jsonrpc": "2.0", "id": 1, "method": "getSignatureStatuses", "params": [[str(signature)]]},
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "getTransaction",
                    "params": [str(signature), {"commitment": "confirmed"}],
                },
            ],
        ).json()
        if status["result"]["value"][0]["confirmationStatus"] == "processed":
            break
    later = wait_for_status(slow, signature, "confirmed")
    # then
    assert status["result"]["value"][0]["confirmationStatus"] == "processed"
    assert fetched["result"] is None
    assert slow.get_transaction(signature, commitment=Confirmed).value.slot == later.slot


def test_priority_fee_is_charged_and_reported(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given a transfer paying 1,000 micro-lamports per compute unit with a limit of 200,000 units
    from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price

    payer = funded(LAMPORTS_PER_SOL)
    instructions = [
        set_compute_unit_limit(200_000),
        set_compute_unit_price(1_000),
        transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=10_000_000)),
    ]
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    # when
    signature = client.send_transaction(Transaction([payer], Message(instructions, payer.pubkey()), blockhash)).value
    status = wait_for_status(client, signature, "confirmed")
    meta = client.get_transaction(signature, commitment=Confirmed).value.transaction.meta
    fees = {entry.slot: entry.prioritization_fee for entry in client.get_recent_prioritization_fees().value}
    # then: 5,000 per signature + 200,000 units x 1,000 micro-lamports = 5,200 lamports
    assert meta.fee == 5_200
    assert client.get_balance(payer.pubkey(), Confirmed).value == LAMPORTS_PER_SOL - 10_000_000 - 5_200
    assert fees[status.slot] == 1_000


def test_v0_transaction_with_an_address_lookup_table(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given a lookup table holding the recipient, created and extended on chain
    from solders.address_lookup_table_account import AddressLookupTable, AddressLookupTableAccount
    from solders.system_program import create_lookup_table, extend_lookup_table

    payer = funded(LAMPORTS_PER_SOL)
    recipient = Keypair().pubkey()
    recent_slot = client.get_slot(Processed).value - 1
    create, table = create_lookup_table(
        {"authority_address": payer.pubkey(), "payer_address": payer.pubkey(), "recent_slot": recent_slot}
    )
    extend = extend_lookup_table(
        {
            "payer_address": payer.pubkey(),
            "lookup_table_address": table,
            "authority_address": payer.pubkey(),
            "new_addresses": [recipient],
        }
    )
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    setup = client.send_transaction(Transaction([payer], Message([create, extend], payer.pubkey()), blockhash)).value
    setup_slot = wait_for_status(client, setup, "confirmed").slot
    wait_for(lambda: client.get_slot(Processed).value > setup_slot + 1)
    addresses = AddressLookupTable.deserialize(client.get_account_info(table, Processed).value.data).addresses
    instruction = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=recipient, lamports=4_321_000))
    message = MessageV0.try_compile(
        payer.pubkey(),
        [instruction],
        [AddressLookupTableAccount(table, list(addresses))],
        client.get_latest_blockhash(Processed).value.blockhash,
    )
    transaction = VersionedTransaction(message, [payer])
    # when
    signature = client.send_transaction(transaction).value
    wait_for_status(client, signature, "confirmed")
    fetched = client.get_transaction(signature, "json", Confirmed, max_supported_transaction_version=0).value
    # then
    assert list(addresses) == [recipient]
    assert len(message.address_table_lookups) == 1
    assert client.get_balance(recipient, Confirmed).value == 4_321_000
    assert fetched.transaction.meta.loaded_addresses.writable == [recipient]
    assert fetched.transaction.meta.post_balances[-1] == 4_321_000
    assert fetched.transaction.version == 0


def test_transfer_leaving_a_new_account_below_rent_exemption_is_refused(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given 890,880 lamports: the rent-exempt minimum of an account without data
    payer = funded(LAMPORTS_PER_SOL)
    recipient = Keypair().pubkey()
    minimum = client.get_minimum_balance_for_rent_exemption(0).value
    transaction = transfer_transaction(payer, recipient, minimum - 1, client.get_latest_blockhash(Processed).value.blockhash)
    # when a transfer would create the recipient one lamport short of it
    with pytest.raises(RPCException) as refused:
        client.send_transaction(transaction)
    # then it is refused like a validator refuses it, and nothing moved
    encoded = base64.b64encode(bytes(transaction)).decode()
    answer = rpc_call(localnet.url, "sendTransaction", [encoded, {"encoding": "base64"}])
    assert minimum == 890_880
    assert refused.value.args[0].message == (
        "Transaction simulation failed: Transaction results in an account (1) with insufficient funds for rent"
    )
    assert answer["error"]["code"] == -32002
    assert answer["error"]["data"]["err"] == {"InsufficientFundsForRent": {"account_index": 1}}
    assert client.get_balance(payer.pubkey(), Processed).value == LAMPORTS_PER_SOL
    assert client.get_balance(recipient, Processed).value == 0


def test_default_compute_limit_of_builtin_instructions_prices_the_priority_fee(
    client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given a price of 1,000 micro-lamports per unit and no limit: a builtin-only transaction (compute
    # budget + system transfer) gets 3,000 units per instruction, not 200,000 (agave 4, SIMD-0170)
    from solders.compute_budget import set_compute_unit_price

    payer = funded(LAMPORTS_PER_SOL)
    instructions = [
        set_compute_unit_price(1_000),
        transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=10_000_000)),
    ]
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    message = Message.new_with_blockhash(instructions, payer.pubkey(), blockhash)
    # when
    quoted = client.get_fee_for_message(message, Processed).value
    signature = client.send_transaction(Transaction([payer], message, blockhash)).value
    wait_for_status(client, signature, "confirmed")
    meta = client.get_transaction(signature, commitment=Confirmed).value.transaction.meta
    # then: 5,000 per signature + 6,000 units x 1,000 micro-lamports = 5,006 lamports
    assert (quoted, meta.fee) == (5_006, 5_006)
    assert client.get_balance(payer.pubkey(), Confirmed).value == LAMPORTS_PER_SOL - 10_000_000 - 5_006
