"""Calls/s of the two ways a synchronous chain client can talk JSON-RPC, against one localnet.

Usage::

    .venv/bin/python bench/chain_client.py [--seconds 3] [--rounds 3] [--threads 1,8]

The two candidates for ``numpay.core.solana`` (issue 7, item 4; solana-py 0.41 has no sync ``Client``):

* ``direct``: :class:`numpay.core.solana.ChainClient` itself: one keep-alive ``httpx2.Client``,
  solders' request types (``solders.rpc.requests``) serialized with ``to_json`` and solders' response
  types (``solders.rpc.responses``) parsing the answer.
* ``facade``: solana-py's ``AsyncClient`` behind a synchronous facade: one event loop on a daemon
  thread, each call submitted with ``asyncio.run_coroutine_threadsafe`` and waited for (what a sync
  wrapper of solana-py must do in a Django view or a Celery task).

Both return the same values (``Blockhash``, ``SignatureStatus`` lists, a ``Signature``), so they do the
same work. Operations: ``getLatestBlockhash``; ``getSignatureStatuses`` of 256 signatures (128 landed,
128 unknown: the status poller's batch); ``sendTransaction`` of distinct pre-signed transfers (base64,
with preflight). Each (way, operation, threads) runs ``--seconds`` per round, ways alternating, for
``--rounds`` rounds; the best round is reported (noise from the other processes on the machine only
ever slows a round down). Only 127.0.0.1 is contacted; the localnet is a child, stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "numpay.settings.test")

from solana.rpc.async_api import AsyncClient  # noqa: E402
from solana.rpc.commitment import Confirmed  # noqa: E402
from solana.rpc.models import TxOpts  # noqa: E402
from solders.hash import Hash  # noqa: E402
from solders.keypair import Keypair  # noqa: E402
from solders.message import Message  # noqa: E402
from solders.pubkey import Pubkey  # noqa: E402
from solders.signature import Signature  # noqa: E402
from solders.system_program import TransferParams, transfer  # noqa: E402
from solders.transaction import Transaction  # noqa: E402

from localnet.testing import Localnet  # noqa: E402
from numpay.core.solana import Blockhash, ChainClient, SignatureStatus  # noqa: E402

LAMPORTS_PER_SOL = 1_000_000_000


class AsyncClientFacade:
    """solana-py's ``AsyncClient`` behind the three synchronous methods the bench calls."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True, name="facade-loop").start()

        async def make() -> AsyncClient:
            return AsyncClient(url, commitment=Confirmed, timeout=10)

        self._client = self._run(make())

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def latest_blockhash(self) -> Blockhash:
        value = self._run(self._client.get_latest_blockhash()).value
        return Blockhash(blockhash=value.blockhash, last_valid_block_height=value.last_valid_block_height)

    def signature_statuses(self, signatures: list[Signature]) -> list[SignatureStatus | None]:
        response = self._run(self._client.get_signature_statuses(signatures, search_transaction_history=True))
        return [
            None
            if status is None
            else SignatureStatus(
                slot=status.slot,
                confirmation_status=str(status.confirmation_status).rsplit(".", 1)[-1].lower(),
                err=status.err,
            )
            for status in response.value
        ]

    def send_raw_transaction(self, wire: bytes) -> Signature:
        opts = TxOpts(skip_confirmation=True, preflight_commitment=Confirmed)
        return self._run(self._client.send_raw_transaction(wire, opts)).value

    def close(self) -> None:
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)


def signed_transfers(
    payers: list[Keypair], destinations: list[Pubkey], blockhash: Hash, count: int, salt: int
) -> Iterator[bytes]:
    """Distinct signed transfers (the amount varies with ``salt`` and the index), as wire bytes."""
    for index in range(count):
        payer = payers[index % len(payers)]
        lamports = 1 + salt * 1_000_000 + index
        instruction = transfer(
            TransferParams(from_pubkey=payer.pubkey(), to_pubkey=destinations[index % len(destinations)], lamports=lamports)
        )
        yield bytes(Transaction([payer], Message([instruction], payer.pubkey()), blockhash))


