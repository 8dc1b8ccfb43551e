"""SQLite persistence of the chain: account versions, transaction history, clock runs.

One connection in WAL mode with ``synchronous=NORMAL``: every commit is durable against a crash
of the process (``kill -9``); a power loss may lose the last commits, which is acceptable for a
development chain.  The :class:`~localnet.chain.Chain` calls this module only while holding its
lock, so the connection is shared by the server and clock threads without further locking.

Tables:

* ``meta(key, value)`` — genesis hash, faucet key, last slot.
* ``runs(start_slot, start_ms, slot_ms)`` — one row per process start; gives block times.
* ``accounts(address, slot, lamports, owner, executable, rent_epoch, data)`` — every version of
  every account a transaction wrote, keyed by the slot that wrote it.
* ``transactions(seq, signature, slot, block_time, err, raw, meta)`` — full history, ``seq`` is the
  global order in which transactions landed.
* ``address_signatures(address, seq)`` — which transactions touched an address.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    start_slot INTEGER PRIMARY KEY, start_ms INTEGER NOT NULL, slot_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    address BLOB NOT NULL, slot INTEGER NOT NULL, lamports INTEGER NOT NULL, owner BLOB NOT NULL,
    executable INTEGER NOT NULL, rent_epoch INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (address, slot)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY, signature BLOB NOT NULL UNIQUE, slot INTEGER NOT NULL,
    block_time INTEGER, err BLOB, raw BLOB NOT NULL, meta BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS address_signatures (
    address BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (address, seq)) WITHOUT ROWID;
"""

#: A row of ``accounts`` without the address: (slot, lamports, owner, executable, rent_epoch, data).
AccountRow = tuple[int, int, bytes, int, int, bytes]


