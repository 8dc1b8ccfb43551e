"""SQLite persistence of the chain: an append-only log of landed transactions.

Every landed transaction is one appended row holding everything needed to rebuild the chain: the
wire bytes, the status meta, the account keys and the account states it wrote.  Appends touch a
handful of pages per commit, which keeps the write path cheap; the lookup structures (signature ->
transaction, address -> transactions, latest account states) are rebuilt in memory from the log at
startup by :class:`~localnet.chain.Chain`.

One connection in WAL mode with ``synchronous=NORMAL``: a commit is durable against a crash of the
process (``kill -9``); a power loss may lose the last commits, acceptable for a development chain.
Checkpoints (the only fsyncs) run on a background connection.  The chain calls this module only
while holding its lock, so the main connection is shared by the server and clock threads.

Tables:

* ``meta(key, value)`` — genesis hash, faucet key, last slot.
* ``runs(start_slot, start_ms, slot_ms)`` — one row per process start; gives block times.
* ``transactions(idx, signature, slot, block_time, err, raw, meta, keys, writes, memo)`` — ``idx`` is the
  0-based landing order; ``keys`` the concatenated 32-byte account keys; ``writes`` the accounts the
  transaction changed (see :func:`pack_writes`).
* ``account_writes(id, after_tx, slot, writes)`` — account states written outside transactions
  (faucet top-ups), applied after transaction ``after_tx - 1`` when replaying.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    start_slot INTEGER PRIMARY KEY, start_ms INTEGER NOT NULL, slot_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    idx INTEGER PRIMARY KEY, signature BLOB NOT NULL, slot INTEGER NOT NULL, block_time INTEGER,
    err BLOB, raw BLOB NOT NULL, meta BLOB NOT NULL, keys BLOB NOT NULL, writes BLOB NOT NULL, memo TEXT);
CREATE TABLE IF NOT EXISTS account_writes (
    id INTEGER PRIMARY KEY, after_tx INTEGER NOT NULL, slot INTEGER NOT NULL, writes BLOB NOT NULL);
"""

_LENGTH = struct.Struct("<I")


