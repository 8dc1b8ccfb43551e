"""Payments/s and latency of ``POST /api/v1/payments`` against a bare authenticated DRF POST, in one run.

Usage::

    .venv/bin/python bench/payments.py [--clients 32] [--duration 20] [--payments 20000] [--slot-ms 400]

Starts everything as children of this process (cleaned up on exit, each in its own process group):
localnet (temporary ledger), a fresh PostgreSQL database (``--database``, dropped and re-created), the
migrations and the localnet bootstrap, gunicorn (``numpay.wsgi``, gthread), a Celery worker (queues
``default`` and ``chain``, threads pool) and Celery beat. Settings: :mod:`bench.baseline.settings`
(the development settings plus the bench-only ``/bench/baseline`` view), with PostgreSQL, Redis
(cache DB 2, broker DB 3; both flushed at start) and localnet chosen by environment variables as in
production.

Then it signs up ``--clients`` senders and one recipient through the allauth headless API, funds them
with the faucet (USDC), and measures, each client with its own session token and keep-alive connection:

1. baseline: ``POST /bench/baseline`` (same DRF authentication, permission, throttles; inserts one row);
2. payments: ``POST /api/v1/payments`` (0.01 USDC to the recipient by email, a fresh Idempotency-Key),
   each client paying from its own smart wallet (an ``execute`` of the Numpay wallet program, loaded at
   genesis; the first payment of each wallet also creates its config, in the warm-up);
2b. keypair payments: the same from ``--clients`` other senders whose wallets are keypair wallets (the
   path before smart wallets), in the same rounds: the ratio smart / keypair payments/s, and the compute
   units per payment of each path (``meta.computeUnitsConsumed`` of confirmed transactions);
3. submit -> confirmed: ``confirmed_at - created_at`` of every payment of step 2 (the API's fields, read
   from the database once the worker has confirmed them all);
4. optionally (``--same-wallet-duration``), all clients paying from one wallet (serialised by the wallet
   row lock).

Prints a table of the targets (issue 13: ratio >= 0.5, smart / keypair >= 0.8, CPU per payment <= 3x the
baseline's, POST p99 <= 2x the baseline's, created -> confirmed p99 <= 1.0 s closed loop and paced, same wallet
>= 0.5x the multi-wallet rate) and one JSON line
(prefixed ``RESULT``). Only 127.0.0.1 is ever contacted; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localnet.testing import Localnet  # noqa: E402
from wallets.app_settings import LOCALNET_WALLET_PROGRAM_ID, WALLET_PROGRAM_SO  # noqa: E402 - no Django import

HOST = "127.0.0.1"
PASSWORD = "bench-Numpay-9"  # noqa: S105 - throwaway users in a throwaway database
PAYMENT_AMOUNT = "0.01"
FAUCET_AMOUNT = "1000"
TARGET_RATIO = 0.5
TARGET_SMART_RATIO = 0.8
#: Compute units are read from this many confirmed transactions of each path.
COMPUTE_UNIT_SAMPLE = 20
#: Issue 13's targets: POST p99 at most this times the baseline's p99 in the same run; created -> confirmed p99
#: (closed loop and paced); CPU per payment (every component the bench starts, PostgreSQL and Redis) at most
#: this times the baseline's; same-wallet payments/s at least this share of the multi-wallet rate.
TARGET_POST_P99_OVER_BASELINE = 2.0
TARGET_CONFIRMED_P99_S = 1.0
TARGET_CPU_OVER_BASELINE = 3.0
TARGET_SAME_WALLET_RATIO = 0.5
#: CPU components that are not the platform's (excluded from the CPU target).
NOT_PLATFORM = ("other", "load generator")


class BenchError(RuntimeError):
    """A precondition failed or a component did not come up: printed without a traceback."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- preconditions ------------------------------------------------------------------------------------
def check_tcp(port: int, what: str, hint: str) -> None:
    try:
        with socket.create_connection((HOST, port), timeout=3):
            return
    except OSError as exc:
        raise BenchError(f"{what} is not reachable on {HOST}:{port} ({exc}). {hint}") from exc


def recreate_database(name: str) -> None:
    """Drop and create ``name`` on the local PostgreSQL (user postgres, trust auth)."""
    import psycopg
    from psycopg import sql

    try:
        connection = psycopg.connect(host=HOST, port=5432, user="postgres", dbname="postgres", connect_timeout=5,
                                     autocommit=True)
    except psycopg.OperationalError as exc:
        raise BenchError(f"cannot connect to PostgreSQL as postgres@{HOST}:5432: {exc}") from exc
    with connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def flush_redis(url_db: tuple[int, ...]) -> None:
    import redis

    for db in url_db:
        try:
            redis.Redis(host=HOST, port=6379, db=db, socket_timeout=5).flushdb()
        except redis.RedisError as exc:
            raise BenchError(f"Redis on {HOST}:6379 (db {db}) failed: {exc}") from exc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- child processes ----------------------------------------------------------------------------------
class Children:
    """Child processes, each in its own session (process group); :meth:`stop_all` ends them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        out.close()
        self.processes[name] = process
        return process

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise BenchError(f"{name} exited with {process.returncode}; last log lines:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self, timeout: float = 15.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def run_step(argv: list[str], env: dict[str, str], what: str, timeout: float) -> None:
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise BenchError(f"{what} failed ({result.returncode}):\n{result.stdout.decode()[-2000:]}"
                         f"{result.stderr.decode()[-3000:]}")


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str, children: Children,
               interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check_alive()
        with contextlib.suppress(OSError, http.client.HTTPException):
            if predicate():
                return
        time.sleep(interval)
    raise BenchError(f"{what} not ready within {timeout:.0f}s")


# --- HTTP -----------------------------------------------------------------------------------------------
class Api:
    """One keep-alive HTTP/1.1 connection to gunicorn (stdlib ``http.client``: the lightest client, so the
    load generator, which shares the machine's cores, takes as little CPU as possible)."""

    def __init__(self, port: int, token: str = "") -> None:
        self.port = port
        self.token = token
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        all_headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        if self.token:
            all_headers["X-Session-Token"] = self.token
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=payload, headers=all_headers)
                response = self.connection.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.connection.close()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest):
                # The server closed an idle keep-alive connection: reconnect once.
                self.connection.close()
                self.connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
                if attempt:
                    raise
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, data[:300]

    def close(self) -> None:
        self.connection.close()


