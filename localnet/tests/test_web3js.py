"""An unmodified ``@solana/web3.js`` 1.x client (with ``@solana/spl-token``) against localnet, given
only the HTTP URL as a new user would: ``sendAndConfirmTransaction`` and ``confirmTransaction``
(which wait on ``signatureSubscribe`` at the RPC port + 1), SPL Token flows, slot and account
listeners.

Needs Node.js and the packages of ``localnet/tests/web3js/package.json``, installed into
``$LOCALNET_WEB3JS_DIR`` (default ``var/web3js``); the test runs ``npm install`` there once when
they are missing, and is skipped, saying why, when Node.js is missing or the install fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from localnet.testing import Localnet

HERE = Path(__file__).resolve().parent / "web3js"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def web3js_directory() -> Path:
    """The directory holding ``node_modules`` with the packages, installed on first use.

    :raises pytest.skip.Exception: Node.js / npm missing, or the install failed.
    """
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the @solana/web3.js check needs `node` (18 or later) on PATH")
    directory = Path(os.environ.get("LOCALNET_WEB3JS_DIR", PROJECT_ROOT / "var" / "web3js"))
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "package.json", directory / "package.json")
    shutil.copyfile(HERE / "check.mjs", directory / "check.mjs")
    if (
        not (directory / "node_modules" / "@solana" / "web3.js").is_dir()
        or not (directory / "node_modules" / "@solana" / "spl-token").is_dir()
    ):
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: cannot install @solana/web3.js for the check")
        installed = subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
            [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if installed.returncode != 0:
            pytest.skip(f"npm install of @solana/web3.js failed (offline?): {installed.stderr.strip()[-300:]}")
    return directory


def free_port_pair() -> int:
    """A free TCP port whose successor is free too (web3.js derives the websocket port as + 1)."""
    while True:
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def test_unmodified_web3js_client_confirms_transfers_and_token_flows(
    fresh_localnet: Callable[..., Localnet],
) -> None:
    # given the packages and a localnet whose websocket port is its RPC port + 1
    directory = web3js_directory()
    node = fresh_localnet(port=free_port_pair(), slot_ms=100)
    # when the script runs against the HTTP URL only
    finished = subprocess.run(  # noqa: S603 - node from PATH, our script
        [shutil.which("node") or "node", "check.mjs", node.url],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # then every confirmation came back and the amounts are right
    assert finished.returncode == 0, finished.stderr[-2000:]
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    del result["transferSignature"]
    assert result == {
        "airdropErr": None,
        "payerBalance": 2_000_000_000,
        "recipientBalance": 12_345_678,
        "sourceAmount": "3750000",
        "destinationAmount": "1250000",
        "accountChanges": [13_345_678],
        "slotsSeen": True,
    }
    assert node.ws_url == f"ws://127.0.0.1:{node.port + 1}"
