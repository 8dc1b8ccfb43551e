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
   each client paying from its own wallet;
3. submit -> confirmed: ``confirmed_at - created_at`` of every payment of step 2 (the API's fields, read
   from the database once the worker has confirmed them all);
4. optionally (``--same-wallet-duration``), all clients paying from one wallet (serialised by the wallet
   row lock).

Prints a table of the targets (ratio >= 0.5, POST p99 <= 100 ms, confirmed p99 <= 1.5 s) and one JSON line
(prefixed ``RESULT``). Only 127.0.0.1 is ever contacted; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
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

HOST = "127.0.0.1"
PASSWORD = "bench-Numpay-9"  # noqa: S105 - throwaway users in a throwaway database
PAYMENT_AMOUNT = "0.01"
FAUCET_AMOUNT = "1000"
TARGET_RATIO = 0.5
TARGET_POST_P99_MS = 100.0
TARGET_CONFIRMED_P99_S = 1.5


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
        user = User(email=email, token=body["meta"]["session_token"])
        api.token = user.token
        status, body = api.request("POST", "/api/v1/faucet", {"token": "USDC", "amount": FAUCET_AMOUNT})
        if status != 201:
            raise BenchError(f"faucet for {email} answered {status}: {body}")
        return user
    finally:
        api.close()


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
             expected_status: int, collect_id: bool = False) -> Phase:
    """``len(tokens)`` threads, one connection each, send requests back to back for ``duration`` seconds
    or until ``max_requests`` were sent in total (whichever comes first)."""
    phase = Phase(name=name, clients=len(tokens))
    lock = threading.Lock()
    budget = iter(range(max_requests))
    start_barrier = threading.Barrier(len(tokens) + 1)
    deadline_holder: list[float] = []

    def client(token: str) -> None:
        api = Api(port, token)
        latencies: list[float] = []
        errors: dict[str, int] = {}
        ids: list[str] = []
        owner: dict[str, str] = {}
        try:
            start_barrier.wait(timeout=30)
            deadline = deadline_holder[0]
            while time.perf_counter() < deadline:
                with lock:
                    if next(budget, None) is None:
                        break
                method, path, body, headers = make_request()
                started = time.perf_counter()
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

    threads = [threading.Thread(target=client, args=(token,), daemon=True) for token in tokens]
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
def confirmation_times(database: str, payment_ids: list[str], timeout: float) -> tuple[list[float], dict[str, int]]:
    """Wait (at most ``timeout`` s) until the payments are terminal; :returns: the ``confirmed_at -
    created_at`` seconds of the confirmed ones, and a count per final status."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(host=HOST, port=5432, user="postgres", dbname=database, connect_timeout=5,
                         autocommit=True) as connection:
        while True:
            rows = connection.execute(
                "SELECT status, created_at, confirmed_at FROM wallets_payment WHERE id = ANY(%s::uuid[])",
                (payment_ids,)).fetchall()
            open_count = sum(1 for status, _, _ in rows if status in ("created", "approved", "submitted"))
            if open_count == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    statuses: dict[str, int] = {}
    for status, _, _ in rows:
        statuses[status] = statuses.get(status, 0) + 1
    times = [(confirmed - created).total_seconds() for status, created, confirmed in rows
             if status == "confirmed" and confirmed is not None]
    return times, statuses


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


# --- orchestration --------------------------------------------------------------------------------------
@contextlib.contextmanager
def platform(args: argparse.Namespace, work: Path) -> Iterator[tuple[int, Children]]:
    """Start localnet, the database, gunicorn, the worker and beat; yield gunicorn's port."""
    check_tcp(5432, "PostgreSQL", "Start it (user postgres, trust auth) or fix pg_hba.conf.")
    check_tcp(6379, "Redis", "Start redis-server.")
    recreate_database(args.database)
    flush_redis((2, 3))
    (work / "logs").mkdir()
    children = Children(work / "logs")
    chain = Localnet(ledger_dir=work / "ledger", slot_ms=args.slot_ms)
    try:
        log(f"localnet (slot {args.slot_ms} ms) ...")
        chain.start()
        env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "LOCALNET_"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": "bench.baseline.settings",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": f"postgres://postgres@{HOST}:5432/{args.database}",
            "DATABASE_CONN_MAX_AGE": str(args.conn_max_age),
            "REDIS_URL": f"redis://{HOST}:6379/2",
            "CELERY_BROKER_URL": f"redis://{HOST}:6379/3",
            "SOLANA_RPC_URL": chain.url,
            "SOLANA_CLUSTER": "localnet",
            "NUMPAY_VAR_DIR": str(work / "var"),
            "API_THROTTLE_USER": "1000000/min",
            "API_THROTTLE_ANON": "1000000/min",
            "API_THROTTLE_FAUCET": "1000000/min",
            "RELAYER_DAILY_BUDGET_LAMPORTS": str(10**15),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
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
        yield port, children
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
    parser.add_argument("--slot-ms", type=int, default=400, help="localnet slot duration (default 400)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--worker-concurrency", type=int, default=8, help="Celery worker threads (default 8)")
    parser.add_argument("--conn-max-age", type=int, default=0,
                        help="DATABASE_CONN_MAX_AGE seconds (default 0, the shipped default: a connection per request)")
    parser.add_argument("--database", default="numpay_bench", help="PostgreSQL database, dropped and re-created")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) after the run")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.duration <= 600 or args.payments < 1 or not 1 <= args.rounds <= 20:
        parser.error("--clients 1..256, --duration (0, 600], --payments >= 1, --rounds 1..20")

    work = Path(tempfile.mkdtemp(prefix="numpay-bench-"))
    try:
        with platform(args, work) as (port, children):
            result = measure(args, port, children)
    except BenchError as exc:
        log(f"ERROR: {exc}")
        log(f"logs: {work / 'logs'}")
        return 2
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    report(result)
    return 0


