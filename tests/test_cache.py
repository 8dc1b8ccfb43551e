"""The cache is shared between processes (issue 7 item 6; DESIGN.md "Processes"): a key one process writes
another reads, single-flight locks hold across processes and threads, and a balance read right after a
payment is confirmed by the worker shows the new balance in another web process at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def _django_env(**extra: str) -> dict[str, str]:
    """The environment of a second Django process on this test's settings, database and chain."""
    from django.conf import settings

    env = dict(os.environ, SOLANA_RPC_URL=settings.SOLANA_RPC_URL, SOLANA_CLUSTER=settings.SOLANA_CLUSTER)
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = (f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
                               f"{db['PORT'] or 5432}/{db['NAME']}")
    env.update(extra)
    return env


def _run_django(code: str) -> str:
    script = "import django\ndjango.setup()\n" + code
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=_django_env(), capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_key_written_by_another_process_is_read_here() -> None:
    key, value = f"cross-process-{uuid.uuid4()}", {"balance": 12_345}
    # when another process writes a key
    _run_django(f"from django.core.cache import cache\ncache.set({key!r}, {value!r}, 60)")
    # then this process reads it, and its deletion here is seen there
    assert cache.get(key) == value
    cache.delete(key)
    assert _run_django(f"from django.core.cache import cache\nprint(cache.get({key!r}, 'gone'))") == "gone"


def test_a_single_flight_lock_taken_by_another_process_holds_here() -> None:
    key = f"lock-{uuid.uuid4()}"
    assert _run_django(f"from django.core.cache import cache\nprint(cache.add({key!r}, 1, 30))") == "True"
    assert cache.add(key, 1, 30) is False
    cache.delete(key)
    assert cache.add(key, 1, 30) is True
    cache.delete(key)


def test_exactly_one_of_many_concurrent_adds_wins() -> None:
    key = f"race-{uuid.uuid4()}"
    start = threading.Barrier(8)
    wins: list[bool] = []

    def contender() -> None:
        from django.core.cache import caches

        start.wait()
        wins.append(caches["default"].add(key, threading.get_ident(), 30))

    threads = [threading.Thread(target=contender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]
    cache.delete(key)


def test_the_embedded_cache_is_the_file_cache_unless_redis_is_configured(settings) -> None:
    backend = settings.CACHES["default"]["BACKEND"]
    expected = "numpay.core.cache.RedisCache" if settings.REDIS_URL else "numpay.core.cache.FileBasedCache"
    assert backend == expected


def test_the_redis_cache_builds_one_client_per_pool_and_shares_it_across_threads(settings) -> None:
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set: the cache is the embedded file cache, which has no client")
    from django.core.cache import caches

    backend = caches["default"]
    client = backend._cache.get_client()
    assert backend._cache.get_client("another key", write=True) is client
    results: list[object] = []

    def use() -> None:
        results.append(backend.get("numpay-test-shared-client"))

    backend.set("numpay-test-shared-client", 42, 30)
    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 4
    assert backend._cache.get_client() is client
    backend.delete("numpay-test-shared-client")


_READER = """
import json, sys
import django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
for line in sys.stdin:
    response = client.get("/api/v1/wallet", HTTP_X_SESSION_TOKEN=line.strip())
    amounts = {b["token"]: b["amount"] for b in response.json()["balances"]}
    print(json.dumps(amounts), flush=True)
"""


class _OtherWebProcess:
    """A second web process answering ``GET /api/v1/wallet`` for a session token, one line per request."""

    def __init__(self, **env: str):
        self.process = subprocess.Popen([sys.executable, "-c", _READER], cwd=ROOT, env=_django_env(**env),  # noqa: S603
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def balances(self, token: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(token + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.mark.chain
def test_recipient_sees_the_new_balance_in_another_process_right_after_confirmation(celery_worker, settings) -> None:
    from .payments_support import ApiUser, wait_terminal

    # given a long balance cache, the same in this process and in another web process
    settings.SOLANA_BALANCE_CACHE_SECONDS = 60
    alice, bob = ApiUser(f"alice-{uuid.uuid4()}@example.com"), ApiUser(f"bob-{uuid.uuid4()}@example.com")
    alice.faucet("USDC", "10")
    web = _OtherWebProcess(SOLANA_BALANCE_CACHE_SECONDS="60")
    try:
        # and Bob's balance was read (and cached) by the other web process
        assert web.balances(bob.token)["USDC"] == "0"
        # when Alice pays him and the worker (another thread, its own cache client) confirms it
        response = alice.pay(bob.email, "USDC", "2.5")
        assert response.status_code == 201, response.content
        assert wait_terminal([response.json()["id"]]) == {response.json()["id"]: "confirmed"}
        # then the other web process shows the new balance at once, as does this one
        assert web.balances(bob.token)["USDC"] == "2500000"
        assert {b["token"]: b["amount"] for b in bob.get("/api/v1/wallet").json()["balances"]}["USDC"] == "2500000"
    finally:
        web.close()


def test_a_full_file_cache_drops_expired_entries_before_live_locks(tmp_path, monkeypatch) -> None:
    import time

    from numpay.core import cache as file_cache

    monkeypatch.setattr(file_cache, "CULL_CHECK_EVERY", 1)
    store = file_cache.FileBasedCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 50}})
    assert store.add("poller-lock", 1, 60) is True
    for i in range(40):
        store.set(f"stale-{i}", i, 0.01)
    time.sleep(0.05)
    # when the cache fills up with live entries
    for i in range(45):
        store.set(f"live-{i}", i, 60)
    # then the expired entries went, and the lock and every live entry stayed
    assert store.get("poller-lock") == 1
    assert len(store._list_cache_files()) == 46
    assert store.add("poller-lock", 2, 60) is False