@dataclass
class User:
    email: str
    token: str


def sign_up(port: int, email: str) -> User:
    api = Api(port)
    try:
        status, body = api.request("POST", "/_allauth/app/v1/auth/signup", {"email": email, "password": PASSWORD})
        if status != 200:
            raise BenchError(f"signup of {email} answered {status}: {body}")
        return User(email=email, token=body["meta"]["session_token"])
    finally:
        api.close()


def fund(port: int, user: User) -> None:
    api = Api(port, user.token)
    try:
        status, body = api.request("POST", "/api/v1/faucet", {"token": "USDC", "amount": FAUCET_AMOUNT})
        if status != 201:
            raise BenchError(f"faucet for {user.email} answered {status}: {body}")
    finally:
        api.close()


#: Run in the platform's environment: turns the listed users' fresh (empty) smart wallets into keypair
#: wallets as Numpay made them before smart wallets (a new custody key whose own address is the wallet).
KEYPAIR_WALLETS_SCRIPT = """
import sys, django
django.setup()
from wallets import custody
from wallets.models import Wallet, WalletKey
for email in sys.argv[1:]:
    wallet = Wallet.objects.get(user__email=email)
    address, envelope = custody.new_keypair_envelope(wallet_id=wallet.id)
    Wallet.objects.filter(pk=wallet.pk).update(address=address, authority=address, config_address="", kind="keypair")
    WalletKey.objects.filter(wallet=wallet).update(ciphertext=envelope.ciphertext,
                                                   wrapped_data_key=envelope.wrapped_data_key, kek_id=envelope.kek_id)
"""


def compute_units(database: str, rpc_url: str, payment_ids: list[str]) -> list[int]:
    """``meta.computeUnitsConsumed`` of up to :data:`COMPUTE_UNIT_SAMPLE` confirmed payments."""
    import psycopg

    with psycopg.connect(host=HOST, port=5432, user="postgres", dbname=database, connect_timeout=5,
                         autocommit=True) as connection:
        signatures = [row[0] for row in connection.execute(
            "SELECT signature FROM wallets_payment WHERE id = ANY(%s::uuid[]) AND status = 'confirmed' LIMIT %s",
            (payment_ids, COMPUTE_UNIT_SAMPLE)).fetchall()]
    host, port = rpc_url.removeprefix("http://").split(":")
    units = []
    for signature in signatures:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("POST", "/", json.dumps({
                "jsonrpc": "2.0", "id": 1, "method": "getTransaction",
                "params": [signature, {"encoding": "json", "commitment": "confirmed",
                                       "maxSupportedTransactionVersion": 0}]}),
                {"Content-Type": "application/json"})
            answer = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        meta = (answer.get("result") or {}).get("meta") or {}
        if "computeUnitsConsumed" in meta:
            units.append(int(meta["computeUnitsConsumed"]))
    return units


# --- load -----------------------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    clients: int
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: dict[str, int] = field(default_factory=dict)
    payment_ids: list[str] = field(default_factory=list)
    payment_owner: dict[str, str] = field(default_factory=dict)  # payment id -> session token of its sender

    def add(self, other: Phase) -> None:
        """Fold a round of the same kind into this phase (rates use the summed elapsed time)."""
        self.elapsed += other.elapsed
        self.latencies += other.latencies
        self.payment_ids += other.payment_ids
        self.payment_owner.update(other.payment_owner)
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def summary(self) -> dict[str, Any]:
        return {"requests": len(self.latencies), "errors": sum(self.errors.values()),
                "error_kinds": self.errors, "seconds": round(self.elapsed, 2), "per_second": round(self.rate, 1),
                "p50_ms": ms(percentile(self.latencies, 50)), "p99_ms": ms(percentile(self.latencies, 99)),
                "max_ms": ms(max(self.latencies, default=0.0))}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def run_load(*, name: str, port: int, tokens: list[str], duration: float, max_requests: int,
             make_request: Callable[[], tuple[str, str, dict[str, Any] | None, dict[str, str]]],
             expected_status: int, collect_id: bool = False, rate: float = 0.0) -> Phase:
    """``len(tokens)`` threads, one connection each, send requests back to back for ``duration`` seconds
    or until ``max_requests`` were sent in total (whichever comes first).

    With ``rate`` > 0 (requests/s in total) the clients are paced instead: client ``k`` sends its ``i``-th
    request at ``start + (k / clients + i) * clients / rate`` and its latency counts from that planned time
    (so a server that falls behind is not flattered by clients that wait for it: no coordinated omission).
    """
    phase = Phase(name=name, clients=len(tokens))
    lock = threading.Lock()
    budget = iter(range(max_requests))
    start_barrier = threading.Barrier(len(tokens) + 1)
    deadline_holder: list[float] = []

    interval = len(tokens) / rate if rate > 0 else 0.0

    def client(index: int, token: str) -> None:
        api = Api(port, token)
        latencies: list[float] = []
        errors: dict[str, int] = {}
        ids: list[str] = []
        owner: dict[str, str] = {}
        try:
            start_barrier.wait(timeout=30)
            deadline = deadline_holder[0]
            planned = deadline - duration + interval * index / len(tokens)
            while time.perf_counter() < deadline:
                if interval:
                    if planned >= deadline:
                        break
                    time.sleep(max(0.0, planned - time.perf_counter()))
                with lock:
                    if next(budget, None) is None:
                        break
                method, path, body, headers = make_request()
                started = planned if interval else time.perf_counter()
                planned += interval
                try:
                    status, answer = api.request(method, path, body, headers)
                except (OSError, http.client.HTTPException) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                latency = time.perf_counter() - started
                if status == expected_status:
                    latencies.append(latency)
                    if collect_id:
                        ids.append(str(answer["id"]))
                        owner[str(answer["id"])] = token
                else:
                    code = answer.get("code", "") if isinstance(answer, dict) else ""
                    kind = f"{status} {code}".strip()
                    errors[kind] = errors.get(kind, 0) + 1
        finally:
            api.close()
            with lock:
                phase.latencies.extend(latencies)
                phase.payment_ids.extend(ids)
                phase.payment_owner.update(owner)
                for kind, count in errors.items():
                    phase.errors[kind] = phase.errors.get(kind, 0) + count

    threads = [threading.Thread(target=client, args=(index, token), daemon=True) for index, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline_holder.append(started + duration)
    start_barrier.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=duration + 60)
    phase.elapsed = time.perf_counter() - started
    return phase