def pack_writes(writes: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Serialise ``(32-byte address, bincode account bytes)`` pairs as
    ``address || u32 length || account`` records."""
    return b"".join(address + _LENGTH.pack(len(account)) + account for address, account in writes)


def unpack_writes(blob: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Inverse of :func:`pack_writes`."""
    offset = 0
    while offset < len(blob):
        address = blob[offset : offset + 32]
        (length,) = _LENGTH.unpack_from(blob, offset + 32)
        start = offset + 36
        yield address, blob[start : start + length]
        offset = start + length


class LedgerInUseError(RuntimeError):
    """Another localnet process has this ledger open."""


def _lock(path: Path) -> IO[bytes]:
    """Hold an exclusive ``flock`` on ``path`` for the life of the returned file (the kernel drops
    it when the process dies, ``kill -9`` included).

    :raises LedgerInUseError: when another process holds it.
    """
    handle = path.open("a+b")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise LedgerInUseError(f"ledger {path.with_suffix('')} is in use by another localnet") from None
    return handle


class Ledger:
    """The on-disk ledger of one localnet.

    :param path: the SQLite file (created with its parent directory when missing); a directory
        (or a path without suffix) gets ``ledger.sqlite3`` inside.
    :raises LedgerInUseError: when another process has the ledger open (a ``.lock`` file next
        to it is held with ``flock`` while the ledger is open).
    """

    def __init__(self, path: str | Path) -> None:
        target = Path(path)
        if target.is_dir() or not target.suffix:
            target.mkdir(parents=True, exist_ok=True)
            target = target / "ledger.sqlite3"
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
        self.path = target
        self._lock_file = _lock(target.with_name(target.name + ".lock"))
        self.connection = sqlite3.connect(target, isolation_level=None, check_same_thread=False, cached_statements=64)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA wal_autocheckpoint=0")
        self.connection.executescript(_SCHEMA)
        self._in_transaction = False
        self._pending_transactions: list[tuple[object, ...]] = []

    # --- transactions -------------------------------------------------------------------------
    def begin(self) -> None:
        """Open a write transaction (no-op when one is open)."""
        if not self._in_transaction:
            self.connection.execute("BEGIN")
            self._in_transaction = True

    def commit(self) -> None:
        """Write the appended transactions and commit the open write transaction, if any."""
        if self._pending_transactions:
            rows, self._pending_transactions = self._pending_transactions, []
            self.connection.executemany(
                "INSERT INTO transactions(idx, signature, slot, block_time, err, raw, meta, keys, writes, memo) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        if self._in_transaction:
            self._in_transaction = False
            self.connection.execute("COMMIT")

    def close(self) -> None:
        """Commit, checkpoint the WAL into the database file, close the connection and release
        the ledger lock."""
        self.commit()
        with contextlib.suppress(sqlite3.Error):
            self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.connection.close()
        self._lock_file.close()

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
            "INSERT OR REPLACE INTO runs(start_slot, start_ms, slot_ms) VALUES (?, ?, ?)", (start_slot, start_ms, slot_ms)
        )

    def runs(self) -> list[tuple[int, int, int]]:
        """All runs as ``(start_slot, start_ms, slot_ms)`` in slot order."""
        return self.connection.execute("SELECT start_slot, start_ms, slot_ms FROM runs ORDER BY start_slot").fetchall()

    # --- writes -------------------------------------------------------------------------------
    def append_transaction(
        self,
        *,
        index: int,
        signature: bytes,
        slot: int,
        block_time: int,
        err: bytes | None,
        raw: bytes,
        meta: bytes,
        keys: bytes,
        writes: bytes,
        memo: str | None = None,
    ) -> None:
        """Append a landed transaction; it is written by the next :meth:`commit` (inside
        :meth:`begin` / :meth:`commit`).

        :param index: 0-based landing order.
        :param err: the error as JSON bytes, ``None`` for success.
        :param meta: JSON bytes of the stored status meta.
        :param keys: concatenated 32-byte account keys (static then loaded).
        :param writes: :func:`pack_writes` of the accounts it changed.
        :param memo: the ``memo`` shown by ``getSignaturesForAddress``, if any.
        """
        self._pending_transactions.append((index, signature, slot, block_time, err, raw, meta, keys, writes, memo))

    def append_account_writes(self, *, after_tx: int, slot: int, writes: bytes) -> None:
        """Record account states written outside a transaction (faucet top-ups)."""
        self.connection.execute(
            "INSERT INTO account_writes(after_tx, slot, writes) VALUES (?, ?, ?)", (after_tx, slot, writes)
        )

    # --- reads --------------------------------------------------------------------------------
    def replay(self) -> Iterator[tuple[str, tuple]]:
        """Everything in landing order, for rebuilding memory at startup.

        Yields ``("tx", (idx, signature, slot, err, keys, writes, memo))`` and
        ``("writes", (slot, writes))``, the latter placed before transaction ``after_tx``.
        """
        extra = self.connection.execute("SELECT after_tx, slot, writes FROM account_writes ORDER BY id").fetchall()
        position = 0
        for row in self.connection.execute(
            "SELECT idx, signature, slot, err, keys, writes, memo FROM transactions ORDER BY idx"
        ):
            while position < len(extra) and extra[position][0] <= row[0]:
                yield "writes", (extra[position][1], extra[position][2])
                position += 1
            yield "tx", row
        for after_tx, slot, writes in extra[position:]:
            del after_tx
            yield "writes", (slot, writes)

    def transactions(self, first: int, end: int) -> list[tuple[int, int | None, bytes | None, bytes, bytes]]:
        """``(slot, block_time, err, raw, meta)`` of transactions ``first <= idx < end``, in order."""
        return self.connection.execute(
            "SELECT slot, block_time, err, raw, meta FROM transactions WHERE idx >= ? AND idx < ? ORDER BY idx", (first, end)
        ).fetchall()

    def transaction(self, index: int) -> tuple[int, int | None, bytes | None, bytes, bytes] | None:
        """``(slot, block_time, err, raw, meta)`` of transaction ``index`` or ``None``."""
        return self.connection.execute(
            "SELECT slot, block_time, err, raw, meta FROM transactions WHERE idx=?", (index,)
        ).fetchone()
