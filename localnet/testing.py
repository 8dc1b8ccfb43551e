"""Run a real ``python -m localnet`` subprocess from tests.

Example::

    from localnet.testing import Localnet

    with Localnet(ledger_dir=tmp_path / "ledger", slot_ms=50) as chain:
        client = solana.rpc.api.Client(chain.url)
        ...
        chain.kill()        # SIGKILL, like a crash
        chain.restart()     # same ledger, a new free port: read chain.url again

API:

* ``Localnet(ledger_dir=None, *, slot_ms=50, host="127.0.0.1", port=0, drop_rate=None,
  delay_slots=None, http_429_rate=None, http_503_rate=None, fault_seed=None, programs=(), ws_port=None,
  env=None, startup_timeout=30.0)`` — nothing runs until :meth:`Localnet.start` (or ``with``).  Without a
  ``ledger_dir`` a temporary directory is used and removed by :meth:`Localnet.stop`.
  ``programs`` is a list of ``(address, path to .so)``: each becomes a ``--bpf-program`` flag.
* ``.start()`` -> self: spawns the process, reads the URL it prints, waits for ``GET /health``.
* ``.url`` (``http://127.0.0.1:PORT``), ``.port``, ``.ws_url`` (``ws://127.0.0.1:WS_PORT``, the
  PubSub endpoint), ``.ws_port``, ``.ledger_dir``, ``.pid``, ``.is_running``.
* ``.kill()``: SIGKILL the chain process and its HTTP front processes (no clean shutdown: tests
  crash recovery), then wait until both are gone.
* ``.stop(timeout=10.0)``: SIGTERM, wait, SIGKILL if it hangs.
* ``.restart()`` -> self: stop if running, start again on the same ledger (a new port unless a
  fixed ``port`` was given).
* ``.rpc(method, params=None)`` -> result: a tiny JSON-RPC call with ``urllib``, handy for
  ``localnet_setFaults`` (raises :class:`LocalnetRpcError` on a JSON-RPC error).
* ``.set_faults(**faults)`` -> dict: ``localnet_setFaults`` with JSON names (``dropRate``,
  ``delaySlots``, ``http429Rate``, ``http503Rate``, ``seed``).

The subprocess inherits ``os.environ`` minus ``LOCALNET_*`` fault variables (so a developer's
shell cannot inject faults into tests), plus ``env``.  It runs in its own process group (so
:meth:`Localnet.kill` takes its HTTP front processes down too) and with ``--exit-with-parent``, so a
test run that is killed before its teardown leaves no localnet behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

_FAULT_ENV = (
    "LOCALNET_DROP_RATE",
    "LOCALNET_DELAY_SLOTS",
    "LOCALNET_HTTP_429_RATE",
    "LOCALNET_HTTP_503_RATE",
    "LOCALNET_FAULT_SEED",
)


def _group_alive(group: int) -> bool:
    """True while a non-zombie process of process group ``group`` exists."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            return True
    return False


class LocalnetError(RuntimeError):
    """The localnet process failed to start or answer."""