def payment_request(recipient: str) -> Callable[[], tuple[str, str, dict[str, Any] | None, dict[str, str]]]:
    def make() -> tuple[str, str, dict[str, Any] | None, dict[str, str]]:
        return ("POST", "/api/v1/payments", {"to": recipient, "token": "USDC", "amount": PAYMENT_AMOUNT},
                {"Idempotency-Key": str(uuid.uuid4())})

    return make


def baseline_request() -> tuple[str, str, dict[str, Any] | None, dict[str, str]]:
    return "POST", "/bench/baseline", {}, {}


# --- confirmation ---------------------------------------------------------------------------------------
@dataclass
class Confirmations:
    """Seconds per confirmed payment: ``total`` = confirmed_at - created_at, split at submitted_at (queue
    wait + send) and the rest (landing + commitment + status polling)."""

    total: list[float] = field(default_factory=list)
    to_submitted: list[float] = field(default_factory=list)
    submitted_to_confirmed: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    #: submitted -> the first time the bench saw the payment's slot as the chain's current one (SlotClock), and
    #: from there to confirmed in the DB (commitment, the push, the poller round, the write)
    submitted_to_landed: list[float] = field(default_factory=list)
    landed_to_confirmed: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        stages = {}
        if self.landed_to_confirmed:
            stages = {"submitted_to_landed_p50_s": round(percentile(self.submitted_to_landed, 50), 3),
                      "submitted_to_landed_p99_s": round(percentile(self.submitted_to_landed, 99), 3),
                      "landed_to_confirmed_p50_s": round(percentile(self.landed_to_confirmed, 50), 3),
                      "landed_to_confirmed_p99_s": round(percentile(self.landed_to_confirmed, 99), 3)}
        return {**stages, "count": len(self.total), "statuses": self.statuses,
                "p50_s": round(percentile(self.total, 50), 3), "p99_s": round(percentile(self.total, 99), 3),
                "max_s": round(max(self.total, default=0.0), 3),
                "created_to_submitted_p50_s": round(percentile(self.to_submitted, 50), 3),
                "created_to_submitted_p99_s": round(percentile(self.to_submitted, 99), 3),
                "submitted_to_confirmed_p50_s": round(percentile(self.submitted_to_confirmed, 50), 3),
                "submitted_to_confirmed_p99_s": round(percentile(self.submitted_to_confirmed, 99), 3)}


class SlotClock:
    """When each slot began, as seen from here: ``getSlot`` (processed) every 50 ms on a thread; a slot's time is
    the first time it was the answer (so a landing is placed within 50 ms plus one RPC's latency). Costs
    localnet ~20 small requests per second while it runs (in its CPU column)."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self.url, self.interval = url, interval
        self.first_seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slot-clock", daemon=True)

    def __enter__(self) -> SlotClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import urllib.request

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getSlot",
                           "params": [{"commitment": "processed"}]}).encode()
        while not self._stop.is_set():
            try:
                request = urllib.request.Request(  # noqa: S310 - the bench's own localnet (http://127.0.0.1)
                    self.url, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310
                    slot = json.loads(answer.read())["result"]
                self.first_seen.setdefault(int(slot), time.time())
            except (OSError, ValueError, KeyError):
                pass
            self._stop.wait(self.interval)


def confirmation_times(database: str, payment_ids: list[str], timeout: float,
                       slots: SlotClock | None = None) -> Confirmations:
    """Wait (at most ``timeout`` s) until the payments are terminal, then read their timestamps (the
    ``created_at`` / ``confirmed_at`` the API shows); with ``slots``, also when each one's slot began."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(host=HOST, port=5432, user="postgres", dbname=database, connect_timeout=5,
                         autocommit=True) as connection:
        while True:
            rows = connection.execute(
                "SELECT status, created_at, submitted_at, confirmed_at, slot FROM wallets_payment "
                "WHERE id = ANY(%s::uuid[])",
                (payment_ids,)).fetchall()
            open_count = sum(1 for row in rows if row[0] in ("created", "approved", "submitted"))
            if open_count == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    result = Confirmations()
    for status, created, submitted, confirmed, slot in rows:
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if status == "confirmed" and confirmed is not None:
            result.total.append((confirmed - created).total_seconds())
            if submitted is not None:
                result.to_submitted.append((submitted - created).total_seconds())
                result.submitted_to_confirmed.append((confirmed - submitted).total_seconds())
                landed = slots.first_seen.get(slot) if slots is not None and slot is not None else None
                if landed is not None:
                    result.submitted_to_landed.append(landed - submitted.timestamp())
                    result.landed_to_confirmed.append(confirmed.timestamp() - landed)
    return result


