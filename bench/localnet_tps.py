"""Transfers per second: localnet over JSON-RPC vs LiteSVM called in-process, in one run.

Usage::

    .venv/bin/python bench/localnet_tps.py [--transfers 10000] [--clients 256] [--payers 64] [--rounds 5]

Both sides execute the same kind of pre-signed SOL transfers (signing is the client's job and is
done before timing starts).  The RPC side sends ``sendTransaction`` (base64, with preflight, like
solana-py by default) over many keep-alive HTTP connections from an asyncio client, to a
``python -m localnet`` subprocess whose ledger persists every transaction before answering.  The
in-process side calls ``LiteSVM.send_transaction`` in a loop.  The two are measured alternately for
``--rounds`` rounds and the best round of each is compared (the usual best-of-N, which keeps noise
from other processes on the machine out of the ratio; every round is printed too).  Prints both
rates and their ratio (target: RPC >= 0.33x in-process).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localnet.testing import Localnet  # noqa: E402

LAMPORTS_PER_PAYER = 10**12
#: Destinations are funded above the rent-exempt minimum (890,880 lamports) first: the runtime refuses a
#: transfer that would create an account below it (InsufficientFundsForRent).
LAMPORTS_PER_DESTINATION = 10**9


def signed_transfers(payers: list[Keypair], destinations: list[Pubkey], blockhash: Hash, count: int) -> list[Transaction]:
    """``count`` distinct signed transfers, round-robin over payers (amount varies, so every
    signature differs)."""
    transfers = []
    for index in range(count):
        payer = payers[index % len(payers)]
        instruction = transfer(
            TransferParams(
                from_pubkey=payer.pubkey(), to_pubkey=destinations[index % len(destinations)], lamports=1_000 + index
            )
        )
        transfers.append(Transaction([payer], Message([instruction], payer.pubkey()), blockhash))
    return transfers


def in_process_rate(payers: list[Keypair], destinations: list[Pubkey], count: int) -> float:
    """Transfers/s of ``LiteSVM.send_transaction`` in this process (default LiteSVM settings:
    signature verification, blockhash check and transaction history all on)."""
    svm = LiteSVM()
    for payer in payers:
        svm.airdrop(payer.pubkey(), LAMPORTS_PER_PAYER)
    for destination in destinations:  # rent exempt already: a small transfer may not create an account
        svm.airdrop(destination, LAMPORTS_PER_DESTINATION)
    transactions = signed_transfers(payers, destinations, svm.latest_blockhash(), count)
    started = time.perf_counter()
    failures = 0
    for transaction in transactions:
        if not hasattr(svm.send_transaction(transaction), "logs"):
            failures += 1
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"in-process: {failures} transfers failed")
    return count / elapsed


class _KeepAliveClient(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending pre-built requests one after another (a light
    client, so that the benchmark's own CPU use stays small next to the server's)."""

    def __init__(self, requests: list[bytes], errors: list[bytes], done: asyncio.Future[None]) -> None:
        self.requests = requests
        self.errors = errors
        self.done = done
        self.position = 0
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._next()

    def _next(self) -> None:
        if self.position == len(self.requests):
            if not self.done.done():
                self.done.set_result(None)
            return
        self.transport.write(self.requests[self.position])  # type: ignore[union-attr]
        self.position += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[len(b"content-length:") :])
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body = self.buffer[head_end + 4 : end]
            if not head.startswith(b"http/1.1 200") or b'"result"' not in body:
                self.errors.append(self.buffer[:end])
            self.buffer = self.buffer[end:]
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost after {self.position} requests: {exc}"))


async def _send_all(url: str, bodies: list[bytes], clients: int) -> tuple[float, list[bytes]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    header = f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\nContent-Length: "
    requests = [header.encode() + str(len(body)).encode() + b"\r\n\r\n" + body for body in bodies]
    loop = asyncio.get_running_loop()
    errors: list[bytes] = []
    finished = [loop.create_future() for _ in range(clients)]
    started = time.perf_counter()
    transports = []
    for index in range(clients):
        share = requests[index::clients]
        transport, _protocol = await loop.create_connection(
            lambda share=share, done=finished[index]: _KeepAliveClient(share, errors, done), host, port
        )
        transports.append(transport)
    await asyncio.gather(*finished)
    elapsed = time.perf_counter() - started
    for transport in transports:
        transport.close()
    return elapsed, errors


def _run(coroutine: Any) -> Any:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up of the client side
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def rpc_rate(chain: Localnet, payers: list[Keypair], destinations: list[Pubkey], count: int, clients: int) -> float:
    """Transfers/s through ``sendTransaction`` on a running localnet (payers already funded);
    checks with ``getTransactionCount`` that every transfer landed.

    :raises SystemExit: when a request failed or a transfer did not land.
    """
    blockhash = Hash.from_string(chain.rpc("getLatestBlockhash", [{"commitment": "processed"}])["value"]["blockhash"])
    transactions = signed_transfers(payers, destinations, blockhash, count)
    bodies = [
        orjson.dumps(
            {
                "jsonrpc": "2.0",
                "id": index,
                "method": "sendTransaction",
                "params": [base64.b64encode(bytes(transaction)).decode(), {"encoding": "base64"}],
            }
        )
        for index, transaction in enumerate(transactions)
    ]
    before = chain.rpc("getTransactionCount")
    elapsed, errors = _run(_send_all(chain.url, bodies, clients))
    landed = chain.rpc("getTransactionCount") - before
    if errors:
        raise SystemExit(f"RPC: {len(errors)} errors, first: {errors[0][:300]!r}")
    if landed != count:
        raise SystemExit(f"RPC: {landed} of {count} transfers landed")
    return count / elapsed


def main() -> None:
    """Run the rounds and print the rates and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfers", type=int, default=10_000, help="transfers per round and side")
    parser.add_argument("--clients", type=int, default=256, help="concurrent HTTP connections (keep-alive)")
    parser.add_argument("--payers", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    payers = [Keypair() for _ in range(args.payers)]
    destinations = [Keypair().pubkey() for _ in range(256)]
    print(f"machine: {os.cpu_count()} CPUs; {args.transfers} transfers x {args.rounds} rounds, {args.clients} RPC clients")
    local_rates: list[float] = []
    remote_rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="localnet-bench-") as ledger, Localnet(ledger, slot_ms=400) as chain:
        for payer in payers:
            chain.rpc("requestAirdrop", [str(payer.pubkey()), LAMPORTS_PER_PAYER])
        for destination in destinations:
            chain.rpc("requestAirdrop", [str(destination), LAMPORTS_PER_DESTINATION])
        for round_number in range(1, args.rounds + 1):
            local_rates.append(in_process_rate(payers, destinations, args.transfers))
            remote_rates.append(rpc_rate(chain, payers, destinations, args.transfers, args.clients))
            print(
                f"round {round_number}: in-process {local_rates[-1]:8.0f} tx/s   RPC {remote_rates[-1]:8.0f} tx/s   "
                f"ratio {remote_rates[-1] / local_rates[-1]:.2f}x",
                flush=True,
            )
    local, remote = max(local_rates), max(remote_rates)
    print(f"in-process LiteSVM : {local:9.0f} transfers/s (best round)")
    print(f"localnet over RPC  : {remote:9.0f} transfers/s (best round; every transfer landed and persisted)")
    print(f"ratio RPC / in-process: {remote / local:.2f}x (target >= 0.33x)")


if __name__ == "__main__":
    main()
