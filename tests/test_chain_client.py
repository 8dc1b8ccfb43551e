"""The chain client: transient failures are retried, a dead endpoint is a clear 503, JSON-RPC errors are
terminal, and a refused send is a typed outcome read from the error code and ``data.err`` of real
localnet answers (localnet answers like a validator: solana-rpc-client-api ``custom_error.rs``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from numpay.core.errors import ChainRequestError, ChainUnavailableError
from numpay.core.solana import (
    AlreadyProcessed,
    BlockhashNotFound,
    ChainClient,
    PreflightFailure,
    SignatureStatus,
    get_chain_client,
)
from numpay.core.solana.programs import LAMPORTS_PER_SOL
from tests.helpers import wait_until

pytestmark = [pytest.mark.chain]


def _funded(client: ChainClient, lamports: int = 2 * LAMPORTS_PER_SOL) -> Keypair:
    payer = Keypair()
    client.wait_for_confirmation(client.request_airdrop(payer.pubkey(), lamports))
    return payer


def _transfer(payer: Keypair, to: Pubkey, lamports: int, blockhash: Hash) -> bytes:
    instruction = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return bytes(Transaction([payer], Message.new_with_blockhash([instruction], payer.pubkey(), blockhash), blockhash))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _endpoint(status: int, body: bytes) -> Iterator[tuple[str, list[int]]]:
    """A stand-in for a misbehaving RPC endpoint (a proxy page, an auth error): every POST gets
    ``status`` and ``body``. Yields its URL and the list of requests it saw."""
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(status)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


# --- transport: retries, timeouts, a dead endpoint ------------------------------------------------------
@pytest.mark.parametrize("fault", ["http503Rate", "http429Rate"])
def test_transient_http_errors_are_retried(localnet_node, fault) -> None:
    # given an endpoint that answers half of the requests with a 503 (or a 429)
    client = ChainClient(localnet_node.url, max_retries=8)
    address = Keypair().pubkey()
    localnet_node.set_faults(**{fault: 0.5, "seed": 3})
    # when
    try:
        results = [client.get_balance(address) for _ in range(20)]
    finally:
        localnet_node.set_faults(**{fault: 0.0})
    # then every call got its answer
    assert results == [0] * 20


def test_transient_errors_beyond_the_retries_are_chain_unavailable(localnet_node) -> None:
    # given an endpoint that answers every request with a 503
    client = ChainClient(localnet_node.url, max_retries=2)
    localnet_node.set_faults(http503Rate=1.0)
    # when
    started = time.monotonic()
    try:
        with pytest.raises(ChainUnavailableError) as excinfo:
            client.block_height()
    finally:
        localnet_node.set_faults(http503Rate=0.0)
    # then, after the backoff of two retries (50 ms + 100 ms)
    assert excinfo.value.code == "chain_unavailable"
    assert time.monotonic() - started >= 0.15


def test_unreachable_endpoint_raises_chain_unavailable() -> None:
    # given nothing listening on the port
    client = ChainClient(f"http://127.0.0.1:{_free_port()}", timeout=1.0, max_retries=2)
    # when / then
    with pytest.raises(ChainUnavailableError) as excinfo:
        client.block_height()
    assert excinfo.value.code == "chain_unavailable"
    assert excinfo.value.status == 503


def test_an_endpoint_that_never_answers_times_out() -> None:
    # given a listening socket that accepts connections and never answers
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        client = ChainClient(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.3, max_retries=1)
        # when
        started = time.monotonic()
        with pytest.raises(ChainUnavailableError):
            client.latest_blockhash()
        elapsed = time.monotonic() - started
    # then two attempts of 0.3 s each and one 50 ms backoff, not a hang
    assert 0.6 <= elapsed < 3.0


def test_a_non_transient_http_status_is_chain_unavailable_without_retries() -> None:
    # given an endpoint that refuses us (401: a provider URL without its key)
    with _endpoint(401, b"unauthorized") as (url, seen):
        client = ChainClient(url, max_retries=3)
        # when
        with pytest.raises(ChainUnavailableError):
            client.block_height()
    # then it was asked once: retrying cannot help
    assert seen == [401]


def test_an_unreadable_answer_is_a_terminal_chain_request_error() -> None:
    # given an endpoint that answers 200 with a web page
    with _endpoint(200, b"<html>maintenance</html>") as (url, seen):
        client = ChainClient(url, max_retries=3)
        # when
        with pytest.raises(ChainRequestError) as excinfo:
            client.get_balance(Keypair().pubkey())
        with pytest.raises(ChainRequestError):
            client.signature_statuses([Signature.new_unique()])
    # then each was asked once and the error says what came back
    assert type(excinfo.value) is ChainRequestError
    assert "Unreadable GetBalance answer" in excinfo.value.message
    assert seen == [200, 200]


def test_json_rpc_error_is_terminal_and_not_retried(localnet_node) -> None:
    # given
    client = ChainClient(localnet_node.url, max_retries=3)
    # when
    with pytest.raises(ChainRequestError) as excinfo:
        client.send_raw_transaction(b"\x01" + b"\x00" * 10)
    # then
    assert type(excinfo.value) is ChainRequestError
    assert excinfo.value.code == "chain_request_failed"
    assert excinfo.value.rpc_code == -32602  # invalid params: the bytes are not a transaction


def test_latest_blockhash_has_last_valid_block_height(localnet_node) -> None:
    client = ChainClient(localnet_node.url)
    height = client.block_height()
    blockhash = client.latest_blockhash()
    assert height - 2 <= blockhash.last_valid_block_height - 150 <= height + 2


# --- typed outcomes of sendTransaction ------------------------------------------------------------------
def test_resending_landed_bytes_is_already_processed(localnet_node) -> None:
    # given a transfer that landed
    client = ChainClient(localnet_node.url)
    payer = _funded(client)
    recipient = Keypair().pubkey()
    wire = _transfer(payer, recipient, LAMPORTS_PER_SOL, client.latest_blockhash().blockhash)
    client.wait_for_confirmation(client.send_raw_transaction(wire))
    # when the same bytes are sent again
    with pytest.raises(AlreadyProcessed) as excinfo:
        client.send_raw_transaction(wire)
    # then it is the typed outcome, still a ChainRequestError, and nothing moved twice
    assert isinstance(excinfo.value, ChainRequestError)
    assert (excinfo.value.rpc_code, excinfo.value.err) == (-32002, "AlreadyProcessed")
    assert client.get_balance(recipient) == LAMPORTS_PER_SOL


def test_unknown_blockhash_is_blockhash_not_found(localnet_node) -> None:
    # given a transfer signed over a blockhash the cluster never produced
    client = ChainClient(localnet_node.url)
    payer = _funded(client)
    wire = _transfer(payer, Keypair().pubkey(), LAMPORTS_PER_SOL, Hash.new_unique())
    # when
    with pytest.raises(BlockhashNotFound) as excinfo:
        client.send_raw_transaction(wire)
    # then nothing ran
    assert (excinfo.value.rpc_code, excinfo.value.err) == (-32002, "BlockhashNotFound")
    assert client.get_balance(payer.pubkey()) == 2 * LAMPORTS_PER_SOL
    assert client.signature_statuses([Transaction.from_bytes(wire).signatures[0]]) == [None]


def test_failed_simulation_is_preflight_failure_with_the_transaction_error(localnet_node) -> None:
    # given a transfer of more lamports than the payer holds
    client = ChainClient(localnet_node.url)
    payer = _funded(client)
    wire = _transfer(payer, Keypair().pubkey(), 5 * LAMPORTS_PER_SOL, client.latest_blockhash().blockhash)
    # when
    with pytest.raises(PreflightFailure) as excinfo:
        client.send_raw_transaction(wire)
    # then the error carries the system program's "insufficient lamports" (custom error 1), and nothing ran
    assert not isinstance(excinfo.value, AlreadyProcessed | BlockhashNotFound)
    assert excinfo.value.rpc_code == -32002
    assert excinfo.value.err == {"InstructionError": [0, {"Custom": 1}]}
    assert excinfo.value.data["err"] == excinfo.value.err
    assert client.get_balance(payer.pubkey()) == 2 * LAMPORTS_PER_SOL
    assert client.signature_statuses([Transaction.from_bytes(wire).signatures[0]]) == [None]


def test_bad_signature_is_a_plain_chain_request_error(localnet_node) -> None:
    # given a transfer whose signature bytes were altered
    client = ChainClient(localnet_node.url)
    payer = _funded(client)
    wire = bytearray(_transfer(payer, Keypair().pubkey(), LAMPORTS_PER_SOL, client.latest_blockhash().blockhash))
    wire[5] ^= 0xFF
    # when
    with pytest.raises(ChainRequestError) as excinfo:
        client.send_raw_transaction(bytes(wire))
    # then: -32003 is not a preflight outcome
    assert type(excinfo.value) is ChainRequestError
    assert excinfo.value.rpc_code == -32003
    assert client.get_balance(payer.pubkey()) == 2 * LAMPORTS_PER_SOL


def test_a_landed_failure_reports_the_validator_error_json(localnet_node) -> None:
    # given an overdraft sent without preflight: it lands, failed, and its fee is charged
    client = ChainClient(localnet_node.url)
    payer = _funded(client)
    wire = _transfer(payer, Keypair().pubkey(), 5 * LAMPORTS_PER_SOL, client.latest_blockhash().blockhash)
    signature = client.send_raw_transaction(wire, skip_preflight=True)
    with pytest.raises(ChainRequestError):
        client.wait_for_confirmation(signature)
    # when it is confirmed
    def confirmed() -> SignatureStatus | None:
        found = client.signature_statuses([signature])[0]
        return found if found is not None and client.is_at_commitment(found) else None

    status = wait_until(confirmed)
    history = client.signatures_for_address(payer.pubkey(), limit=1)
    # then the error is the validator's JSON (solders' own serialization would give [0, 1])
    assert status is not None
    assert status.err == {"InstructionError": [0, {"Custom": 1}]}
    assert history[0]["signature"] == str(signature)
    assert history[0]["err"] == {"InstructionError": [0, {"Custom": 1}]}
    assert client.get_transaction_json(signature)["meta"]["err"] == {"InstructionError": [0, {"Custom": 1}]}


# --- reads ----------------------------------------------------------------------------------------------
def test_statuses_of_256_signatures_known_and_unknown(localnet_node) -> None:
    # given one landed transfer among 255 unknown signatures
    client = ChainClient(localnet_node.url)
    payer = _funded(client)
    landed = client.send_raw_transaction(
        _transfer(payer, Keypair().pubkey(), LAMPORTS_PER_SOL, client.latest_blockhash().blockhash)
    )
    client.wait_for_confirmation(landed)
    batch = [Signature.new_unique() for _ in range(255)] + [landed]
    # when
    statuses = client.signature_statuses(batch)
    # then
    assert statuses[:255] == [None] * 255
    assert statuses[255] is not None
    assert statuses[255].err is None
    assert statuses[255].confirmation_status in ("confirmed", "finalized")
    assert client.is_at_commitment(statuses[255])


def test_get_chain_client_is_one_client_per_settings(chain_setup, localnet_node) -> None:
    # given the session's settings (SOLANA_RPC_URL is the localnet)
    # when
    first, second = get_chain_client(), get_chain_client()
    # then
    assert first is second
    assert first.url == localnet_node.url
    assert first.commitment == "confirmed"