def api_spot_check(port: int, token: str, payment_id: str) -> dict[str, Any]:
    """``GET /api/v1/payments/{id}`` for one payment: the fields the confirmation figures come from."""
    api = Api(port, token)
    try:
        status, body = api.request("GET", f"/api/v1/payments/{payment_id}")
    finally:
        api.close()
    if status != 200:
        raise BenchError(f"GET /api/v1/payments/{payment_id} answered {status}: {body}")
    return body


# --- CPU accounting -------------------------------------------------------------------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: str) -> tuple[str, int, int, int, int] | None:
    """``(comm, ppid, pgid, utime + stime, cutime + cstime)`` in clock ticks, or ``None`` if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return comm, int(fields[1]), int(fields[2]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def cpu_snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far per component: our children by process group (``groups``: name -> pgid),
    PostgreSQL and Redis by process name (PostgreSQL's exited backends through the postmaster's children
    time), this process (the load generator), and ``other`` = everything else on the machine."""
    by_group = {pgid: name for name, pgid in groups.items()}
    totals = dict.fromkeys([*groups, "postgresql", "redis", "load generator", "other"], 0.0)
    proc = Path("/proc")
    if not proc.is_dir():
        return totals
    own = os.getpid()
    stats = {entry.name: _proc_stat(entry.name) for entry in proc.iterdir() if entry.name.isdigit()}
    ours = 0.0
    for pid, stat in stats.items():
        if stat is None:
            continue
        comm, ppid, pgid, used, children_used = stat
        if pgid in by_group:
            name = by_group[pgid]
        elif comm in ("postgres", "postmaster"):
            name = "postgresql"
            parent = stats.get(str(ppid))
            if parent is None or parent[0] not in ("postgres", "postmaster"):
                used += children_used  # the postmaster: backends that already exited
        elif comm.startswith("redis"):
            name = "redis"
        elif int(pid) == own:
            name = "load generator"
        else:
            continue
        totals[name] += used / CLOCK_TICKS
        ours += used / CLOCK_TICKS
    busy = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    total_busy = (sum(int(value) for value in busy) - int(busy[3]) - int(busy[4])) / CLOCK_TICKS  # minus idle, iowait
    totals["other"] = total_busy - ours
    return totals


def pg_sessions(database: str) -> int:
    """Connections PostgreSQL has accepted to ``database`` so far (``pg_stat_database.sessions``, PostgreSQL 14+;
    -1 where unknown): a new backend per request or task costs PostgreSQL a process start-up and a cold catalog
    cache, so the count per request is reported next to the CPU."""
    import psycopg

    try:
        with psycopg.connect(host=HOST, port=5432, user="postgres", dbname="postgres", connect_timeout=5,
                             autocommit=True) as connection:
            row = connection.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s",
                                     (database,)).fetchone()
    except psycopg.Error:
        return -1
    return int(row[0]) if row and row[0] is not None else -1


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}


