"""Confirmations pushed by the endpoint (``signatureSubscribe``): the chain client's ``watch_signature``
against the session's real localnet, the websocket URL derived from the RPC URL, and a dead websocket
that leaves the caller to its polling."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.signature import Signature

from numpay.core.solana import ChainClient
from numpay.core.solana.client import configured_websocket_url, get_chain_client
from numpay.core.solana.programs import LAMPORTS_PER_SOL
from numpay.core.solana.subscriptions import websocket_url
from tests.test_chain_client import _funded, _transfer

pytestmark = [pytest.mark.chain]


class Pushed:
    """Collects ``on_landed(err, slot)`` calls, with the thread they ran on."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, int]] = []
        self.threads: list[str] = []
        self.done = threading.Event()

    def __call__(self, err: Any, slot: int) -> None:
        self.calls.append((err, slot))
        self.threads.append(threading.current_thread().name)
        self.done.set()


def test_websocket_url_is_derived_like_a_validator() -> None:
    assert websocket_url("http://127.0.0.1:8899") == "ws://127.0.0.1:8900"
    assert websocket_url("https://api.devnet.solana.com") == "wss://api.devnet.solana.com"
    assert websocket_url("https://rpc.example.com:443/key/abc") == "wss://rpc.example.com:444/key/abc"
    assert configured_websocket_url("http://127.0.0.1:8899", "") == "ws://127.0.0.1:8900"
    assert configured_websocket_url("http://127.0.0.1:8899", "none") is None
    assert configured_websocket_url("http://127.0.0.1:8899", "ws://elsewhere:1") == "ws://elsewhere:1"


def test_the_session_client_gets_its_websocket_from_the_rpc_url(chain_setup: dict[str, str], localnet_node: Any) -> None:
    # localnet serves the websocket at the RPC port + 1, which is what the default derives
    assert get_chain_client().ws_url == localnet_node.ws_url


def test_a_landed_transfer_is_pushed_at_the_client_commitment(localnet_node: Any) -> None:
    # given a client with the localnet's websocket and a transfer sent
    client = ChainClient(localnet_node.url, commitment="confirmed", ws_url=localnet_node.ws_url)
    payer = _funded(client)
    wire = _transfer(payer, Keypair().pubkey(), LAMPORTS_PER_SOL // 10, client.latest_blockhash().blockhash)
    signature = Signature.from_bytes(wire[1:65])
    pushed = Pushed()
    # when its signature is watched (after sending: the endpoint answers at once if already there)
    client.send_raw_transaction(wire)
    asked = client.watch_signature(signature, pushed)
    # then one call comes, on the watcher's thread, with the slot getSignatureStatuses reports
    assert asked is True
    assert pushed.done.wait(10)
    status = client.signature_statuses([signature])[0]
    assert pushed.calls == [(None, status.slot)]
    assert status.confirmation_status in ("confirmed", "finalized")
    assert threading.current_thread().name not in pushed.threads


def test_a_failed_transaction_is_pushed_with_its_error(localnet_node: Any) -> None:
    # given a transfer of more than the payer holds, sent without preflight (it lands, failed)
    client = ChainClient(localnet_node.url, commitment="confirmed", ws_url=localnet_node.ws_url)
    payer = _funded(client, LAMPORTS_PER_SOL)
    wire = _transfer(payer, Keypair().pubkey(), 5 * LAMPORTS_PER_SOL, client.latest_blockhash().blockhash)
    signature = Signature.from_bytes(wire[1:65])
    pushed = Pushed()
    # when it is watched, then sent
    client.watch_signature(signature, pushed)
    client.send_raw_transaction(wire, skip_preflight=True)
    # then the push carries the transaction error, as getSignatureStatuses does
    assert pushed.done.wait(10)
    status = client.signature_statuses([signature])[0]
    assert pushed.calls == [(status.err, status.slot)]
    assert status.err == {"InstructionError": [0, {"Custom": 1}]}


def test_without_a_websocket_the_caller_is_told_to_poll(localnet_node: Any) -> None:
    # given a client whose websocket URL points at a closed port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    client = ChainClient(localnet_node.url, ws_url=f"ws://127.0.0.1:{dead_port}")
    pushed = Pushed()
    # when a signature is watched, then others until the failed connection attempt is known
    first = client.watch_signature(Signature.from_bytes(bytes(64)), pushed)
    later = [client.watch_signature(Signature.from_bytes(bytes(64)), pushed)]
    while later[-1] and len(later) < 100:
        pushed.done.wait(0.05)
        later.append(client.watch_signature(Signature.from_bytes(bytes(64)), pushed))
    # then the first was asked, a later one refused, nothing was ever called; no websocket, no watcher
    assert (first, later[-1], pushed.calls) == (True, False, [])
    assert ChainClient(localnet_node.url, ws_url=None).watch_signature(Signature.default(), pushed) is False
