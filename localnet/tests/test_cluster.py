"""Cluster-level methods and the JSON-RPC envelope."""

from __future__ import annotations

from solana.rpc.commitment import Finalized, Processed

from localnet.testing import Localnet
from localnet.tests.conftest import HTTP, rpc_call, rpc_raw, wait_for
from localnet.tests.solana_py import SyncAsyncClient


def test_health_answers_ok(localnet: Localnet) -> None:
    # when
    response = HTTP.get(f"{localnet.url}/health")
    # then
    assert (response.status_code, response.text) == (200, "ok")


def test_get_health_version_and_genesis_hash(localnet: Localnet, client: SyncAsyncClient) -> None:
    # when
    health = rpc_call(localnet.url, "getHealth")
    version = client.get_version().value
    genesis = client.get_genesis_hash().value
    # then
    assert health["result"] == "ok"
    assert version.solana_core == "2.2.7"
    assert client.get_genesis_hash().value == genesis


def test_slots_advance_and_commitments_trail(client: SyncAsyncClient) -> None:
    # given
    first = client.get_slot(Processed).value
    # when
    wait_for(lambda: client.get_slot(Processed).value >= first + 3)
    processed = client.get_slot(Processed).value
    finalized = client.get_slot(Finalized).value
    # then
    assert processed >= first + 3
    assert finalized <= processed - 32 or finalized == 0
    assert client.get_block_height(Processed).value >= processed


def test_latest_blockhash_is_valid_for_150_blocks(localnet: Localnet, client: SyncAsyncClient) -> None:
    # when
    answer = client.get_latest_blockhash(Processed)
    # then
    assert answer.value.last_valid_block_height == answer.context.slot + 150
    valid = rpc_call(localnet.url, "isBlockhashValid", [str(answer.value.blockhash), {"commitment": "processed"}])
    assert valid["result"]["value"] is True


def test_epoch_info_and_rent(client: SyncAsyncClient) -> None:
    # when
    info = client.get_epoch_info(Processed).value
    rent = client.get_minimum_balance_for_rent_exemption(165).value
    # then
    assert info.slots_in_epoch == 432_000
    assert info.epoch == info.absolute_slot // 432_000
    assert rent == 2_039_280


def test_block_time_of_current_slot_and_future_slot(localnet: Localnet, client: SyncAsyncClient) -> None:
    # given
    slot = client.get_slot(Processed).value
    # when
    block_time = client.get_block_time(slot).value
    future = rpc_call(localnet.url, "getBlockTime", [slot + 10_000])
    # then
    assert block_time > 1_700_000_000
    assert future["error"]["code"] == -32004


def test_recent_prioritization_fees_cover_up_to_150_recent_slots(client: SyncAsyncClient) -> None:
    # when
    fees = client.get_recent_prioritization_fees().value
    # then
    assert len(fees) == min(150, fees[-1].slot + 1)
    assert [entry.slot for entry in fees] == list(range(fees[0].slot, fees[-1].slot + 1))


def test_batch_request_answers_each_item(localnet: Localnet) -> None:
    # when
    answers = rpc_raw(
        localnet.url,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
            {"jsonrpc": "2.0", "id": 2, "method": "noSuchMethod"},
            {"jsonrpc": "1.0", "id": 3, "method": "getHealth"},
        ],
    ).json()
    # then
    assert answers[0] == {"jsonrpc": "2.0", "result": "ok", "id": 1}
    assert answers[1] == {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": 2}
    assert answers[2] == {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}, "id": 3}


def test_malformed_json_is_a_parse_error(localnet: Localnet) -> None:
    # when
    answer = rpc_raw(localnet.url, b'{"jsonrpc": "2.0", "id": 1, "method": ').json()
    # then
    assert answer == {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}


def test_empty_batch_is_an_invalid_request(localnet: Localnet) -> None:
    # when
    answer = rpc_raw(localnet.url, b"[]").json()
    # then
    assert answer["error"]["code"] == -32600


def test_wrong_params_are_invalid_params(localnet: Localnet) -> None:
    # when
    not_a_key = rpc_call(localnet.url, "getBalance", ["not-a-pubkey!"])
    wrong_type = rpc_call(localnet.url, "getBalance", [42])
    missing = rpc_call(localnet.url, "getBalance", [])
    bad_commitment = rpc_call(localnet.url, "getSlot", [{"commitment": "eventually"}])
    # then
    assert not_a_key["error"] == {"code": -32602, "message": "Invalid param: Invalid"}
    assert wrong_type["error"]["code"] == -32602
    assert missing["error"]["code"] == -32602
    assert bad_commitment["error"]["code"] == -32602


def test_get_version_shape(localnet: Localnet) -> None:
    # when
    answer = rpc_call(localnet.url, "getVersion")
    # then
    assert answer["result"] == {"feature-set": 3294202862, "solana-core": "2.2.7"}