# --- profiling ------------------------------------------------------------------------------------------
def start_profilers(args: argparse.Namespace, children: Children, chain: Localnet,
                    seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy on gunicorn (all workers, only samples holding the GIL: CPU), the Celery worker (GIL) and
    localnet (all samples), for at most ``seconds`` (``--profile`` only)."""
    if not args.profile:
        return []
    executable = shutil.which(args.py_spy)
    if executable is None:
        log(f"--profile: {args.py_spy} not found (pip install py-spy); not profiling")
        return []
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    duration = str(max(1, int(seconds) - 1))
    targets = {"gunicorn": (children.processes["gunicorn"].pid, ["--subprocesses", "--gil"]),
               "worker": (children.processes["worker"].pid, ["--gil"]), "localnet": (chain.pid, ["--subprocesses"])}
    profilers = []
    for name, (pid, extra) in targets.items():
        argv = [executable, "record", "--pid", str(pid), "--duration", duration, "--rate", "50", "--nonblocking",
                "--format", "raw", "--output", str(out / f"{name}.txt"), *extra]
        with (out / f"{name}.log").open("wb") as errors:
            profilers.append(subprocess.Popen(argv, stdout=errors, stderr=subprocess.STDOUT))
    return profilers


def profile_summary(raw: Path, *, top: int) -> list[tuple[float, str]]:
    """Inclusive share of samples per frame (``function (file)``) of a py-spy raw (collapsed) file,
    keeping the frames of the project, Django, DRF, allauth, psycopg, redis, solders and httpx2."""
    interesting = ("wallets/", "payments/", "relayer/", "numpay/", "accounts/", "localnet/", "django/db", "django/contrib",
                   "rest_framework/", "allauth/", "psycopg/", "redis/", "solders/", "httpx", "celery/app", "kombu/")
    total = 0
    counts: dict[str, int] = {}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        total += int(number)
        frames = set()
        for frame in stack.split(";"):
            name, _, location = frame.partition(" (")
            path = location.rsplit(":", 1)[0].split("site-packages/")[-1].replace(str(ROOT) + "/", "")
            if path.startswith(interesting) or any(part in path for part in ("/django/db/", "/rest_framework/")):
                frames.add(f"{name} ({path})")
        for frame in frames:
            counts[frame] = counts.get(frame, 0) + int(number)
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
    return [(100 * count / total, frame) for frame, count in ranked] if total else []


# --- orchestration --------------------------------------------------------------------------------------
#: The environment the platform's processes run with (set by :func:`platform`).
platform_env: dict[str, str] = {}


@contextlib.contextmanager
def platform(args: argparse.Namespace, work: Path) -> Iterator[tuple[int, Children, Localnet]]:
    """Start localnet, the database, gunicorn, the worker and beat; yield gunicorn's port."""
    check_tcp(5432, "PostgreSQL", "Start it (user postgres, trust auth) or fix pg_hba.conf.")
    check_tcp(6379, "Redis", "Start redis-server.")
    recreate_database(args.database)
    cache_db, broker_db = args.redis_dbs
    flush_redis((cache_db, broker_db))
    (work / "logs").mkdir()
    children = Children(work / "logs")
    program_id = os.environ.get("NUMPAY_WALLET_PROGRAM_ID", LOCALNET_WALLET_PROGRAM_ID)
    chain = Localnet(ledger_dir=work / "ledger", slot_ms=args.slot_ms,
                     programs=[(program_id, ROOT / WALLET_PROGRAM_SO)])
    try:
        log(f"localnet (slot {args.slot_ms} ms) ...")
        chain.start()
        env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "LOCALNET_"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": "bench.baseline.settings",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": f"postgres://postgres@{HOST}:5432/{args.database}",
            "DATABASE_CONN_MAX_AGE": str(args.conn_max_age),
            "REDIS_URL": f"redis://{HOST}:6379/{cache_db}",
            "CELERY_BROKER_URL": f"redis://{HOST}:6379/{broker_db}",
            "NUMPAY_WALLET_PROGRAM_ID": program_id,
            "SOLANA_RPC_URL": chain.url,
            "SOLANA_CLUSTER": "localnet",
            "NUMPAY_VAR_DIR": str(work / "var"),
            "API_THROTTLE_USER": "1000000/min",
            "API_THROTTLE_ANON": "1000000/min",
            "API_THROTTLE_FAUCET": "1000000/min",
            "RELAYER_DAILY_BUDGET_LAMPORTS": str(10**15),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
            "DATABASE_POOL_MAX_SIZE": str(args.db_pool),
        })
        bin_dir = Path(sys.executable).parent
        python = sys.executable
        log("migrate, localnet_bootstrap ...")
        run_step([python, "manage.py", "migrate", "--noinput"], env, "migrate", timeout=300)
        run_step([python, "manage.py", "localnet_bootstrap", "--wait"], env, "localnet_bootstrap", timeout=120)
        port = free_port()
        log(f"gunicorn ({args.workers} workers x {args.threads} threads) on {HOST}:{port}, celery worker, beat ...")
        children.start("gunicorn", [str(bin_dir / "gunicorn"), "numpay.wsgi", "--bind", f"{HOST}:{port}",
                                    "--workers", str(args.workers), "--worker-class", "gthread",
                                    "--threads", str(args.threads), "--timeout", "60", "--keep-alive", "30",
                                    "--log-level", "warning"], env)
        children.start("worker", [str(bin_dir / "celery"), "-A", "numpay", "worker", "-Q", "default,chain",
                                  "--pool", "threads", "--concurrency", str(args.worker_concurrency),
                                  "--loglevel", "WARNING", "--hostname", f"bench-{uuid.uuid4().hex[:8]}@%h",
                                  "--without-gossip", "--without-mingle"], env)
        children.start("beat", [str(bin_dir / "celery"), "-A", "numpay", "beat", "--loglevel", "WARNING",
                                "--schedule", str(work / "celerybeat-schedule")], env)

        def gunicorn_ready() -> bool:
            status, _ = Api(port).request("GET", "/api/v1/wallet")
            return status in (401, 403)

        wait_until(gunicorn_ready, timeout=60, what="gunicorn", children=children)

        def worker_ready() -> bool:
            result = subprocess.run([str(bin_dir / "celery"), "-A", "numpay", "inspect", "ping", "--timeout", "2"],
                                    cwd=ROOT, env=env, capture_output=True, timeout=30, check=False)
            return result.returncode == 0 and b"pong" in result.stdout

        wait_until(worker_ready, timeout=90, what="celery worker", children=children, interval=1.0)
        platform_env.update(env)
        yield port, children, chain
    finally:
        log("stopping children ...")
        children.stop_all()
        chain.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per measured phase (default 20)")
    parser.add_argument("--payments", type=int, default=20_000, help="most payment POSTs in the measured phase")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating baseline/payments rounds the duration is split into (default 2)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds of each kind first")
    parser.add_argument("--same-wallet-duration", type=float, default=5.0,
                        help="seconds of all clients paying from one wallet (0 = skip)")
    parser.add_argument("--paced-rate", type=float, default=None,
                        help="payments/s in total for an open-loop phase after the closed-loop one (default: half "
                             "the measured closed-loop payments/s; 0 = skip)")
    parser.add_argument("--paced-duration", type=float, default=10.0, help="seconds of the paced phase (default 10)")
    parser.add_argument("--slot-ms", type=int, default=400, help="localnet slot duration (default 400)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--worker-concurrency", type=int, default=8, help="Celery worker threads (default 8)")
    parser.add_argument("--conn-max-age", type=int, default=0,
                        help="DATABASE_CONN_MAX_AGE seconds (default 0, the shipped default: a connection per request)")
    parser.add_argument("--db-pool", type=int, default=0, metavar="N",
                        help="psycopg pool of N connections per process instead of --conn-max-age (needs psycopg-pool)")
    parser.add_argument("--database", default="numpay_bench", help="PostgreSQL database, dropped and re-created")
    parser.add_argument("--redis-dbs", default="2,3", type=lambda text: tuple(int(x) for x in text.split(",")),
                        help="Redis databases CACHE,BROKER (flushed at start; default 2,3)")
    parser.add_argument("--profile", metavar="DIR",
                        help="record py-spy (from PATH or --py-spy) on gunicorn, the worker and localnet during the "
                             "first payments round; raw files in DIR, a summary printed at the end")
    parser.add_argument("--py-spy", default="py-spy", help="py-spy executable for --profile")
    parser.add_argument("--profile-top", type=int, default=25, help="frames per process in the profile summary")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) after the run")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.duration <= 600 or args.payments < 1 or not 1 <= args.rounds <= 20:
        parser.error("--clients 1..256, --duration (0, 600], --payments >= 1, --rounds 1..20")

    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the children are always stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work = Path(tempfile.mkdtemp(prefix="numpay-bench-"))
    try:
        with platform(args, work) as (port, children, chain):
            result = measure(args, port, children, chain)
    except BenchError as exc:
        log(f"ERROR: {exc}")
        log(f"logs: {work / 'logs'}")
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    report(result)
    if args.profile:
        for name in ("gunicorn", "worker", "localnet"):
            raw = Path(args.profile) / f"{name}.txt"
            if raw.exists():
                print(f"\npy-spy, {name} (inclusive share of samples; frames from the project and its main libraries):")
                for share, frame in profile_summary(raw, top=args.profile_top):
                    print(f"  {share:5.1f}%  {frame}")
    return 0


