"""Bad requests get the right JSON-RPC error and change nothing."""

from __future__ import annotations

import base64
from collections.abc import Callable

from solana.rpc.commitment import Processed
from solders.keypair import Keypair
from solders.signature import Signature
from solders.transaction import Transaction

from localnet.testing import Localnet
from localnet.tests.conftest import LAMPORTS_PER_SOL, rpc_call, rpc_raw
from localnet.tests.solana_py import SyncAsyncClient
from localnet.tests.test_sol import transfer_transaction


def _setup(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> tuple[Keypair, Transaction]:
    payer = funded(LAMPORTS_PER_SOL)
    transaction = transfer_transaction(
        payer, Keypair().pubkey(), 1_000_000, client.get_latest_blockhash(Processed).value.blockhash
    )
    return payer, transaction


def test_malformed_json_changes_nothing(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given
    payer, transaction = _setup(client, funded)
    encoded = base64.b64encode(bytes(transaction)).decode()
    # when
    answer = rpc_raw(
        localnet.url, f'{{"jsonrpc":"2.0","id":1,"method":"sendTransaction","params":["{encoded}"'.encode()
    ).json()
    # then
    assert answer["error"] == {"code": -32700, "message": "Parse error"}
    assert client.get_balance(payer.pubkey(), Processed).value == LAMPORTS_PER_SOL
    assert client.get_signature_statuses([transaction.signatures[0]]).value == [None]


def test_bad_base64_is_invalid_params(localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer, transaction = _setup(client, funded)
    encoded = base64.b64encode(bytes(transaction)).decode()
    # when
    answer = rpc_call(localnet.url, "sendTransaction", ["!!" + encoded[2:], {"encoding": "base64"}])
    # then
    assert answer["error"]["code"] == -32602
    assert answer["error"]["message"].startswith("Invalid params: invalid base64 encoding")
    assert client.get_balance(payer.pubkey(), Processed).value == LAMPORTS_PER_SOL


def test_truncated_transaction_is_invalid_params(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given
    payer, transaction = _setup(client, funded)
    # when
    answer = rpc_call(
        localnet.url, "sendTransaction", [base64.b64encode(bytes(transaction)[:-10]).decode(), {"encoding": "base64"}]
    )
    # then
    assert answer["error"]["code"] == -32602
    assert answer["error"]["message"].startswith("Invalid params: failed to deserialize")
    assert client.get_balance(payer.pubkey(), Processed).value == LAMPORTS_PER_SOL


def test_corrupt_signature_fails_verification(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given a transaction whose signature bytes were altered
    payer, transaction = _setup(client, funded)
    raw = bytearray(bytes(transaction))
    raw[5] ^= 0xFF
    corrupt = base64.b64encode(bytes(raw)).decode()
    # when
    answer = rpc_call(localnet.url, "sendTransaction", [corrupt, {"encoding": "base64"}])
    skipped = rpc_call(localnet.url, "sendTransaction", [corrupt, {"encoding": "base64", "skipPreflight": True}])
    # then
    assert answer["error"] == {"code": -32003, "message": "Transaction signature verification failure"}
    assert "result" in skipped
    assert client.get_balance(payer.pubkey(), Processed).value == LAMPORTS_PER_SOL
    assert client.get_signature_statuses([Signature.from_string(skipped["result"])]).value == [None]


def test_wrong_params_to_send_transaction(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair]
) -> None:
    # given
    payer, transaction = _setup(client, funded)
    encoded = base64.b64encode(bytes(transaction)).decode()
    # when
    not_a_string = rpc_call(localnet.url, "sendTransaction", [42])
    unknown_encoding = rpc_call(localnet.url, "sendTransaction", [encoded, {"encoding": "hex"}])
    params_object = rpc_raw(
        localnet.url, {"jsonrpc": "2.0", "id": 7, "method": "sendTransaction", "params": {"tx": encoded}}
    ).json()
    # then
    assert not_a_string["error"]["code"] == -32602
    assert unknown_encoding["error"]["code"] == -32602
    assert params_object["error"]["code"] == -32602
    assert params_object["id"] == 7
    assert client.get_balance(payer.pubkey(), Processed).value == LAMPORTS_PER_SOL