class Ledger:
    """The on-disk ledger of one localnet.

    :param path: the SQLite file (created with its parent directory when missing); a directory
        is accepted too and gets ``ledger.sqlite3`` inside.
    """

    def __init__(self, path: str | Path) -> None:
        target = Path(path)
        if target.is_dir() or not target.suffix:
            target.mkdir(parents=True, exist_ok=True)
            target = target / "ledger.sqlite3"
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
        self.path = target
        self.connection = sqlite3.connect(target, isolation_level=None, check_same_thread=False, cached_statements=256)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints (the only fsyncs in WAL + NORMAL) run on a background thread instead of
        # inside a committing request: see :meth:`checkpoint_forever`.
        self.connection.execute("PRAGMA wal_autocheckpoint=0")
        self.connection.execute("PRAGMA cache_size=-65536")
        self.connection.executescript(_SCHEMA)
        self._in_transaction = False

    # --- transactions -------------------------------------------------------------------------
    def begin(self) -> None:
        """Open a write transaction (no-op when one is open)."""
        if not self._in_transaction:
            self.connection.execute("BEGIN")
            self._in_transaction = True

    def commit(self) -> None:
        """Commit the open write transaction, if any."""
        if self._in_transaction:
            self.connection.execute("COMMIT")
            self._in_transaction = False

    def close(self) -> None:
        """Commit, checkpoint the WAL into the database file and close the connection."""
        self.commit()
        with contextlib.suppress(sqlite3.Error):
            self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.connection.close()

    def checkpoint_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Copy committed WAL frames into the database file every ``interval`` seconds until
        ``stop`` is set, on its own connection (PASSIVE: never blocks the writer)."""
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not stop.wait(interval):
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    # --- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> bytes | None:
        """The value stored under ``key`` or ``None``."""
        row = self.connection.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` (inside the current transaction when one is open)."""
        self.connection.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- runs (block times) -------------------------------------------------------------------
    def add_run(self, start_slot: int, start_ms: int, slot_ms: int) -> None:
        """Record that the clock (re)started at ``start_slot`` at unix time ``start_ms`` (ms)."""
        self.connection.execute(
            "INSERT OR REPLACE INTO runs(start_slot, start_ms, slot_ms) VALUES (?, ?, ?)",
            (start_slot, start_ms, slot_ms),
        )

    def runs(self) -> list[tuple[int, int, int]]:
        """All runs as ``(start_slot, start_ms, slot_ms)`` in slot order."""
        return self.connection.execute("SELECT start_slot, start_ms, slot_ms FROM runs ORDER BY start_slot").fetchall()

    # --- writes of one landed transaction ------------------------------------------------------
    def write_transaction(
        self,
        *,
        seq: int,
        signature: bytes,
        slot: int,
        block_time: int,
        err: bytes | None,
        raw: bytes,
        meta: bytes,
        addresses: Iterable[bytes],
        accounts: Iterable[tuple[bytes, int, int, bytes, int, int, bytes]],
    ) -> None:
        """Insert a landed transaction, its address index rows and the accounts it wrote.

        Must be called inside :meth:`begin` / :meth:`commit`.

        :param accounts: ``(address, slot, lamports, owner, executable, rent_epoch, data)`` rows.
        """
        execute = self.connection.execute
        execute(
            "INSERT INTO transactions(seq, signature, slot, block_time, err, raw, meta) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, signature, slot, block_time, err, raw, meta),
        )
        self.connection.executemany(
            "INSERT OR IGNORE INTO address_signatures(address, seq) VALUES (?, ?)",
            [(address, seq) for address in addresses],
        )
        self.connection.executemany(
            "INSERT OR REPLACE INTO accounts(address, slot, lamports, owner, executable, rent_epoch, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            accounts,
        )

    def write_accounts(self, accounts: Iterable[tuple[bytes, int, int, bytes, int, int, bytes]]) -> None:
        """Insert account versions written outside a transaction (genesis faucet)."""
        self.connection.executemany(
            "INSERT OR REPLACE INTO accounts(address, slot, lamports, owner, executable, rent_epoch, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            accounts,
        )

    # --- reads --------------------------------------------------------------------------------
    def latest_accounts(self) -> Iterator[tuple[bytes, int, int, bytes, int, int, bytes]]:
        """The newest version of every account: ``(address, slot, lamports, owner, executable,
        rent_epoch, data)``."""
        return self.connection.execute(
            "SELECT address, max(slot), lamports, owner, executable, rent_epoch, data FROM accounts GROUP BY address"
        )

    def account_at(self, address: bytes, slot: int) -> AccountRow | None | bool:
        """The version of ``address`` as of ``slot``.

        :returns: the row; ``None`` when the chain wrote the account only after ``slot``;
            ``False`` when the chain never wrote it (a genesis account: ask the runtime).
        """
        row = self.connection.execute(
            "SELECT slot, lamports, owner, executable, rent_epoch, data FROM accounts "
            "WHERE address=? AND slot<=? ORDER BY slot DESC LIMIT 1",
            (address, slot),
        ).fetchone()
        if row is not None:
            return row
        seen = self.connection.execute("SELECT 1 FROM accounts WHERE address=? LIMIT 1", (address,)).fetchone()
        return None if seen else False

    def transaction_status(self, signature: bytes) -> tuple[int, bytes | None] | None:
        """``(slot, err json or None)`` of a landed transaction or ``None``."""
        return self.connection.execute("SELECT slot, err FROM transactions WHERE signature=?", (signature,)).fetchone()

    def transaction(self, signature: bytes) -> tuple[int, int, int | None, bytes, bytes] | None:
        """``(seq, slot, block_time, raw, meta)`` of a landed transaction or ``None``."""
        return self.connection.execute(
            "SELECT seq, slot, block_time, raw, meta FROM transactions WHERE signature=?", (signature,)
        ).fetchone()

    def transaction_seq(self, signature: bytes) -> int | None:
        """The global order number of a landed transaction or ``None``."""
        row = self.connection.execute("SELECT seq FROM transactions WHERE signature=?", (signature,)).fetchone()
        return None if row is None else row[0]

    def signatures_for_address(
        self, address: bytes, *, before_seq: int | None, until_seq: int | None, max_slot: int, limit: int
    ) -> list[tuple[bytes, int, bytes | None, int | None]]:
        """Newest-first ``(signature, slot, err, block_time)`` of transactions touching ``address``.

        :param before_seq: only transactions older than this one.
        :param until_seq: stop before reaching this one.
        :param max_slot: ignore transactions above this slot (commitment).
        :param limit: at most this many rows.
        """
        return self.connection.execute(
            "SELECT t.signature, t.slot, t.err, t.block_time FROM address_signatures a "
            "JOIN transactions t ON t.seq = a.seq "
            "WHERE a.address = ? AND a.seq < ? AND a.seq > ? AND t.slot <= ? "
            "ORDER BY a.seq DESC LIMIT ?",
            (
                address,
                before_seq if before_seq is not None else 2**62,
                until_seq if until_seq is not None else -1,
                max_slot,
                limit,
            ),
        ).fetchall()

    def recent_signatures(self, min_slot: int) -> list[tuple[bytes, int]]:
        """``(signature, slot)`` of transactions landed at or after ``min_slot``."""
        return self.connection.execute("SELECT signature, slot FROM transactions WHERE slot >= ?", (min_slot,)).fetchall()

    def counts(self) -> tuple[int, int, int]:
        """``(transaction count, highest seq, highest slot)`` of the history."""
        row = self.connection.execute(
            "SELECT count(*), coalesce(max(seq), 0), coalesce(max(slot), 0) FROM transactions"
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])