def rate(call: Callable[[int], Any], seconds: float, threads: int, limit: int = 10**9) -> tuple[float, float]:
    """``(calls/s, client CPU µs per call)`` of ``call(i)`` from ``threads`` threads for ``seconds`` seconds
    (at most ``limit`` calls). The CPU is this process's (every thread, the facade's loop included): the
    client's own cost, which the localnet's share of the machine does not blur."""
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    lock = threading.Lock()

    def worker() -> int:
        done = 0
        while time.perf_counter() < deadline:
            with lock:
                index = next(counter)
            if index >= limit:
                break
            call(index)
            done += 1
        return done

    start, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: worker(), range(threads)))
    return total / (time.perf_counter() - start), (time.process_time() - cpu) / total * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,8", help="comma-separated caller thread counts")
    args = parser.parse_args()
    thread_counts = [int(value) for value in args.threads.split(",")]
    print(f"machine: {os.cpu_count()} CPUs (shared); {args.rounds} rounds x {args.seconds:.0f} s per figure; best round")
    with tempfile.TemporaryDirectory(prefix="chain-client-bench-") as ledger, Localnet(ledger, slot_ms=400) as chain:
        direct = ChainClient(chain.url, timeout=10.0)
        facade = AsyncClientFacade(chain.url)
        ways: dict[str, Any] = {"direct": direct, "facade": facade}
        payers = [Keypair() for _ in range(16)]
        destinations = [Keypair().pubkey() for _ in range(16)]
        for key in [*(payer.pubkey() for payer in payers), *destinations]:
            direct.wait_for_confirmation(direct.request_airdrop(key, 1_000 * LAMPORTS_PER_SOL))
        landed = [
            direct.send_raw_transaction(wire)
            for wire in signed_transfers(payers, destinations, direct.latest_blockhash().blockhash, 128, salt=0)
        ]
        batch = landed + [Signature.new_unique() for _ in range(128)]
        direct.wait_for_confirmation(landed[-1])
        assert [status is not None for status in direct.signature_statuses(batch)] == [True] * 128 + [False] * 128
        assert [status is not None for status in facade.signature_statuses(batch)] == [True] * 128 + [False] * 128
        best: dict[tuple[str, str, int], tuple[float, float]] = {}
        salt = 1
        for round_number in range(1, args.rounds + 1):
            for threads in thread_counts:
                for name, client in ways.items():
                    figures = {
                        "getLatestBlockhash": rate(lambda _i, c=client: c.latest_blockhash(), args.seconds, threads),
                        "getSignatureStatuses(256)": rate(
                            lambda _i, c=client: c.signature_statuses(batch), args.seconds, threads
                        ),
                    }
                    # enough distinct transactions for the fastest plausible rate, signed before timing
                    wires = list(
                        signed_transfers(payers, destinations, direct.latest_blockhash().blockhash, 6_000, salt=salt)
                    )
                    salt += 1
                    figures["sendTransaction"] = rate(
                        lambda i, c=client, w=wires: c.send_raw_transaction(w[i]), args.seconds, threads, len(wires)
                    )
                    for operation, value in figures.items():
                        key = (name, operation, threads)
                        best[key] = max(best.get(key, (0.0, 0.0)), value)
                    print(
                        f"round {round_number} threads {threads:2d} {name:6s} "
                        + "  ".join(f"{op} {calls:6.0f}/s {cpu:5.0f} µs" for op, (calls, cpu) in figures.items()),
                        flush=True,
                    )
        facade.close()
        direct.close()
    print("\nbest round: calls/s (client CPU µs per call)")
    print(f"{'threads':>7} {'way':6} {'getLatestBlockhash':>20} {'getSignatureStatuses(256)':>26} {'sendTransaction':>20}")
    for threads in thread_counts:
        for name in ways:
            cells = [best[(name, operation, threads)] for operation in
                     ("getLatestBlockhash", "getSignatureStatuses(256)", "sendTransaction")]
            print(f"{threads:>7} {name:6} " + " ".join(f"{calls:>13.0f} ({cpu:>4.0f})" for calls, cpu in cells))


if __name__ == "__main__":
    main()
