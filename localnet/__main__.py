"""``python -m localnet``: serve a persistent Solana JSON-RPC endpoint.

Usage::

    python -m localnet --host 127.0.0.1 --port 8899 [--ws-port 8900] --ledger var/localnet [--slot-ms 400]
        [--drop-rate F] [--delay-slots N] [--http-429-rate F] [--http-503-rate F] [--fault-seed N]
        [--bpf-program ADDRESS_OR_KEYPAIR SBF_PROGRAM.SO ...]

The first stdout line is the URL (``http://HOST:PORT``, the real port when ``--port 0``), the second
the PubSub websocket URL (``ws://HOST:WS_PORT``), flushed as soon as both sockets listen.  Fault
flags override the ``LOCALNET_*`` environment variables.
This process owns the chain and serves the websocket API itself (:mod:`localnet.pubsub`); it starts
``--http-workers`` child processes serving HTTP (see :mod:`localnet.server`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from localnet.chain import Chain
from localnet.faults import Faults
from localnet.ledger import LedgerInUseError
from localnet.pubsub import PubSub
from localnet.server import ChainChannelProtocol, ChainService


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (flags documented in ``docs/localnet.md``)."""
    parser = argparse.ArgumentParser(
        prog="python -m localnet", description="Solana JSON-RPC over LiteSVM with a persistent ledger."
    )
    parser.add_argument("--host", default=os.environ.get("LOCALNET_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCALNET_PORT", "8899")), help="0 picks a free port")
    parser.add_argument(
        "--ws-port",
        type=int,
        default=int(os.environ["LOCALNET_WS_PORT"]) if os.environ.get("LOCALNET_WS_PORT") else None,
        help="PubSub websocket port (default: the RPC port + 1, or a free port with --port 0)",
    )
    parser.add_argument(
        "--ledger", default=os.environ.get("LOCALNET_LEDGER", "var/localnet"), help="SQLite file or directory"
    )
    parser.add_argument(
        "--slot-ms", type=int, default=int(os.environ.get("LOCALNET_SLOT_MS", "400")), help="slot duration (ms)"
    )
    parser.add_argument("--drop-rate", type=float, default=None, help="fraction of sendTransaction calls dropped silently")
    parser.add_argument("--delay-slots", type=int, default=None, help="land transactions this many slots late")
    parser.add_argument("--http-429-rate", type=float, default=None, help="fraction of requests answered HTTP 429")
    parser.add_argument("--http-503-rate", type=float, default=None, help="fraction of requests answered HTTP 503")
    parser.add_argument("--fault-seed", type=int, default=None, help="seed of the fault generator")
    parser.add_argument(
        "--bpf-program",
        nargs=2,
        action="append",
        default=[],
        metavar=("ADDRESS_OR_KEYPAIR", "SBF_PROGRAM.SO"),
        help="load an sBPF program at this address at genesis (owner BPFLoader2111..., like "
        "solana-test-validator); repeatable; kept in the ledger",
    )
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started localnet dies (used by localnet.testing)",
    )
    parser.add_argument(
        "--http-workers",
        type=int,
        default=int(os.environ.get("LOCALNET_HTTP_WORKERS", "2")),
        help="HTTP front processes (default 2); with 2 or more they also check transaction signatures for the chain process",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGINT / SIGTERM.

    :returns: the process exit status.
    """
    args = build_parser().parse_args(argv)
    if args.slot_ms <= 0:
        print("--slot-ms must be > 0", file=sys.stderr)
        return 2
    try:
        faults = Faults.from_env(
            drop_rate=args.drop_rate,
            delay_slots=args.delay_slots,
            http_429_rate=args.http_429_rate,
            http_503_rate=args.http_503_rate,
            seed=args.fault_seed,
        )
    except ValueError as error:
        print(f"invalid fault setting: {error}", file=sys.stderr)
        return 2
    try:
        programs = [read_program(address, path) for address, path in args.bpf_program]
    except ValueError as error:
        print(f"invalid --bpf-program: {error}", file=sys.stderr)
        return 2
    try:
        chain = Chain(args.ledger, slot_ms=args.slot_ms, faults=faults, programs=programs)
    except LedgerInUseError as error:
        print(str(error), file=sys.stderr)
        return 3
    except ValueError as error:
        print(f"invalid --bpf-program: {error}", file=sys.stderr)
        return 2
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    try:
        listener, ws_listener = listen_pair(family, args.host, args.port, args.ws_port)
    except OSError as error:
        print(f"cannot listen: {error}", file=sys.stderr)
        chain.close()
        return 4
    host, port = listener.getsockname()[:2]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"http://{shown_host}:{port}", flush=True)
    print(f"ws://{shown_host}:{ws_listener.getsockname()[1]}", flush=True)
    channels = []
    fronts = []
    workers = max(1, args.http_workers)
    for _ in range(workers):
        chain_end, front_end = socket.socketpair()
        fronts.append(start_front(listener, front_end, verify_signatures=workers >= 2))
        front_end.close()
        channels.append(chain_end)
    listener.close()
    chain.start()
    if args.exit_with_parent:
        watch_parent()
    try:
        serve_channels(chain, channels, ws_listener)
    finally:
        for front in fronts:
            if front.poll() is None:
                front.terminate()
        for front in fronts:
            try:
                front.wait(timeout=5)
            except subprocess.TimeoutExpired:
                front.kill()
        chain.close()
    return 0


def listen(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (``port`` 0: a free one)."""
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError:
        listener.close()
        raise
    listener.listen(2048)
    return listener


def listen_pair(
    family: socket.AddressFamily, host: str, port: int, ws_port: int | None, attempts: int = 50
) -> tuple[socket.socket, socket.socket]:
    """The RPC and websocket listeners.  Without ``ws_port`` the websocket port is the RPC port + 1,
    the validator's convention every client derives (web3.js, the Solana CLI, Numpay's
    ``SOLANA_WS_URL`` default) — also with ``port`` 0, where a free pair of consecutive ports is
    looked for (a free websocket port after ``attempts`` tries).

    :raises OSError: a port that was asked for is taken.
    """
    if ws_port is not None or port:
        listener = listen(family, host, port)
        try:
            return listener, listen(family, host, ws_port if ws_port is not None else port + 1)
        except OSError:
            listener.close()
            raise
    for _ in range(attempts):
        listener = listen(family, host, 0)
        try:
            return listener, listen(family, host, listener.getsockname()[1] + 1)
        except OSError:
            listener.close()
    listener = listen(family, host, 0)
    return listener, listen(family, host, 0)


def read_program(address: str, path: str) -> tuple[Pubkey, bytes]:
    """One ``--bpf-program`` pair: the address (base58, or a keypair JSON file as the Solana CLI
    writes it: 64 numbers) and the ELF bytes of the ``.so``.

    :raises ValueError: unreadable file, bad address or keypair, empty program.
    """
    try:
        if Path(address).is_file():
            program_id = Keypair.from_bytes(bytes(orjson.loads(Path(address).read_bytes()))).pubkey()
        else:
            program_id = Pubkey.from_string(address)
    except (OSError, ValueError, TypeError, orjson.JSONDecodeError) as error:
        raise ValueError(f"{address!r} is neither a base58 address nor a keypair file ({error})") from None
    try:
        elf = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    if not elf.startswith(b"\x7fELF"):
        raise ValueError(f"{path} is not an ELF file")
    return program_id, elf


def start_front(listener: socket.socket, channel: socket.socket, *, verify_signatures: bool) -> subprocess.Popen[bytes]:
    """Start one HTTP front process (:mod:`localnet.front`) on inherited sockets.

    :param verify_signatures: let the front check ``sendTransaction`` signatures (ed25519) so the
        chain process skips that step: pipeline parallelism, like a validator's sigverify stage.
    """
    environment = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, environment.get("PYTHONPATH")]))
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "localnet.front",
            "--listen-fd",
            str(listener.fileno()),
            "--channel-fd",
            str(channel.fileno()),
            *(["--verify-signatures"] if verify_signatures else []),
        ],
        pass_fds=(listener.fileno(), channel.fileno()),
        stdout=subprocess.DEVNULL,
        env=environment,
    )


def watch_parent(interval: float = 0.5) -> None:
    """SIGTERM this process once its parent is gone (a test run killed before its teardown must
    not leave a localnet behind)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="localnet-parent-watch", daemon=True).start()


def serve_channels(chain: Chain, channels: list[socket.socket], ws_listener: socket.socket | None = None) -> None:
    """Answer the front processes, and serve the websocket API on ``ws_listener``, until SIGINT /
    SIGTERM or until a front process goes away."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    service = ChainService(chain)
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, loop.stop)
    try:
        for channel in channels:
            loop.run_until_complete(loop.create_connection(lambda: ChainChannelProtocol(service, loop.stop), sock=channel))
        if ws_listener is not None:
            pubsub = PubSub(chain, service.rpc)
            loop.run_until_complete(pubsub.start(ws_listener))

            def publish(events: list[Any]) -> None:
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    loop.call_soon_threadsafe(pubsub.handle_events, events)

            with chain.lock:
                chain.publish = publish
        loop.run_forever()
    finally:
        with chain.lock:
            chain.publish = None
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