def measure(args: argparse.Namespace, port: int, children: Children) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    log(f"signing up {args.clients} senders and 1 recipient, faucet {FAUCET_AMOUNT} USDC each ...")
    emails = [f"bench-{run_id}-{index}@example.com" for index in range(args.clients + 1)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        users = list(pool.map(lambda email: sign_up(port, email), emails))
    recipient, senders = users[0], users[1:]
    tokens = [user.token for user in senders]
    children.check_alive()
    pay = payment_request(recipient.email)

    def load(name: str, duration: float, request: Callable[..., Any], *, phase_tokens: list[str],
             max_requests: int, collect_id: bool = False) -> Phase:
        measured = run_load(name=name, port=port, tokens=phase_tokens, duration=duration, max_requests=max_requests,
                            make_request=request, expected_status=201, collect_id=collect_id)
        children.check_alive()
        return measured

    if args.warmup > 0:
        log(f"warm-up: {args.warmup:.0f}s baseline, {args.warmup:.0f}s payments (not measured) ...")
        load("warm-up", args.warmup, baseline_request, phase_tokens=tokens, max_requests=10**6)
        load("warm-up", args.warmup, pay, phase_tokens=tokens, max_requests=args.payments)
    # Alternate rounds of baseline and payments so that outside load on the machine hits both alike.
    load_before = os.getloadavg()
    baseline, payments = Phase("baseline", args.clients), Phase("payments", args.clients)
    round_seconds = args.duration / args.rounds
    for number in range(1, args.rounds + 1):
        log(f"round {number}/{args.rounds}: baseline {round_seconds:.1f}s, payments {round_seconds:.1f}s, "
            f"{args.clients} clients ...")
        baseline.add(load("baseline", round_seconds, baseline_request, phase_tokens=tokens, max_requests=10**6))
        left = args.payments - len(payments.latencies)
        if left > 0:
            payments.add(load("payments", round_seconds, pay, phase_tokens=tokens, max_requests=left,
                              collect_id=True))
    load_after = os.getloadavg()
    log(f"baseline: {baseline.summary()}")
    log(f"payments: {payments.summary()}")
    if not baseline.latencies:
        raise BenchError(f"baseline: no successful request ({baseline.errors})")
    if not payments.payment_ids:
        raise BenchError(f"payments: no payment created ({payments.errors})")
    log(f"waiting for {len(payments.payment_ids)} payments to be confirmed ...")
    confirmed, statuses = confirmation_times(args.database, payments.payment_ids, timeout=120)
    last = payments.payment_ids[-1]
    spot = api_spot_check(port, payments.payment_owner[last], last)
    log(f"final statuses {statuses}; API spot check of {last}: status={spot['status']} "
        f"created_at={spot['created_at']} confirmed_at={spot['confirmed_at']}")

    same_wallet: dict[str, Any] | None = None
    if args.same_wallet_duration > 0:
        log(f"same wallet: {args.clients} clients paying from one wallet, {args.same_wallet_duration:.0f}s ...")
        one = load("same wallet", args.same_wallet_duration, pay, phase_tokens=[tokens[0]] * args.clients,
                   max_requests=args.payments, collect_id=True)
        same_confirmed, same_statuses = (confirmation_times(args.database, one.payment_ids, timeout=120)
                                         if one.payment_ids else ([], {}))
        same_wallet = {**one.summary(), "confirmed_p50_s": round(percentile(same_confirmed, 50), 3),
                       "confirmed_p99_s": round(percentile(same_confirmed, 99), 3), "statuses": same_statuses}
        log(f"same wallet: {same_wallet}")

    ratio = payments.rate / baseline.rate
    return {
        "bench": "payments", "clients": args.clients, "duration_s": args.duration, "rounds": args.rounds,
        "slot_ms": args.slot_ms, "gunicorn": f"{args.workers}x{args.threads} gthread",
        "worker_concurrency": args.worker_concurrency, "conn_max_age": args.conn_max_age, "cpus": os.cpu_count(),
        "loadavg_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        "baseline": baseline.summary(), "payments": payments.summary(), "ratio": round(ratio, 3),
        "confirmed": {"count": len(confirmed), "statuses": statuses,
                      "p50_s": round(percentile(confirmed, 50), 3), "p99_s": round(percentile(confirmed, 99), 3),
                      "max_s": round(max(confirmed, default=0.0), 3)},
        "same_wallet": same_wallet,
    }


def report(result: dict[str, Any]) -> None:
    base, pay, conf = result["baseline"], result["payments"], result["confirmed"]
    all_confirmed = conf["count"] == pay["requests"]
    rows = [
        ("payments/s ÷ baseline/s", ">= 0.5", f"{result['ratio']:.3f} ({pay['per_second']} / {base['per_second']})",
         result["ratio"] >= TARGET_RATIO),
        (f"POST p99 at {result['clients']} clients", "<= 100 ms", f"{pay['p99_ms']} ms (p50 {pay['p50_ms']} ms)",
         pay["p99_ms"] <= TARGET_POST_P99_MS and pay["errors"] == 0),
        ("created -> confirmed p99", "<= 1.5 s", f"{conf['p99_s']} s (p50 {conf['p50_s']} s)",
         conf["p99_s"] <= TARGET_CONFIRMED_P99_S and all_confirmed),
    ]
    print()
    print(f"Numpay payments bench: {result['clients']} clients, {result['duration_s']:.0f} s per phase, "
          f"slot {result['slot_ms']} ms, gunicorn {result['gunicorn']}, {result['cpus']} CPUs, "
          f"load average {result['loadavg_1m'][0]} -> {result['loadavg_1m'][1]}")
    print(f"  baseline POST /bench/baseline : {base['per_second']:>8} req/s  p50 {base['p50_ms']} ms  "
          f"p99 {base['p99_ms']} ms  ({base['requests']} ok, {base['errors']} errors)")
    print(f"  POST /api/v1/payments         : {pay['per_second']:>8} req/s  p50 {pay['p50_ms']} ms  "
          f"p99 {pay['p99_ms']} ms  ({pay['requests']} ok, {pay['errors']} errors {pay['error_kinds'] or ''})")
    print(f"  created -> confirmed          : {conf['count']} confirmed of {pay['requests']}  "
          f"p50 {conf['p50_s']} s  p99 {conf['p99_s']} s  max {conf['max_s']} s  {conf['statuses']}")
    if result["same_wallet"]:
        one = result["same_wallet"]
        print(f"  same wallet, {result['clients']} clients     : {one['per_second']:>8} req/s  p50 {one['p50_ms']} ms  "
              f"p99 {one['p99_ms']} ms  ({one['requests']} ok, {one['errors']} errors {one['error_kinds'] or ''}); "
              f"confirmed p99 {one['confirmed_p99_s']} s")
    print()
    print(f"  {'target':<32} {'goal':<10} {'measured':<40} result")
    for name, goal, measured, met in rows:
        print(f"  {name:<32} {goal:<10} {measured:<40} {'met' if met else 'NOT MET'}")
    result["targets"] = {"ratio": rows[0][3], "post_p99": rows[1][3], "confirmed_p99": rows[2][3]}
    print()
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    sys.exit(main())