def measure(args: argparse.Namespace, port: int, children: Children, chain: Localnet) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    log(f"signing up {args.clients} smart wallet senders, {args.clients} keypair wallet senders and 1 recipient, "
        f"faucet {FAUCET_AMOUNT} USDC each ...")
    emails = [f"bench-{run_id}-{index}@example.com" for index in range(2 * args.clients + 1)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        users = list(pool.map(lambda email: sign_up(port, email), emails))
    recipient, senders, keypair_senders = users[0], users[1:args.clients + 1], users[args.clients + 1:]
    run_step([sys.executable, "-c", KEYPAIR_WALLETS_SCRIPT, *[user.email for user in keypair_senders]], platform_env,
             "keypair wallets", timeout=120)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda user: fund(port, user), users[1:]))
    tokens = [user.token for user in senders]
    keypair_tokens = [user.token for user in keypair_senders]
    children.check_alive()
    pay = payment_request(recipient.email)

    groups = {name: process.pid for name, process in children.processes.items()}
    if chain.pid is not None:
        groups["localnet"] = chain.pid
    cpu: dict[str, dict[str, float]] = {"baseline": {}, "payments": {}, "keypair payments": {}}
    sessions: dict[str, int] = dict.fromkeys(cpu, 0)

    def load(name: str, duration: float, request: Callable[..., Any], *, phase_tokens: list[str],
             max_requests: int, collect_id: bool = False) -> Phase:
        before, sessions_before = cpu_snapshot(groups), pg_sessions(args.database)
        measured = run_load(name=name, port=port, tokens=phase_tokens, duration=duration, max_requests=max_requests,
                            make_request=request, expected_status=201, collect_id=collect_id)
        if name in cpu:
            for component, seconds in cpu_delta(before, cpu_snapshot(groups)).items():
                cpu[name][component] = cpu[name].get(component, 0.0) + seconds
            sessions[name] += pg_sessions(args.database) - sessions_before - 1  # (minus this bench's own)
        children.check_alive()
        return measured

    if args.warmup > 0:
        log(f"warm-up: {args.warmup:.0f}s baseline, {args.warmup:.0f}s payments (not measured) ...")
        load("warm-up", args.warmup, baseline_request, phase_tokens=tokens, max_requests=10**6)
        load("warm-up", args.warmup, pay, phase_tokens=tokens, max_requests=args.payments)
        load("warm-up", args.warmup, pay, phase_tokens=keypair_tokens, max_requests=args.payments)
    slots = SlotClock(chain.url).__enter__()  # a daemon thread: ends with the bench
    # Alternate rounds of baseline and payments so that outside load on the machine hits both alike.
    load_before = os.getloadavg()
    baseline, payments = Phase("baseline", args.clients), Phase("payments", args.clients)
    keypair = Phase("keypair payments", args.clients)
    round_seconds = args.duration / args.rounds
    for number in range(1, args.rounds + 1):
        log(f"round {number}/{args.rounds}: baseline {round_seconds:.1f}s, payments {round_seconds:.1f}s, "
            f"{args.clients} clients ...")
        baseline.add(load("baseline", round_seconds, baseline_request, phase_tokens=tokens, max_requests=10**6))
        left = args.payments - len(payments.latencies)
        if left > 0:
            profilers = start_profilers(args, children, chain, round_seconds) if number == 1 else []
            payments.add(load("payments", round_seconds, pay, phase_tokens=tokens, max_requests=left,
                              collect_id=True))
            for profiler in profilers:
                profiler.wait(timeout=round_seconds + 60)
        left = args.payments - len(keypair.latencies)
        if left > 0:
            log(f"round {number}/{args.rounds}: keypair payments {round_seconds:.1f}s ...")
            keypair.add(load("keypair payments", round_seconds, pay, phase_tokens=keypair_tokens, max_requests=left,
                             collect_id=True))
    load_after = os.getloadavg()
    log(f"baseline: {baseline.summary()}")
    log(f"payments (smart wallets): {payments.summary()}")
    log(f"keypair payments: {keypair.summary()}")
    if not baseline.latencies:
        raise BenchError(f"baseline: no successful request ({baseline.errors})")
    if not payments.payment_ids:
        raise BenchError(f"payments: no payment created ({payments.errors})")
    log(f"waiting for {len(payments.payment_ids)} payments to be confirmed ...")
    confirmed = confirmation_times(args.database, payments.payment_ids, timeout=120, slots=slots)
    keypair_confirmed = (confirmation_times(args.database, keypair.payment_ids, timeout=120)
                         if keypair.payment_ids else Confirmations())
    units = {"smart": compute_units(args.database, chain.url, payments.payment_ids),
             "keypair": compute_units(args.database, chain.url, keypair.payment_ids)}
    log(f"compute units per payment: smart {units['smart'][:5]}..., keypair {units['keypair'][:5]}...")
    statuses = confirmed.statuses
    last = payments.payment_ids[-1]
    spot = api_spot_check(port, payments.payment_owner[last], last)
    log(f"final statuses {statuses}; API spot check of {last}: status={spot['status']} "
        f"created_at={spot['created_at']} confirmed_at={spot['confirmed_at']}")

    paced: dict[str, Any] | None = None
    paced_rate = args.paced_rate if args.paced_rate is not None else round(payments.rate / 2, 1)
    if paced_rate > 0 and args.paced_duration > 0:
        log(f"paced: {args.clients} clients, {paced_rate} payments/s in total, {args.paced_duration:.0f}s ...")
        run = run_load(name="paced", port=port, tokens=tokens, duration=args.paced_duration, max_requests=args.payments,
                       make_request=pay, expected_status=201, collect_id=True, rate=paced_rate)
        children.check_alive()
        paced_confirmed = (confirmation_times(args.database, run.payment_ids, timeout=120, slots=slots)
                           if run.payment_ids else Confirmations())
        paced = {"offered_per_second": paced_rate, **run.summary(),
                 "confirmed_p50_s": round(percentile(paced_confirmed.total, 50), 3),
                 "confirmed_p99_s": round(percentile(paced_confirmed.total, 99), 3),
                 "stages": {key: value for key, value in paced_confirmed.summary().items() if "_to_" in key},
                 "statuses": paced_confirmed.statuses}
        log(f"paced: {paced}")

    same_wallet: dict[str, Any] | None = None
    if args.same_wallet_duration > 0:
        log(f"same wallet: {args.clients} clients paying from one wallet, {args.same_wallet_duration:.0f}s ...")
        one = load("same wallet", args.same_wallet_duration, pay, phase_tokens=[tokens[0]] * args.clients,
                   max_requests=args.payments, collect_id=True)
        same_confirmed = (confirmation_times(args.database, one.payment_ids, timeout=120)
                          if one.payment_ids else Confirmations())
        same_wallet = {**one.summary(), "confirmed_p50_s": round(percentile(same_confirmed.total, 50), 3),
                       "confirmed_p99_s": round(percentile(same_confirmed.total, 99), 3),
                       "statuses": same_confirmed.statuses}
        log(f"same wallet: {same_wallet}")

    ratio = payments.rate / baseline.rate
    smart_ratio = payments.rate / keypair.rate if keypair.rate else 0.0
    cpu_ms_per_request = {
        kind: {component: round(1000 * seconds / max(1, len(phase.latencies)), 1)
               for component, seconds in cpu[kind].items()}
        for kind, phase in (("baseline", baseline), ("payments", payments), ("keypair payments", keypair))}
    return {
        "cpu_ms_per_request": cpu_ms_per_request,
        "pg_connections_per_request": {kind: round(sessions[kind] / max(1, len(phase.latencies)), 3)
                                       for kind, phase in (("baseline", baseline), ("payments", payments),
                                                           ("keypair payments", keypair))},
        "bench": "payments", "clients": args.clients, "duration_s": args.duration, "rounds": args.rounds,
        "slot_ms": args.slot_ms, "gunicorn": f"{args.workers}x{args.threads} gthread",
        "worker_concurrency": args.worker_concurrency, "conn_max_age": args.conn_max_age, "db_pool": args.db_pool,
        "cpus": os.cpu_count(),
        "loadavg_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        "baseline": baseline.summary(), "payments": payments.summary(), "ratio": round(ratio, 3),
        "confirmed": confirmed.summary(),
        "keypair_payments": keypair.summary(), "keypair_confirmed": keypair_confirmed.summary(),
        "smart_over_keypair": round(smart_ratio, 3),
        "compute_units": {kind: {"median": round(percentile([float(u) for u in values], 50)) if values else None,
                                 "max": max(values) if values else None, "sample": len(values)}
                          for kind, values in units.items()},
        "paced": paced,
        "same_wallet": same_wallet,
    }


