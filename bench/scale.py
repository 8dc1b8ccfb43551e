"""How the cost of the hot paths grows with the data: payment create latency and the spending-policy decision
time with 0 / 100k / 1M past payments among 100k wallets, the deposit scan with 10k wallets, bulk wallet
provisioning (wallets/s), and ``EXPLAIN`` of every hot-path query.

Usage::

    .venv/bin/python bench/scale.py [--database numpay_scale] [--redis-dbs 12,13] [--levels 0,100000,1000000] \
        [--wallets 100000] [--scan-wallets 10000] [--creates 40] [--decisions 200] [--batches 5] [--provision 300] \
        [--provision-bulk 5000] [--slot-ms 100]

It drops and re-creates ``--database``, flushes the Redis DBs of ``--redis-dbs`` (cache, broker), starts localnet
(temporary ledger, the wallet program at genesis), migrates and bootstraps; then, in this process (the settings of
the bench's gunicorn: ``bench.baseline.settings``):

1. provisioning: ``--provision`` users get their wallet from ``wallets.services.wallet_provision`` one after
   the other (wallets/s), the same work split into its parts (the custody key's envelope, the vault / config
   addresses, the rows), and ``--provision-bulk`` users through ``wallets.services.wallets_provision_bulk``;
2. ``--scan-wallets`` wallets (real addresses, rows written with ``COPY``) and the deposit scan
   (``wallets.deposits.deposit_scan``, 50 wallets a run as the beat job does): seconds per run and the time to
   look at every wallet once;
3. up to ``--wallets`` wallets, then for each ``--levels`` count of past payments (``INSERT ... SELECT`` from
   ``generate_series``, spread over the wallets and the last 60 days; the measured sender's own history stays
   100 payments, so what grows is the table, not the sender's usage): ``POST /api/v1/payments`` latency
   (``--creates``, Django's test client: the whole stack, chain reads included; each payment is ended right after
   so the sender's open set stays empty) and ``payments.policy_services.payment_policy_decision`` time
   (``--decisions``), in ``--batches`` batches (median, and the lowest batch median: the batch least disturbed
   by other jobs on a shared machine); then ``EXPLAIN (ANALYZE, BUFFERS)`` of the hot-path queries (each path's
   real code is run once and its SELECTs are captured); finally the past payments are deleted and the empty
   table is measured again (the drift of the machine over the run).

Targets: create latency and policy decision time (best batch p50) at the largest level <= 1.1x the empty table's
measured again at the end; bulk provisioning >= 500 wallets/s. Prints them with met / not met; the last line is
``RESULT {json}``. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import inprocess  # noqa: E402
from bench.payments import BenchError, log  # noqa: E402

TARGET_GROWTH = 1.1
TARGET_PROVISION_PER_S = 500.0
SENDER_HISTORY = 100


def median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 2) if samples else 0.0


def copy_rows(table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """``COPY table (columns) FROM STDIN`` on Django's connection (text format)."""
    from django.db import connection

    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if value is None else str(value) for value in row) + "\n")
    buffer.seek(0)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())


def add_wallets(count: int) -> None:
    """``count`` more users with a smart wallet each (real, random addresses; no key rows: never signed with)."""
    from django.utils import timezone
    from solders.keypair import Keypair

    from wallets.smart import smart_wallet_addresses

    if count <= 0:
        return
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM accounts_user")
        first = cursor.fetchone()[0] + 1
    now = timezone.now().isoformat()
    users, wallets = [], []
    for offset in range(count):
        user_id = first + offset
        users.append((user_id, "!", "f", "", "", "f", "t", now, f"bulk{user_id}@scale.example", "f"))
        authority = str(Keypair().pubkey())
        config, vault = smart_wallet_addresses(authority=authority)
        wallets.append((uuid.uuid4(), vault, "custodial", "active", now, user_id, authority, config, "smart", "", ""))
    copy_rows("accounts_user", ["id", "password", "is_superuser", "first_name", "last_name", "is_staff", "is_active",
                                "date_joined", "email", "phone_verified"], users)
    copy_rows("wallets_wallet", ["id", "address", "custody", "status", "created_at", "user_id", "authority",
                                 "config_address", "kind", "previous_address", "claim_email"], wallets)


