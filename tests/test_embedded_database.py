"""The embedded default (no ``DATABASE_URL``: SQLite in ``var/``) migrates from nothing, as `make run` does on a
newcomer's machine, while the rest of the suite runs on PostgreSQL in CI. An index SQLite refuses (``NULLS FIRST``
in ``CREATE INDEX``) once broke this without any test noticing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_migration_applies_to_a_new_embedded_sqlite_database(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "NUMPAY_VAR_DIR")}
    env.update({"DJANGO_SETTINGS_MODULE": "numpay.settings.dev", "NUMPAY_VAR_DIR": str(tmp_path)})
    result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    database = tmp_path / "numpay.sqlite3"
    with sqlite3.connect(database) as connection:
        (index_sql,) = connection.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'wallets_wallet_scan_order_idx'").fetchone()
        applied = connection.execute("SELECT COUNT(*) FROM django_migrations").fetchone()[0]
    # the deposit scan's index, in the order SQLite gives NULLs anyway (smallest first)
    assert '"last_scanned_at" ASC' in index_sql
    assert "NULLS" not in index_sql
    assert applied > 50
