"""What one payment costs, step by step: SQL statements, DB round trips, connections opened, JSON-RPC calls
and Python CPU, for the create request and every worker step (no load, so the counts are exact).

Usage::

    .venv/bin/python bench/costs.py [--payments 10] [--slot-ms 400] [--database numpay_costs] \
        [--redis-dbs 12,13] [--conn-max-age 0] [--batch N]

It drops and re-creates ``--database``, flushes the two Redis DBs of ``--redis-dbs`` (cache, broker), starts
localnet (temporary ledger, the wallet program at genesis), migrates and bootstraps, then, in this process
(Django configured as the bench's gunicorn and worker are: ``bench.baseline.settings``, ``DJANGO_DEBUG=false``),
signs up a sender and a recipient through the allauth headless API, funds the sender, makes warm-up payments
(the first one of a wallet also creates its config) and then measures ``--payments`` payments, one at a time:

- ``web: POST /api/v1/payments`` through Django's test client (the full middleware + DRF stack, the
  ``X-Session-Token`` authentication included);
- ``worker: outbox_submit`` (the task body, as the Celery worker runs it);
- ``worker: outbox_poll`` (one poller round with this one payment in flight, run once the transaction is
  at the commitment: it records the outcome, or, before the poller did that itself, hands it over to)
- ``worker: outbox_check`` (confirm: the payment's state, the attempt, sponsorship settlement; only where the
  poller hands it over).

With ``--batch N`` the payments are made N at a time, each sent, and the N are confirmed by one poller round
(as under load, where one round sees every payment in flight): that round's cost is shown per payment.

Counted per step: SQL statements Django executed (``connection.execute_wrapper``: SELECT / INSERT /
UPDATE / DELETE / SAVEPOINT), transactions (each adds a ``BEGIN`` and a ``COMMIT`` round trip with psycopg 3),
connections opened (``connection_created``: a TCP + authentication + startup exchange each), JSON-RPC calls by
method (``ChainClient._post``), Celery messages published, the thread's CPU time, and the CPU time of the
PostgreSQL backend serving it (``/proc/<backend pid>/schedstat``; a new connection's start-up included). Statements + 2 x
transactions = the DB round trips of the step (a new connection adds its own startup exchange on top).

Only 127.0.0.1 is contacted. Tasks that the steps queue on the broker are not run by a worker (there is
none): this script runs each step itself, in order, and flushes the broker DB at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import inprocess  # noqa: E402
from bench.payments import BenchError, log  # noqa: E402


@dataclass
class Counts:
    """What one step did (summed over the measured payments)."""

    statements: collections.Counter[str] = field(default_factory=collections.Counter)
    transactions: int = 0
    connections: int = 0
    rpc: collections.Counter[str] = field(default_factory=collections.Counter)
    messages: int = 0
    cpu: float = 0.0
    db_cpu: float = 0.0
    runs: int = 0
    sql: list[str] = field(default_factory=list)

    def per_run(self) -> dict[str, Any]:
        n = max(self.runs, 1)
        statements = sum(self.statements.values())
        return {
            "statements": round(statements / n, 1),
            "by_kind": {k: round(v / n, 1) for k, v in sorted(self.statements.items())},
            "transactions": round(self.transactions / n, 1),
            "round_trips": round((statements + 2 * self.transactions) / n, 1),
            "connections": round(self.connections / n, 1),
            "rpc_calls": round(sum(self.rpc.values()) / n, 1),
            "rpc": {k: round(v / n, 1) for k, v in sorted(self.rpc.items())},
            "celery_messages": round(self.messages / n, 1),
            "cpu_ms": round(1000 * self.cpu / n, 1),
            "db_cpu_ms": round(1000 * self.db_cpu / n, 1),
        }


class Meter:
    """Installs the counters once; :meth:`step` attributes what happens in its block to a named step."""

    def __init__(self) -> None:
        self.current: Counts | None = None
        self.steps: dict[str, Counts] = {}
        self.backend_start: dict[int, float] = {}  # backend pid -> its CPU seconds when the step began

    @staticmethod
    def backend_cpu(pid: int) -> float:
        """CPU seconds the PostgreSQL backend ``pid`` has run (``/proc/<pid>/schedstat``, nanoseconds)."""
        try:
            return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    @staticmethod
    def backend_pid(wrapper: Any) -> int | None:
        raw = getattr(wrapper, "connection", None)
        return None if raw is None or raw.closed else raw.info.backend_pid

    def install(self) -> None:
        from celery.app.task import Task
        from django.db import connection, connections
        from django.db.backends.base.base import BaseDatabaseWrapper
        from django.db.backends.signals import connection_created

        from numpay.core.solana.client import ChainClient

        meter = self
        connection_created.connect(self._on_connect, weak=False)
        original_post = ChainClient._post

        def counted_post(client: ChainClient, body: str, method: str) -> bytes:
            if meter.current is not None:
                meter.current.rpc[method.removesuffix("Resp")] += 1
            return original_post(client, body, method)

        ChainClient._post = counted_post  # type: ignore[method-assign]
        original_commit, original_rollback = BaseDatabaseWrapper._commit, BaseDatabaseWrapper._rollback

        def counted_commit(wrapper: BaseDatabaseWrapper) -> Any:
            if meter.current is not None and wrapper.connection is not None:
                meter.current.transactions += 1
            return original_commit(wrapper)

        def counted_rollback(wrapper: BaseDatabaseWrapper) -> Any:
            if meter.current is not None and wrapper.connection is not None:
                meter.current.transactions += 1
            return original_rollback(wrapper)

        wrapper_class = type(connections["default"])  # the PostgreSQL backend's own _close (it knows the pool)
        original_close = wrapper_class._close

        def measured_close(wrapper: BaseDatabaseWrapper) -> Any:
            pid = meter.backend_pid(wrapper)
            if meter.current is not None and pid is not None:  # the backend's CPU up to its end
                meter.current.db_cpu += meter.backend_cpu(pid) - meter.backend_start.pop(pid, 0.0)
            return original_close(wrapper)

        wrapper_class._close = measured_close  # type: ignore[method-assign]
        BaseDatabaseWrapper._commit = counted_commit  # type: ignore[method-assign]
        BaseDatabaseWrapper._rollback = counted_rollback  # type: ignore[method-assign]
        original_apply = Task.apply_async

        def counted_apply(task: Task, *args: Any, **kwargs: Any) -> Any:
            if meter.current is not None:
                meter.current.messages += 1
            return original_apply(task, *args, **kwargs)

        Task.apply_async = counted_apply  # type: ignore[method-assign]
        self._wrap(connection)

    def _wrap(self, connection: Any) -> None:
        if getattr(connection, "_bench_wrapped", False):
            return
        connection.execute_wrappers.append(self._execute)
        connection._bench_wrapped = True

    def _on_connect(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        self._wrap(connection)
        if self.current is not None:
            self.current.connections += 1
            pid = self.backend_pid(connection)
            if pid is not None:
                self.backend_start[pid] = 0.0  # a new backend: its start-up counts too

    def _execute(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.current is not None:
            self.current.statements[sql.lstrip().split(None, 1)[0].upper()] += 1
            if self.current.runs == 0:
                self.current.sql.append(" ".join(sql.split())[:160])
        return execute(sql, params, many, context)

    @contextmanager
    def step(self, name: str, *, payments: int = 1):  # noqa: ANN201
        """Attribute the block to ``name``, shared by ``payments`` payments (a poller round of several)."""
        from django.db import connection

        counts = self.steps.setdefault(name, Counts())
        self.backend_start = {}
        pid = self.backend_pid(connection)
        if pid is not None:
            self.backend_start[pid] = self.backend_cpu(pid)
        self.current = counts
        start = time.thread_time()
        try:
            yield counts
        finally:
            counts.cpu += time.thread_time() - start
            pid = self.backend_pid(connection)
            if pid is not None and pid in self.backend_start:
                counts.db_cpu += self.backend_cpu(pid) - self.backend_start.pop(pid)
            counts.runs += payments
            self.current = None


def measure(args: argparse.Namespace, rpc_url: str) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    log("migrate, localnet_bootstrap ...")
    call_command("migrate", "--noinput", verbosity=0)
    call_command("localnet_bootstrap", "--wait", verbosity=0)

    from django.db import close_old_connections
    from django.test.utils import setup_test_environment
    from solders.signature import Signature

    from numpay.core.solana import get_chain_client
    from payments.models import Payment
    from relayer import tasks as relayer_tasks

    setup_test_environment()  # the test client's "testserver" host

    def sign_up(email: str) -> tuple[Client, str]:
        client = Client()
        response = client.post("/_allauth/app/v1/auth/signup", {"email": email, "password": "bench-Numpay-9"},
                               content_type="application/json")
        if response.status_code != 200:
            raise BenchError(f"signup answered {response.status_code}: {response.content[:300]!r}")
        return client, response.json()["meta"]["session_token"]

    sender, token = sign_up("sender@bench.example")
    sign_up("recipient@bench.example")
    response = sender.post("/api/v1/faucet", {"token": "USDC", "amount": "1000"}, content_type="application/json",
                           HTTP_X_SESSION_TOKEN=token)
    if response.status_code != 201:
        raise BenchError(f"faucet answered {response.status_code}: {response.content[:300]!r}")
    chain = get_chain_client()
    meter = Meter()
    meter.install()

    def pay(step: str | None) -> str:
        body = {"to": "recipient@bench.example", "token": "USDC", "amount": "0.01"}
        context = meter.step(step) if step else _nothing()
        with context:
            response = sender.post("/api/v1/payments", body, content_type="application/json",
                                   HTTP_X_SESSION_TOKEN=token, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
            close_old_connections()  # what the request_finished signal does in gunicorn
        if response.status_code != 201:
            raise BenchError(f"payment answered {response.status_code}: {response.content[:300]!r}")
        return response.json()["id"]

    def worker(step: str | None, task: Any, *task_args: Any, payments: int = 1) -> Any:
        context = meter.step(step, payments=payments) if step else _nothing()
        with context:
            result = task.run(*task_args)
            close_old_connections()  # Celery's Django fixup does this after every task
        return result

    def confirm(payment_id: str, prefix: str | None) -> None:
        worker(prefix and f"{prefix}outbox_submit", relayer_tasks.outbox_submit, "payment", payment_id)
        signature = Payment.objects.get(pk=payment_id).signature
        chain.wait_for_confirmation(Signature.from_string(signature), timeout=30)
        close_old_connections()
        for _ in range(3):
            relayer_tasks.cache.delete_many([relayer_tasks.POLLER_LOCK_KEY, relayer_tasks.POLL_AGAIN_KEY])
            worker(prefix and f"{prefix}outbox_poll", relayer_tasks.outbox_poll)
            if Payment.objects.get(pk=payment_id).status == Payment.Status.CONFIRMED:  # the poller recorded it
                close_old_connections()
                return
            worker(prefix and f"{prefix}outbox_check", relayer_tasks.outbox_check, "payment", payment_id)
            if Payment.objects.get(pk=payment_id).status == Payment.Status.CONFIRMED:
                close_old_connections()
                return
        raise BenchError(f"payment {payment_id} not confirmed: {Payment.objects.get(pk=payment_id).status}")

    def confirm_together(payment_ids: list[str]) -> None:
        """Send each, then record all their outcomes in one poller round (``--batch``)."""
        for payment_id in payment_ids:
            worker("worker: outbox_submit", relayer_tasks.outbox_submit, "payment", payment_id)
        for payment_id in payment_ids:
            chain.wait_for_confirmation(Signature.from_string(Payment.objects.get(pk=payment_id).signature),
                                        timeout=30)
        close_old_connections()
        relayer_tasks.cache.delete_many([relayer_tasks.POLLER_LOCK_KEY, relayer_tasks.POLL_AGAIN_KEY])
        worker(f"worker: outbox_poll ({len(payment_ids)} a round)", relayer_tasks.outbox_poll,
               payments=len(payment_ids))
        left = Payment.objects.filter(pk__in=payment_ids).exclude(status=Payment.Status.CONFIRMED).count()
        close_old_connections()
        if left:
            raise BenchError(f"{left} of {len(payment_ids)} payments not confirmed by one poller round")

    log("warm-up payments ...")
    for _ in range(2):
        confirm(pay(None), None)
    if args.batch > 1:
        log(f"measuring {args.payments} payments, confirmed {args.batch} per poller round ...")
        for start in range(0, args.payments, args.batch):
            confirm_together([pay("web: POST /api/v1/payments") for _ in range(min(args.batch,
                                                                                   args.payments - start))])
        return {name: counts.per_run() for name, counts in meter.steps.items()}
    log(f"measuring {args.payments} payments ...")
    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
    for _ in range(args.payments):
        if profiler is not None:
            profiler.enable()
        payment_id = pay("web: POST /api/v1/payments")
        if profiler is not None:
            profiler.disable()
        confirm(payment_id, "worker: ")
    if profiler is not None:
        import pstats

        print(f"--- cProfile of the create requests (cumulative, top {args.cprofile})", file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(args.cprofile)
    if args.sql:
        for name, counts in meter.steps.items():
            print(f"--- {name}: the first run's statements", file=sys.stderr)
            for line in counts.sql:
                print("   ", line, file=sys.stderr)
    return {name: counts.per_run() for name, counts in meter.steps.items()}


@contextmanager
def _nothing():  # noqa: ANN202
    yield None


def print_table(result: dict[str, Any]) -> None:
    print(f"{'step':<30} {'stmts':>6} {'tx':>4} {'round trips':>11} {'conns':>5} {'RPC':>4} {'msgs':>4} "
          f"{'CPU ms':>7} {'DB CPU':>7}  statements by kind / RPC by method")
    total = collections.Counter()
    for name, row in result.items():
        print(f"{name:<30} {row['statements']:>6} {row['transactions']:>4} {row['round_trips']:>11} "
              f"{row['connections']:>5} {row['rpc_calls']:>4} {row['celery_messages']:>4} {row['cpu_ms']:>7} "
              f"{row['db_cpu_ms']:>7}  "
              f"{row['by_kind']} {row['rpc']}")
        for key in ("statements", "transactions", "round_trips", "connections", "rpc_calls", "celery_messages",
                    "cpu_ms", "db_cpu_ms"):
            total[key] += row[key]
    print(f"{'total per payment':<30} {total['statements']:>6.1f} {total['transactions']:>4.1f} "
          f"{total['round_trips']:>11.1f} {total['connections']:>5.1f} {total['rpc_calls']:>4.1f} "
          f"{total['celery_messages']:>4.1f} {total['cpu_ms']:>7.1f} {total['db_cpu_ms']:>7.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=10, help="measured payments (default 10)")
    parser.add_argument("--slot-ms", type=int, default=400, help="localnet slot duration (default 400)")
    inprocess.add_arguments(parser, database="numpay_costs")
    parser.add_argument("--conn-max-age", type=int, default=0, help="DATABASE_CONN_MAX_AGE (default 0)")
    parser.add_argument("--batch", type=int, default=1, metavar="N",
                        help="create N payments, then confirm them in one poller round (its cost shared by N)")
    parser.add_argument("--sql", action="store_true", help="print each step's statements (first payment)")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="profile the create requests with cProfile and print the top N functions")
    args = parser.parse_args()
    try:
        with inprocess.environment(name="costs", database=args.database, redis_dbs=args.redis_dbs,
                                   slot_ms=args.slot_ms, conn_max_age=args.conn_max_age) as chain:
            result = measure(args, chain.url)
    except BenchError as exc:
        print(f"bench/costs.py: {exc}", file=sys.stderr)
        return 2
    print_table(result)
    print("RESULT " + json.dumps({"conn_max_age": args.conn_max_age, "slot_ms": args.slot_ms, "steps": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
