"""Race tests that can fail: they run where row locks mean something (PostgreSQL) and interleave
transactions deterministically, by watching the database make one wait for the other.

On SQLite every writer is serialised by the database itself (``BEGIN IMMEDIATE``), so a race test would
pass even with every ``select_for_update`` removed: such tests are skipped there, with the reason.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection, connections

#: Mark a test that proves a row lock (or a unique index) serialises concurrent transactions.
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row-lock race: SQLite serialises all writers, so this would pass even without the lock; "
           "runs on PostgreSQL (set DATABASE_URL=postgres://..., as CI does)")


def wait_for_lock_waiters(count: int = 1, *, timeout: float = 10.0, give_up_when=None) -> bool:  # noqa: ANN001
    """Wait until ``count`` other sessions of this database are blocked on a lock (``pg_stat_activity``
    ``wait_event_type = 'Lock'``): the deterministic signal that a concurrent transaction reached the
    locked row and now waits for the holder to commit.

    :param give_up_when: optional ``() -> bool``; stop waiting as soon as it is true (e.g. the other
        transaction already finished: it was not blocked, and the test's assertions will say so).
    :returns: whether the waiters were seen.
    """
    observer = connections.create_connection("default")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with observer.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
                if cursor.fetchone()[0] >= count:
                    return True
            if give_up_when is not None and give_up_when():
                return False
            time.sleep(0.01)
        return False
    finally:
        observer.close()
