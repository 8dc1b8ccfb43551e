"""Fixtures of the localnet conformance tests: a real ``python -m localnet`` per session.

Nothing here touches Django or a database.  Tests that crash, restart or inject faults start
their own localnet so they never disturb the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.signature import Signature

from localnet.testing import Localnet
from localnet.tests.solana_py import SyncAsyncClient

LAMPORTS_PER_SOL = 1_000_000_000


@pytest.fixture(scope="session")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    """The shared localnet (50 ms slots) of the test session."""
    node = Localnet(ledger_dir=tmp_path_factory.mktemp("localnet-ledger"), slot_ms=50)
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def client(localnet: Localnet) -> SyncAsyncClient:
    """solana-py's ``AsyncClient``, called synchronously, at ``confirmed`` commitment."""
    return SyncAsyncClient(localnet.url, commitment=Confirmed, timeout=30)


@pytest.fixture
def fresh_localnet(tmp_path: Path) -> Iterator[Callable[..., Localnet]]:
    """Factory of private localnets (stopped at the end of the test)."""
    started: list[Localnet] = []

    def start(**options: Any) -> Localnet:
        node = Localnet(ledger_dir=tmp_path / f"ledger-{len(started)}", **{"slot_ms": 50, **options})
        started.append(node)
        return node.start()

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def funded(client: SyncAsyncClient) -> Callable[[int], Keypair]:
    """Factory: a new keypair holding ``lamports`` (airdrop confirmed)."""

    def make(lamports: int = 10 * LAMPORTS_PER_SOL) -> Keypair:
        keypair = Keypair()
        signature = client.request_airdrop(keypair.pubkey(), lamports).value
        wait_for_status(client, signature, "confirmed")
        return keypair

    return make


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


_LEVELS = {"processed": 0, "confirmed": 1, "finalized": 2}


def wait_for_status(client: SyncAsyncClient, signature: Signature, level: str, timeout: float = 20.0) -> Any:
    """Poll ``getSignatureStatuses`` until ``signature`` reaches ``level``; returns the status."""

    def reached() -> Any:
        status = client.get_signature_statuses([signature]).value[0]
        if status is not None and _LEVELS[str(status.confirmation_status).split(".")[-1].lower()] >= _LEVELS[level]:
            return status
        return None

    return wait_for(reached, timeout)


#: One keep-alive HTTP client for raw calls (``httpx2.post`` builds a client, SSL context included,
#: per call, which costs tens of milliseconds).
HTTP = httpx2.Client(timeout=30)


def rpc_raw(url: str, body: bytes | str | dict[str, Any] | list[Any]) -> httpx2.Response:
    """POST a raw JSON-RPC body (bytes sent as is, objects JSON-encoded)."""
    if isinstance(body, (dict, list)):
        return HTTP.post(url, json=body)
    return HTTP.post(url, content=body, headers={"Content-Type": "application/json"})


def rpc_call(url: str, method: str, params: list[Any] | None = None) -> dict[str, Any]:
    """One JSON-RPC call; returns the whole response object (``result`` or ``error``)."""
    return rpc_raw(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).json()