def add_past_payments(count: int, *, token_id: int, exclude_wallet: uuid.UUID) -> None:
    """``count`` more payments spread over every other wallet and the last 60 days (95% confirmed, 5% failed)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_wallets")
        cursor.execute("CREATE TEMP TABLE bench_wallets AS SELECT row_number() OVER (ORDER BY id) AS n, id, user_id, "
                       "address FROM wallets_wallet WHERE id <> %s AND user_id IS NOT NULL", [exclude_wallet])
        cursor.execute("SELECT COUNT(*) FROM bench_wallets")
        wallets = cursor.fetchone()[0]
        done = 0
        while done < count:
            batch = min(200_000, count - done)
            cursor.execute("""
                INSERT INTO wallets_payment (id, recipient_input, recipient_address, amount, memo, status, signature,
                    slot, error_code, error_message, creates_recipient_token_account, sponsored_lamports,
                    request_fingerprint, created_at, updated_at, approved_at, submitted_at, confirmed_at, failed_at,
                    sender_id, token_id, wallet_id, network_fee)
                SELECT gen_random_uuid(), 'someone@scale.example', r.address, 1000 + (g %% 5000), '',
                    CASE WHEN g %% 20 = 0 THEN 'failed' ELSE 'confirmed' END, md5(g::text) || md5((g + 1)::text),
                    g, '', '', false, 5000, '', t, t, t, t,
                    CASE WHEN g %% 20 = 0 THEN NULL ELSE t END, CASE WHEN g %% 20 = 0 THEN t ELSE NULL END,
                    w.user_id, %s, w.id, 0
                FROM (SELECT g, now() - (random() * interval '60 days') AS t FROM generate_series(%s, %s) g) s
                JOIN bench_wallets w ON w.n = 1 + (s.g %% %s)
                JOIN bench_wallets r ON r.n = 1 + ((s.g * 7 + 3) %% %s)
            """, [token_id, done + 1, done + batch, wallets, wallets])
            done += batch
        cursor.execute("ANALYZE wallets_payment")


def explain(sql: str, params: list[Any] | None = None) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        return [row[0] for row in cursor.fetchall()]


def hot_queries(*, wallet: Any, token: Any, user: Any) -> dict[str, list[str]]:
    """Run each hot path's real code once and capture its SELECT statements (as sent: client-side binding), so
    the plans shown are of exactly what the code runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from numpay.core import rowcache
    from numpay.core.solana import get_chain_client
    from payments.authorization import available_balance
    from payments.models import POLICIES_CACHE
    from payments.policy_services import payment_policy_decision
    from payments.selectors import wallet_activity_page, wallet_activity_version
    from payments.services import _replay, payments_expire_due
    from payments.submission import PaymentOutbox

    paths = {
        "policy decision (rules + usage)": lambda: payment_policy_decision(
            user=user, wallet=wallet, token=token, amount=10_000, recipient="recipient@scale.example"),
        "open payments (available_balance)": lambda: available_balance(client=get_chain_client(), wallet=wallet,
                                                                       token=token),
        "idempotency replay (_replay)": lambda: _replay(user=user, key=str(uuid.uuid4()), fingerprint=""),
        "outbox poller (in_flight)": lambda: list(PaymentOutbox().in_flight()[:256]),
        "expiry sweep (payments_expire_due)": payments_expire_due,
        "activity feed (wallet_activity_page)": lambda: wallet_activity_page(wallet=wallet),
        "live update check (wallet_activity_version)": lambda: wallet_activity_version(wallet=wallet),
    }
    captured: dict[str, list[str]] = {}
    for name, run in paths.items():
        rowcache.forget(POLICIES_CACHE)  # the policies' query too (cached between payments)
        with CaptureQueriesContext(connection) as queries:
            run()
        captured[name] = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    return captured


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import close_old_connections, connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from solders.signature import Signature

    from accounts.models import User
    from numpay.core.solana import get_chain_client
    from payments.models import Payment, SpendingPolicy
    from payments.policy_services import payment_policy_decision
    from relayer import tasks as relayer_tasks
    from wallets import custody
    from wallets.deposits import deposit_scan
    from wallets.models import Token, Wallet
    from wallets.services import wallet_provision, wallets_provision_bulk
    from wallets.smart import smart_wallet_addresses

    log("migrate, localnet_bootstrap ...")
    call_command("migrate", "--noinput", verbosity=0)
    call_command("localnet_bootstrap", "--wait", verbosity=0)
    setup_test_environment()
    result: dict[str, Any] = {}

    # 1. provisioning ------------------------------------------------------------------------------------------
    log(f"provisioning {args.provision} wallets ...")
    unusable = "!"  # noqa: S105 - an unusable password hash (nobody signs in as these users)
    users = User.objects.bulk_create([User(email=f"prov{i}@scale.example", password=unusable)
                                      for i in range(args.provision)])
    start = time.perf_counter()
    for user in users:
        wallet_provision(user=user)
    elapsed = time.perf_counter() - start
    parts = {}
    start = time.perf_counter()
    keys = [custody.new_keypair_envelope(wallet_id=uuid.uuid4()) for _ in range(args.provision)]
    parts["custody key + envelope (ms/wallet)"] = round(1000 * (time.perf_counter() - start) / args.provision, 3)
    start = time.perf_counter()
    for authority, _ in keys:
        smart_wallet_addresses(authority=authority)
    parts["vault + config addresses (ms/wallet)"] = round(1000 * (time.perf_counter() - start) / args.provision, 3)
    parts["rows + checks (ms/wallet, the rest)"] = round(
        1000 * elapsed / args.provision - sum(parts.values()), 3)
    bulk_users = User.objects.bulk_create([User(email=f"bulkprov{i}@scale.example", password=unusable)
                                           for i in range(args.provision_bulk)])
    start = time.perf_counter()
    made = wallets_provision_bulk(users=bulk_users)
    bulk_elapsed = time.perf_counter() - start
    if made != len(bulk_users):
        raise BenchError(f"bulk provisioning made {made} of {len(bulk_users)} wallets")
    result["provisioning"] = {"wallets": args.provision, "one_by_one_per_second": round(args.provision / elapsed, 1),
                              "split": parts, "bulk_wallets": made,
                              "per_second": round(made / bulk_elapsed, 1)}

    # 2. sender, recipient, policy -----------------------------------------------------------------------------
    def sign_up(email: str) -> tuple[Client, str]:
        client = Client()
        response = client.post("/_allauth/app/v1/auth/signup", {"email": email, "password": "bench-Numpay-9"},
                               content_type="application/json")
        if response.status_code != 200:
            raise BenchError(f"signup answered {response.status_code}: {response.content[:300]!r}")
        return client, response.json()["meta"]["session_token"]

    sender, token = sign_up("sender@scale.example")
    sign_up("recipient@scale.example")
    if sender.post("/api/v1/faucet", {"token": "USDC", "amount": "1000"}, content_type="application/json",
                   HTTP_X_SESSION_TOKEN=token).status_code != 201:
        raise BenchError("faucet failed")
    usdc = Token.objects.get(symbol="USDC")
    sender_user = User.objects.get(email="sender@scale.example")
    sender_wallet = Wallet.objects.get(user=sender_user)
    SpendingPolicy.objects.create(scope=SpendingPolicy.Scope.DEFAULT, name="scale default", token=usdc,
                                  per_transaction_cap=10**12, daily_cap=10**13, weekly_cap=10**14,
                                  monthly_cap=10**15, max_payments_per_hour=100_000)
    chain = get_chain_client()

    def pay() -> tuple[str, float]:
        start = time.perf_counter()
        response = sender.post("/api/v1/payments", {"to": "recipient@scale.example", "token": "USDC",
                                                    "amount": "0.01"},
                               content_type="application/json", HTTP_X_SESSION_TOKEN=token,
                               HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        elapsed = time.perf_counter() - start
        close_old_connections()
        if response.status_code != 201:
            raise BenchError(f"payment answered {response.status_code}: {response.content[:300]!r}")
        return response.json()["id"], elapsed

    def end_payment(payment_id: str) -> None:
        # ended at once: the sender's open set (read with the chain at every create) stays empty
        Payment.objects.filter(pk=payment_id).update(status=Payment.Status.FAILED)

    def decide() -> None:
        payment_policy_decision(user=sender_user, wallet=sender_wallet, token=usdc, amount=10_000,
                                recipient="recipient@scale.example")

    log("first payment (creates the wallet's config on-chain) ...")
    first, _ = pay()
    relayer_tasks.outbox_submit.run("payment", first)
    chain.wait_for_confirmation(Signature.from_string(Payment.objects.get(pk=first).signature), timeout=30)
    Payment.objects.filter(pk=first).update(status=Payment.Status.CONFIRMED)
    # the sender's own history: constant at every level
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO wallets_payment (id, recipient_input, recipient_address, amount, memo, status, signature,
                error_code, error_message, creates_recipient_token_account, sponsored_lamports, request_fingerprint,
                created_at, updated_at, confirmed_at, sender_id, token_id, wallet_id, network_fee)
            SELECT gen_random_uuid(), 'x', 'x', 10000, '', 'confirmed', md5(g::text), '', '', false, 0, '',
                now() - g * interval '6 hours', now(), now(), %s, %s, %s, 0 FROM generate_series(1, %s) g
        """, [sender_user.pk, usdc.pk, sender_wallet.pk, SENDER_HISTORY - 1])

    # 3. deposit scan with --scan-wallets wallets ---------------------------------------------------------------
    existing = Wallet.objects.count()
    log(f"{args.scan_wallets} wallets, deposit scan ...")
    add_wallets(args.scan_wallets - existing)
    runs = []
    for _ in range(args.scan_runs):
        start = time.perf_counter()
        deposit_scan(wallet_limit=50)
        runs.append(time.perf_counter() - start)
    close_old_connections()
    wallets_now = Wallet.objects.count()
    per_run = statistics.median(runs)
    result["deposit_scan"] = {
        "wallets": wallets_now, "wallets_per_run": 50, "run_median_s": round(per_run, 3),
        "wallets_per_second": round(50 / per_run, 1),
        "full_cycle_at_beat_interval_s": round(max(15.0, per_run) * wallets_now / 50, 0),
        # the beat job now scans for 5 s per 15 s run (wallets.tasks.deposit_scan)
        "full_cycle_time_bounded_s": round(15.0 * wallets_now / (5.0 * 50 / per_run), 0),
        "explain_selection": explain(*_scan_selection_sql()),
    }

    # 4. levels of past payments among --wallets wallets --------------------------------------------------------
    log(f"{args.wallets} wallets ...")
    add_wallets(args.wallets - Wallet.objects.count())
    inserted = 0
    levels = []
    for level in args.levels:
        log(f"level {level} past payments ...")
        add_past_payments(level - inserted, token_id=usdc.pk, exclude_wallet=sender_wallet.pk)
        inserted = level
        levels.append(measure_level(args, pay=pay, end=end_payment, decide=decide, sender_wallet=sender_wallet,
                                    usdc=usdc, sender_user=sender_user))
    log("back to no past payments (deleted) ...")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM wallets_payment WHERE sender_id <> %s", [sender_user.pk])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE wallets_payment")
    levels.append({**measure_level(args, pay=pay, end=end_payment, decide=decide, sender_wallet=sender_wallet,
                                   usdc=usdc, sender_user=sender_user), "again": True})
    result["levels"] = levels
    return result


def measure_level(args: argparse.Namespace, *, pay: Any, end: Any, decide: Any, sender_wallet: Any, usdc: Any,
                  sender_user: Any) -> dict[str, Any]:
    """Create latency and decision time at the current data, in ``--batches`` batches: the median of all and
    the lowest batch median (the batch least disturbed by other jobs on the machine), and the plans."""
    from django.db import close_old_connections

    from payments.models import Payment
    from wallets.models import Wallet

    for _ in range(3):  # warm the caches (both ours and PostgreSQL's) for this level
        payment_id, _ = pay()
        end(payment_id)
    creates: list[list[float]] = []
    decisions: list[list[float]] = []
    for _ in range(args.batches):
        batch = []
        for _ in range(max(1, args.creates // args.batches)):
            payment_id, elapsed = pay()
            batch.append(elapsed)
            end(payment_id)
        creates.append(batch)
        batch = []
        for _ in range(max(1, args.decisions // args.batches)):
            start = time.perf_counter()
            decide()
            batch.append(time.perf_counter() - start)
        decisions.append(batch)
    plans = {f"{name} #{number}": explain(sql) for name, statements in
             hot_queries(wallet=sender_wallet, token=usdc, user=sender_user).items()
             for number, sql in enumerate(statements, 1)}
    close_old_connections()
    return {"past_payments": Payment.objects.count(), "wallets": Wallet.objects.count(),
            "create_p50_ms": median_ms([x for b in creates for x in b]),
            "create_best_batch_p50_ms": min(median_ms(b) for b in creates),
            "decision_p50_ms": median_ms([x for b in decisions for x in b]),
            "decision_best_batch_p50_ms": min(median_ms(b) for b in decisions),
            "explain": plans}


def _scan_selection_sql() -> tuple[str, list[Any]]:
    from wallets.deposits import wallets_in_scan_order

    sql, params = wallets_in_scan_order()[:50].query.sql_with_params()
    return sql, list(params)


def report(result: dict[str, Any]) -> list[dict[str, Any]]:
    provisioning = result["provisioning"]
    print(f"\nprovisioning one by one (wallet_provision, {provisioning['wallets']} wallets): "
          f"{provisioning['one_by_one_per_second']} wallets/s; split: {provisioning['split']}")
    print(f"bulk provisioning (wallets_provision_bulk, {provisioning['bulk_wallets']} wallets, 500 per transaction): "
          f"{provisioning['per_second']} wallets/s")
    scan = result["deposit_scan"]
    print(f"deposit scan with {scan['wallets']} wallets: {scan['run_median_s']} s per run of 50 wallets "
          f"({scan['wallets_per_second']} wallets/s); every wallet looked at once every "
          f"{scan['full_cycle_at_beat_interval_s']:.0f} s with 50 wallets per 15 s beat run, every "
          f"{scan['full_cycle_time_bounded_s']:.0f} s with 5 s of scanning per run")
    print("  selection query: " + " | ".join(line.strip() for line in scan["explain_selection"][:3]))
    print(f"\n{'past payments':>14} {'wallets':>8} {'create p50 ms (best batch)':>28} "
          f"{'decision p50 ms (best batch)':>30}")
    for level in result["levels"]:
        label = f"{level['past_payments']}{' again' if level.get('again') else ''}"
        print(f"{label:>14} {level['wallets']:>8} "
              f"{str(level['create_p50_ms']) + ' (' + str(level['create_best_batch_p50_ms']) + ')':>28} "
              f"{str(level['decision_p50_ms']) + ' (' + str(level['decision_best_batch_p50_ms']) + ')':>30}")
    zero = [level for level in result["levels"] if level.get("again")] or result["levels"][:1]
    first = zero[0]
    last = max(result["levels"], key=lambda level: level["past_payments"])
    print(f"\nEXPLAIN at {last['past_payments']} past payments (first lines of each plan):")
    for name, plan in last["explain"].items():
        print(f"  {name}:")
        for line in plan[:5]:
            print(f"      {line}")
        timing = [line for line in plan if line.startswith("Execution Time")]
        if timing:
            print(f"      {timing[0]}")
    targets = []
    for key, label in (("create_best_batch_p50_ms", "payment create latency"),
                       ("decision_best_batch_p50_ms", "policy decision time")):
        growth = last[key] / first[key] if first[key] else 0.0
        targets.append({"target": f"{label} (best batch p50) at {last['past_payments']} vs {first['past_payments']} "
                                  f"past payments <= {TARGET_GROWTH}x", "value": round(growth, 3),
                        "met": growth <= TARGET_GROWTH})
    targets.append({"target": f"bulk provisioning >= {TARGET_PROVISION_PER_S:.0f} wallets/s",
                    "value": provisioning["per_second"], "met": provisioning["per_second"] >= TARGET_PROVISION_PER_S})
    print("\nTargets:")
    for target in targets:
        print(f"  {target['target']}: {target['value']} -> {'met' if target['met'] else 'NOT MET'}")
    return targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    inprocess.add_arguments(parser, database="numpay_scale")
    parser.add_argument("--levels", default="0,100000,1000000",
                        type=lambda text: [int(x) for x in text.split(",")], help="past payments per level")
    parser.add_argument("--wallets", type=int, default=100_000, help="wallets for the levels (default 100k)")
    parser.add_argument("--scan-wallets", type=int, default=10_000, help="wallets for the deposit scan (default 10k)")
    parser.add_argument("--scan-runs", type=int, default=3, help="deposit scan runs measured (default 3)")
    parser.add_argument("--creates", type=int, default=40, help="payment creates per level (default 40)")
    parser.add_argument("--decisions", type=int, default=200, help="policy decisions per level (default 200)")
    parser.add_argument("--batches", type=int, default=5, help="batches per level (default 5)")
    parser.add_argument("--provision", type=int, default=300, help="wallets provisioned one by one (default 300)")
    parser.add_argument("--provision-bulk", type=int, default=5000,
                        help="wallets provisioned with wallets_provision_bulk (default 5000)")
    parser.add_argument("--slot-ms", type=int, default=100, help="localnet slot duration (default 100)")
    args = parser.parse_args()
    try:
        with inprocess.environment(name="scale", database=args.database, redis_dbs=args.redis_dbs,
                                   slot_ms=args.slot_ms, conn_max_age=60):
            result = measure(args)
    except BenchError as exc:
        print(f"bench/scale.py: {exc}", file=sys.stderr)
        return 2
    targets = report(result)
    compact = {**result, "levels": [{k: v for k, v in level.items() if k != "explain"} for level in result["levels"]],
               "deposit_scan": {k: v for k, v in result["deposit_scan"].items() if k != "explain_selection"}}
    print("RESULT " + json.dumps({**compact, "targets": targets}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
