"""The chain client: transient failures are retried, a dead endpoint is a clear 503, JSON-RPC errors are terminal."""

from __future__ import annotations

import socket

import pytest
from solders.keypair import Keypair

from numpay.core.chain import ChainClient
from numpay.core.errors import ChainRequestError, ChainUnavailableError

pytestmark = [pytest.mark.chain]


def test_transient_503s_are_retried(localnet_node, chain_setup) -> None:
    client = ChainClient(localnet_node.url, max_retries=8)
    address = Keypair().pubkey()
    localnet_node.set_faults(http503Rate=0.5, seed=3)
    try:
        results = [client.get_balance(address) for _ in range(20)]
    finally:
        localnet_node.set_faults(http503Rate=0.0)
    assert results == [0] * 20


def test_unreachable_endpoint_raises_chain_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ChainClient(f"http://127.0.0.1:{port}", timeout=1.0, max_retries=2)
    with pytest.raises(ChainUnavailableError) as excinfo:
        client.block_height()
    assert excinfo.value.code == "chain_unavailable"
    assert excinfo.value.status == 503


def test_json_rpc_error_is_terminal_and_not_retried(localnet_node, chain_setup) -> None:
    client = ChainClient(localnet_node.url, max_retries=3)
    with pytest.raises(ChainRequestError) as excinfo:
        client.send_raw_transaction(b"\x01" + b"\x00" * 10)
    assert excinfo.value.code == "chain_request_failed"
    assert excinfo.value.rpc_code == -32602  # invalid params: the bytes are not a transaction


def test_latest_blockhash_has_last_valid_block_height(localnet_node, chain_setup) -> None:
    client = ChainClient(localnet_node.url)
    height = client.block_height()
    blockhash = client.latest_blockhash()
    assert height - 2 <= blockhash.last_valid_block_height - 150 <= height + 2