def report(result: dict[str, Any]) -> None:
    base, pay, conf = result["baseline"], result["payments"], result["confirmed"]
    all_confirmed = conf["count"] == pay["requests"]
    cpu = result["cpu_ms_per_request"]
    cpu_base = sum(v for k, v in cpu["baseline"].items() if k not in NOT_PLATFORM)
    cpu_pay = sum(v for k, v in cpu["payments"].items() if k not in NOT_PLATFORM)
    cpu_ratio = cpu_pay / cpu_base if cpu_base else 0.0
    p99_ratio = pay["p99_ms"] / base["p99_ms"] if base["p99_ms"] else 0.0
    rows = [
        ("payments/s ÷ baseline/s", ">= 0.5", f"{result['ratio']:.3f} ({pay['per_second']} / {base['per_second']})",
         result["ratio"] >= TARGET_RATIO),
        ("smart ÷ keypair payments/s", ">= 0.8",
         f"{result['smart_over_keypair']:.3f} ({pay['per_second']} / {result['keypair_payments']['per_second']})",
         result["smart_over_keypair"] >= TARGET_SMART_RATIO),
        ("CPU per payment ÷ baseline's", "<= 3x", f"{cpu_ratio:.2f} ({cpu_pay:.1f} / {cpu_base:.1f} ms)",
         cpu_ratio <= TARGET_CPU_OVER_BASELINE),
        (f"POST p99 ÷ baseline p99 ({result['clients']} cl.)", "<= 2x",
         f"{p99_ratio:.2f} ({pay['p99_ms']} / {base['p99_ms']} ms)",
         p99_ratio <= TARGET_POST_P99_OVER_BASELINE and pay["errors"] == 0),
        ("created -> confirmed p99, closed", "<= 1.0 s", f"{conf['p99_s']} s (p50 {conf['p50_s']} s)",
         conf["p99_s"] <= TARGET_CONFIRMED_P99_S and all_confirmed),
    ]
    if result["paced"]:
        paced = result["paced"]
        rows.append(("created -> confirmed p99, paced", "<= 1.0 s",
                     f"{paced['confirmed_p99_s']} s at {paced['offered_per_second']}/s",
                     paced["confirmed_p99_s"] <= TARGET_CONFIRMED_P99_S and paced["errors"] == 0))
    if result["same_wallet"]:
        one = result["same_wallet"]
        same_ratio = one["per_second"] / pay["per_second"] if pay["per_second"] else 0.0
        rows.append(("same wallet ÷ multi-wallet payments/s", ">= 0.5",
                     f"{same_ratio:.2f} ({one['per_second']} / {pay['per_second']})",
                     same_ratio >= TARGET_SAME_WALLET_RATIO))
    print()
    print(f"Numpay payments bench: {result['clients']} clients, {result['duration_s']:.0f} s per phase, "
          f"slot {result['slot_ms']} ms, gunicorn {result['gunicorn']}, DB connections: "
          f"{'pool of ' + str(result['db_pool']) if result['db_pool'] else 'CONN_MAX_AGE=' + str(result['conn_max_age'])}, "
          f"{result['cpus']} CPUs, "
          f"load average {result['loadavg_1m'][0]} -> {result['loadavg_1m'][1]}")
    print(f"  baseline POST /bench/baseline : {base['per_second']:>8} req/s  p50 {base['p50_ms']} ms  "
          f"p99 {base['p99_ms']} ms  ({base['requests']} ok, {base['errors']} errors)")
    print(f"  POST /api/v1/payments         : {pay['per_second']:>8} req/s  p50 {pay['p50_ms']} ms  "
          f"p99 {pay['p99_ms']} ms  ({pay['requests']} ok, {pay['errors']} errors {pay['error_kinds'] or ''})")
    kp, kpc, cu = result["keypair_payments"], result["keypair_confirmed"], result["compute_units"]
    print(f"  ... from keypair wallets      : {kp['per_second']:>8} req/s  p50 {kp['p50_ms']} ms  "
          f"p99 {kp['p99_ms']} ms  ({kp['requests']} ok, {kp['errors']} errors {kp['error_kinds'] or ''}); "
          f"confirmed {kpc['count']}, p99 {kpc['p99_s']} s")
    print(f"  compute units per payment     : smart wallet (execute) median {cu['smart']['median']} "
          f"max {cu['smart']['max']}; keypair median {cu['keypair']['median']} max {cu['keypair']['max']} "
          f"(of {cu['smart']['sample']} / {cu['keypair']['sample']} confirmed transactions)")
    print(f"  created -> confirmed          : {conf['count']} confirmed of {pay['requests']}  "
          f"p50 {conf['p50_s']} s  p99 {conf['p99_s']} s  max {conf['max_s']} s  {conf['statuses']}")
    print(f"    of which created -> submitted (queue + send) p50 {conf['created_to_submitted_p50_s']} s  "
          f"p99 {conf['created_to_submitted_p99_s']} s; submitted -> confirmed p50 "
          f"{conf['submitted_to_confirmed_p50_s']} s  p99 {conf['submitted_to_confirmed_p99_s']} s")
    if "landed_to_confirmed_p99_s" in conf:
        print(f"    submitted -> slot began (the bench's getSlot clock) p50 {conf['submitted_to_landed_p50_s']} s  p99 "
              f"{conf['submitted_to_landed_p99_s']} s; slot began -> confirmed in the DB p50 "
              f"{conf['landed_to_confirmed_p50_s']} s  p99 {conf['landed_to_confirmed_p99_s']} s")
    if result["paced"]:
        paced = result["paced"]
        print(f"  paced at {paced['offered_per_second']}/s (open loop)  : {paced['per_second']:>8} req/s  "
              f"p50 {paced['p50_ms']} ms  p99 {paced['p99_ms']} ms  ({paced['requests']} ok, {paced['errors']} errors); "
              f"confirmed p50 {paced['confirmed_p50_s']} s  p99 {paced['confirmed_p99_s']} s")
    if result["same_wallet"]:
        one = result["same_wallet"]
        print(f"  same wallet, {result['clients']} clients     : {one['per_second']:>8} req/s  p50 {one['p50_ms']} ms  "
              f"p99 {one['p99_ms']} ms  ({one['requests']} ok, {one['errors']} errors {one['error_kinds'] or ''}); "
              f"confirmed p99 {one['confirmed_p99_s']} s")
    print()
    print("  CPU ms per successful request, by component, during the measured rounds (machine-wide; 'other' is")
    print("  everything not started by the bench, e.g. other jobs on the machine):")
    components = list(result["cpu_ms_per_request"]["payments"])
    print("  " + f"{'':<18}" + "".join(f"{name[:14]:>15}" for name in [*components, "total"]))
    for kind in ("baseline", "payments", "keypair payments"):
        values = result["cpu_ms_per_request"][kind]
        row = "".join(f"{values.get(name, 0.0):>15.1f}" for name in components)
        print(f"  {kind:<18}{row}{sum(values.values()):>15.1f}")
    connections = result.get("pg_connections_per_request", {})
    print("  PostgreSQL connections opened per request (pg_stat_database.sessions): "
          + ", ".join(f"{kind} {count}" for kind, count in connections.items()))
    print()
    print(f"  {'target':<38} {'goal':<10} {'measured':<40} result")
    for name, goal, measured, met in rows:
        print(f"  {name:<38} {goal:<10} {measured:<40} {'met' if met else 'NOT MET'}")
    result["targets"] = {name: {"goal": goal, "measured": measured, "met": met} for name, goal, measured, met in rows}
    print()
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    sys.exit(main())