class LocalnetRpcError(LocalnetError):
    """A JSON-RPC error answered by :meth:`Localnet.rpc`; ``.code``, ``.message``, ``.data``."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")


class Localnet:
    """A ``python -m localnet`` subprocess (see the module docstring for the API).

    :param ledger_dir: ledger directory (kept across :meth:`restart`); temporary when ``None``.
    :param slot_ms: slot duration in milliseconds.
    :param port: fixed port, or 0 for a free one.
    :param ws_port: fixed websocket port; ``None``: the RPC port + 1 (with ``port=0`` a free pair of
        consecutive ports, when one is found).
    :param programs: ``(address (base58 or Pubkey), path of the .so)`` pairs loaded at genesis
        (``--bpf-program``, owner ``BPFLoader2111…``); they stay in the ledger.
    :param env: extra environment variables for the process.
    :param startup_timeout: seconds to wait for the URL and ``/health``.
    """

    def __init__(
        self,
        ledger_dir: str | Path | None = None,
        *,
        slot_ms: int = 50,
        host: str = "127.0.0.1",
        port: int = 0,
        drop_rate: float | None = None,
        delay_slots: int | None = None,
        http_429_rate: float | None = None,
        http_503_rate: float | None = None,
        fault_seed: int | None = None,
        programs: Sequence[tuple[Any, str | Path]] = (),
        ws_port: int | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self._temporary = ledger_dir is None
        self.ledger_dir = Path(ledger_dir) if ledger_dir is not None else Path(tempfile.mkdtemp(prefix="localnet-"))
        self.slot_ms = slot_ms
        self.host = host
        self.port = port
        self._fixed_port = port
        self.faults = {
            "--drop-rate": drop_rate,
            "--delay-slots": delay_slots,
            "--http-429-rate": http_429_rate,
            "--http-503-rate": http_503_rate,
            "--fault-seed": fault_seed,
        }
        self.programs = [(str(address), str(Path(path).resolve())) for address, path in programs]
        self.env = env or {}
        self._fixed_ws_port = ws_port
        self.ws_url = ""
        self.ws_port = 0
        self.startup_timeout = startup_timeout
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: list[bytes] = []

    # --- lifecycle ------------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The argv used to start the process."""
        argv = [
            sys.executable,
            "-m",
            "localnet",
            "--host",
            self.host,
            "--port",
            str(self._fixed_port),
            "--ledger",
            str(self.ledger_dir),
            "--slot-ms",
            str(self.slot_ms),
            "--exit-with-parent",
        ]
        for flag, value in self.faults.items():
            if value is not None:
                argv += [flag, str(value)]
        if self._fixed_ws_port is not None:
            argv += ["--ws-port", str(self._fixed_ws_port)]
        for address, path in self.programs:
            argv += ["--bpf-program", address, path]
        return argv

    def start(self) -> Localnet:
        """Start the process and wait until ``/health`` answers ``ok``.

        :raises LocalnetError: when the process exits or does not answer in time.
        """
        if self.is_running:
            return self
        environment = {key: value for key, value in os.environ.items() if key not in _FAULT_ENV}
        environment.update(self.env)
        project_root = str(Path(__file__).resolve().parent.parent)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [project_root, environment.get("PYTHONPATH")]))
        self._stderr = []
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, start_new_session=True
        )
        threading.Thread(target=self._drain_stderr, args=(self._process,), daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        assert self._process.stdout is not None  # noqa: S101 - Popen with PIPE
        line = self._process.stdout.readline().decode().strip()
        if not line.startswith("http"):
            self.kill()
            raise LocalnetError(f"localnet did not print its URL: {line!r} {self.stderr}")
        self.url = line
        self.port = int(line.rsplit(":", 1)[1])
        ws_line = self._process.stdout.readline().decode().strip()
        if not ws_line.startswith("ws"):
            self.kill()
            raise LocalnetError(f"localnet did not print its websocket URL: {ws_line!r} {self.stderr}")
        self.ws_url = ws_line
        self.ws_port = int(ws_line.rsplit(":", 1)[1])
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LocalnetError(f"localnet exited with {self._process.returncode}: {self.stderr}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310 - http URL we built
                    if response.read() == b"ok":
                        return self
            time.sleep(0.02)
        self.kill()
        raise LocalnetError(f"localnet did not become healthy within {self.startup_timeout}s: {self.stderr}")

    def _drain_stderr(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None  # noqa: S101 - Popen with PIPE
        for line in process.stderr:
            self._stderr.append(line)
            del self._stderr[:-200]

    @property
    def stderr(self) -> str:
        """The last lines the process wrote to stderr."""
        return b"".join(self._stderr).decode(errors="replace")

    @property
    def pid(self) -> int | None:
        """Process id, or ``None`` when not started."""
        return self._process.pid if self._process is not None else None

    @property
    def is_running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL the localnet (a crash: no clean shutdown): the chain process and its HTTP front
        processes (they share a process group), then wait until the port is released."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
            self._wait_for_group_exit()

    def _wait_for_group_exit(self, timeout: float = 5.0) -> None:
        """Wait until no live (non-zombie) process of the localnet's process group remains."""
        if self._process is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(self._process.pid):
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM, then SIGKILL after ``timeout`` seconds); removes a temporary
        ledger."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
            self._wait_for_group_exit()
        if self._temporary:
            shutil.rmtree(self.ledger_dir, ignore_errors=True)

    def restart(self) -> Localnet:
        """Start again on the same ledger (stopping cleanly first if still running)."""
        if self.is_running:
            self._process.terminate()  # type: ignore[union-attr]
            self._process.wait(timeout=10)  # type: ignore[union-attr]
            self._wait_for_group_exit()
        return self.start()

    def __enter__(self) -> Localnet:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # --- small RPC helper -----------------------------------------------------------------------
    def rpc(self, method: str, params: list[Any] | None = None, timeout: float = 10.0) -> Any:
        """Call one JSON-RPC method and return its ``result``.

        :raises LocalnetRpcError: when the answer is a JSON-RPC error.
        :raises urllib.error.HTTPError: on an HTTP error status (e.g. an injected 429).
        """
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http URL we built
            answer = orjson.loads(response.read())
        if "error" in answer:
            raise LocalnetRpcError(answer["error"])
        return answer["result"]

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """``localnet_setFaults`` with JSON names, e.g. ``set_faults(dropRate=1.0, seed=7)``.

        :returns: the faults now in force.
        """
        return self.rpc("localnet_setFaults", [faults])


__all__ = ["Localnet", "LocalnetError", "LocalnetRpcError"]
