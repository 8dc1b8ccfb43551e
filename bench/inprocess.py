"""Start-up shared by the benches that run Django in their own process (``bench/costs.py``,
``bench/scale.py``): PostgreSQL and Redis checked, the bench's database dropped and re-created, its two Redis
DBs flushed, a localnet child with the wallet program at genesis, and the environment Django is configured
from (as the bench's gunicorn and worker are: ``bench.baseline.settings``, ``DJANGO_DEBUG=false``, throttles
and the sponsorship budget out of the way). Everything is stopped and flushed again on the way out.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.payments import HOST, check_tcp, flush_redis, recreate_database
from localnet.testing import Localnet
from wallets.app_settings import LOCALNET_WALLET_PROGRAM_ID, WALLET_PROGRAM_SO

ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser, *, database: str) -> None:
    """``--database`` (default ``database``) and ``--redis-dbs CACHE,BROKER`` (default 12,13)."""
    parser.add_argument("--database", default=database, help="PostgreSQL database, dropped and re-created")
    parser.add_argument("--redis-dbs", default="12,13", type=lambda text: tuple(int(x) for x in text.split(",")),
                        help="Redis DBs CACHE,BROKER (flushed; default 12,13)")


@contextmanager
def environment(*, name: str, database: str, redis_dbs: tuple[int, int], slot_ms: int,
                conn_max_age: int) -> Iterator[Localnet]:
    """The bench's database, Redis DBs, localnet and Django environment, for the block (``django.setup()`` is
    the caller's, inside it).

    :param name: the bench's name, for the temporary directory.
    :raises BenchError: PostgreSQL or Redis is not reachable.
    """
    check_tcp(5432, "PostgreSQL", "Start it (user postgres, trust auth).")
    check_tcp(6379, "Redis", "Start redis-server.")
    recreate_database(database)
    cache_db, broker_db = redis_dbs
    flush_redis((cache_db, broker_db))
    with tempfile.TemporaryDirectory(prefix=f"numpay-{name}-") as work:
        program_id = os.environ.get("NUMPAY_WALLET_PROGRAM_ID", LOCALNET_WALLET_PROGRAM_ID)
        chain = Localnet(ledger_dir=Path(work) / "ledger", slot_ms=slot_ms,
                         programs=[(program_id, ROOT / WALLET_PROGRAM_SO)])
        chain.start()
        try:
            for key in [k for k in os.environ if k.startswith(("DJANGO_", "LOCALNET_"))]:
                del os.environ[key]
            os.environ.update({
                "DJANGO_SETTINGS_MODULE": "bench.baseline.settings",
                "DJANGO_DEBUG": "false",
                "DATABASE_URL": f"postgres://postgres@{HOST}:5432/{database}",
                "DATABASE_CONN_MAX_AGE": str(conn_max_age),
                "REDIS_URL": f"redis://{HOST}:6379/{cache_db}",
                "CELERY_BROKER_URL": f"redis://{HOST}:6379/{broker_db}",
                "NUMPAY_WALLET_PROGRAM_ID": program_id,
                "SOLANA_RPC_URL": chain.url,
                "SOLANA_CLUSTER": "localnet",
                "NUMPAY_VAR_DIR": str(Path(work) / "var"),
                "API_THROTTLE_USER": "1000000/min",
                "API_THROTTLE_FAUCET": "1000000/min",
                "RELAYER_DAILY_BUDGET_LAMPORTS": str(10**15),
                "LOG_LEVEL": "WARNING",
            })
            yield chain
        finally:
            chain.stop()
            flush_redis((cache_db, broker_db))
