"""The chain: one LiteSVM runtime, a slot clock, commitment levels and the ledger.

Everything that touches the runtime or the ledger holds :attr:`Chain.lock`.  The runtime holds the
newest ("processed") state; the ledger holds every version of every account the chain wrote, which
answers reads at ``confirmed`` / ``finalized`` commitment, and the full transaction history.

Time model (like a cluster where no slot is skipped): block height == slot; the clock thread
advances the slot every ``slot_ms``; the blockhash of slot ``s`` is ``sha256(genesis_hash || s)``
(computed by solders); it is valid while ``height <= s + 150``.  A transaction landed in slot ``s`` is
``processed`` during ``s``, ``confirmed`` from ``s + 1`` and ``finalized`` from ``s + 32``.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from solders.account import Account
from solders.address_lookup_table_account import LOOKUP_TABLE_META_SIZE
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, SimulatedTransactionInfo

from localnet.codec import (
    TOKEN_PROGRAM_IDS,
    parse_mint,
    token_account_mint_and_owner,
    transaction_error_json,
    transaction_error_text,
    ui_amount,
)
from localnet.faults import Faults
from localnet.ledger import Ledger

PROCESSED = "processed"
CONFIRMED = "confirmed"
FINALIZED = "finalized"
COMMITMENTS = (PROCESSED, CONFIRMED, FINALIZED)
#: Blocks a blockhash stays usable (``MAX_PROCESSING_AGE`` in the Solana runtime).
MAX_PROCESSING_AGE = 150
#: Slots between landing and finalization (the default lockout depth of Tower BFT).
FINALIZATION_DEPTH = 32
LAMPORTS_PER_SIGNATURE = 5000
DEFAULT_COMPUTE_UNIT_LIMIT = 200_000
MAX_COMPUTE_UNIT_LIMIT = 1_400_000
SLOTS_PER_EPOCH = 432_000
COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
ADDRESS_LOOKUP_TABLE_PROGRAM_ID = Pubkey.from_string("AddressLookupTab1e1111111111111111111111111")
FAUCET_LAMPORTS = 2**62
_EMPTY_ACCOUNT = Account(0, b"", SYSTEM_PROGRAM_ID)


class RpcError(Exception):
    """A JSON-RPC error object ``{"code", "message", "data"?}``.

    :param code: JSON-RPC error code (e.g. -32602 invalid params, -32002 preflight failure).
    :param message: the human message, worded like a Solana validator's.
    :param data: optional ``data`` member.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def simulation_data(
    err: Any,
    logs: list[str] | None = None,
    units: int = 0,
    inner: list[dict[str, Any]] | None = None,
    accounts: list[Any] | None = None,
    replacement: dict[str, Any] | None = None,
    return_data: dict[str, Any] | None = None,
    fee: int | None = None,
) -> dict[str, Any]:
    """The ``RpcSimulateTransactionResult`` object (``simulateTransaction`` value and the ``data``
    of a -32002 preflight failure)."""
    return {
        "accounts": accounts,
        "err": err,
        "fee": fee,
        "innerInstructions": inner,
        "loadedAccountsDataSize": None,
        "logs": logs if logs is not None else [],
        "replacementBlockhash": replacement,
        "returnData": return_data,
        "unitsConsumed": units,
    }


def preflight_failure(err: Any, logs: list[str] | None = None, units: int = 0) -> RpcError:
    """-32002 ``Transaction simulation failed: <error>`` with the simulation result as ``data``."""
    return RpcError(
        -32002,
        f"Transaction simulation failed: {transaction_error_text(err)}",
        simulation_data(err, logs, units),
    )


SIGNATURE_VERIFICATION_FAILURE = (-32003, "Transaction signature verification failure")


@dataclass
class Delayed:
    """A transaction accepted under the delay fault, landing at ``due_slot``."""

    due_slot: int
    raw: bytes
    transaction: VersionedTransaction


def message_account_keys(
    message: Message | MessageV0, svm: LiteSVM
) -> tuple[list[Pubkey], list[bool], list[str], list[str]]:
    """Every account a message loads, in runtime order, with writability.

    For v0 messages the address-table lookups are resolved from the table accounts (layout:
    56-byte ``LookupTableMeta`` then 32-byte addresses).

    :returns: ``(keys, writable flags, loaded writable (base58), loaded readonly (base58))``.
    :raises RpcError: -32602-free: an unknown table yields ``AddressLookupTableNotFound`` via
        :class:`TransactionRejected`.
    """
    header = message.header
    static = list(message.account_keys)
    signed = header.num_required_signatures
    writable_signed = signed - header.num_readonly_signed_accounts
    writable_unsigned = len(static) - signed - header.num_readonly_unsigned_accounts
    flags = [
        index < writable_signed if index < signed else (index - signed) < writable_unsigned for index in range(len(static))
    ]
    if not isinstance(message, MessageV0) or not message.address_table_lookups:
        return static, flags, [], []
    loaded_writable: list[Pubkey] = []
    loaded_readonly: list[Pubkey] = []
    for lookup in message.address_table_lookups:
        table = svm.get_account(lookup.account_key)
        if table is None or table.lamports == 0 or table.owner != ADDRESS_LOOKUP_TABLE_PROGRAM_ID:
            raise TransactionRejected("AddressLookupTableNotFound")
        data = bytes(table.data)
        addresses = [
            Pubkey.from_bytes(data[offset : offset + 32]) for offset in range(LOOKUP_TABLE_META_SIZE, len(data) - 31, 32)
        ]
        try:
            loaded_writable.extend(addresses[index] for index in bytes(lookup.writable_indexes))
            loaded_readonly.extend(addresses[index] for index in bytes(lookup.readonly_indexes))
        except IndexError:
            raise TransactionRejected("InvalidAddressLookupTableIndex") from None
    keys = static + loaded_writable + loaded_readonly
    flags += [True] * len(loaded_writable) + [False] * len(loaded_readonly)
    return keys, flags, [str(key) for key in loaded_writable], [str(key) for key in loaded_readonly]


def stored_inner_instructions(inner_instructions: Sequence[Sequence[Any]]) -> list[Any]:
    """Compact form of LiteSVM inner instructions kept in the ledger:
    ``[[top-level index, [[programIdIndex, [account indexes], data base64, stackHeight]]]]``,
    only for instructions that made cross-program invocations."""
    stored = []
    for index, instructions in enumerate(inner_instructions):
        if instructions:
            rendered = []
            for item in instructions:
                compiled = item.instruction()
                rendered.append(
                    [
                        compiled.program_id_index,
                        list(bytes(compiled.accounts)),
                        base64.b64encode(bytes(compiled.data)).decode(),
                        item.stack_height(),
                    ]
                )
            stored.append([index, rendered])
    return stored


class TransactionRejected(Exception):
    """A transaction the runtime refuses before execution; ``args[0]`` is the RPC error JSON."""


def compute_budget(message: Message | MessageV0, keys: Sequence[Pubkey]) -> tuple[int, int]:
    """``(compute unit limit, micro-lamports per compute unit)`` requested by a message.

    Follows the ComputeBudget program's instruction layout (tag 2: ``SetComputeUnitLimit(u32)``,
    tag 3: ``SetComputeUnitPrice(u64)``); without a limit instruction the runtime default is
    200,000 units per non-compute-budget instruction, capped at 1,400,000.
    """
    limit: int | None = None
    price = 0
    others = 0
    for instruction in message.instructions:
        program = keys[instruction.program_id_index] if instruction.program_id_index < len(keys) else None
        if program == COMPUTE_BUDGET_PROGRAM_ID:
            data = bytes(instruction.data)
            if len(data) >= 5 and data[0] == 2:
                limit = struct.unpack_from("<I", data, 1)[0]
            elif len(data) >= 9 and data[0] == 3:
                price = struct.unpack_from("<Q", data, 1)[0]
        else:
            others += 1
    if limit is None:
        limit = min(DEFAULT_COMPUTE_UNIT_LIMIT * others, MAX_COMPUTE_UNIT_LIMIT)
    return min(limit, MAX_COMPUTE_UNIT_LIMIT), price


def transaction_fee(message: Message | MessageV0, keys: Sequence[Pubkey]) -> tuple[int, int]:
    """``(fee in lamports, compute unit price)``: 5,000 lamports per signature plus the priority
    fee ``ceil(limit * price / 1e6)`` (https://solana.com/docs/core/fees)."""
    limit, price = compute_budget(message, keys)
    priority = (limit * price + 999_999) // 1_000_000
    return LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures + priority, price


class Chain:
    """The localnet chain state, thread-safe through :attr:`lock`.

    :param ledger_path: SQLite file (or directory) of the ledger; created when missing.
    :param slot_ms: slot duration in milliseconds.
    :param faults: injected faults (default: none).
    """

    def __init__(self, ledger_path: str | Path, *, slot_ms: int = 400, faults: Faults | None = None) -> None:
        self.lock = threading.RLock()
        self.slot_ms = slot_ms
        self.faults = faults or Faults()
        self.ledger = Ledger(ledger_path)
        self.svm = LiteSVM().with_blockhash_check(False).with_transaction_history(0)
        self._stop = threading.Event()
        self._clock_thread: threading.Thread | None = None
        self._delayed: deque[Delayed] = deque()
        self._pending_signatures: set[bytes] = set()
        self._recent_signatures: set[bytes] = set()
        self._recent_order: deque[tuple[int, bytes]] = deque()
        self._blockhash_slots: dict[Hash, int] = {}
        self._priority_fees: dict[int, int] = {}
        self._slot_listeners: list[Callable[[int], None]] = []
        self.owner_index: dict[Pubkey, set[Pubkey]] = {}
        self._owners: dict[Pubkey, Pubkey] = {}
        with self.lock:
            self._open()

    # --- startup --------------------------------------------------------------------------------
    def _open(self) -> None:
        ledger = self.ledger
        ledger.begin()
        genesis = ledger.get_meta("genesis_hash")
        if genesis is None:
            genesis = bytes(Hash.hash(secrets.token_bytes(32)))
            ledger.set_meta("genesis_hash", genesis)
        self.genesis_hash = Hash.from_bytes(genesis)
        self._genesis_bytes = genesis
        faucet = ledger.get_meta("faucet_keypair")
        if faucet is None:
            faucet = bytes(Keypair())
            ledger.set_meta("faucet_keypair", faucet)
        self.faucet = Keypair.from_bytes(faucet)
        for address, _slot, lamports, owner, executable, rent_epoch, data in ledger.latest_accounts():
            pubkey = Pubkey.from_bytes(address)
            owner_key = Pubkey.from_bytes(owner)
            self.svm.set_account(pubkey, Account(lamports, data, owner_key, bool(executable), rent_epoch))
            if lamports:
                self._index_owner(pubkey, owner_key)
        count, seq, max_tx_slot = ledger.counts()
        self.transaction_count = count
        self._seq = seq
        stored_slot = ledger.get_meta("slot")
        last_slot = max(int(stored_slot) if stored_slot else -1, max_tx_slot if count else -1)
        self.slot = last_slot + 1
        if self.svm.get_account(self.faucet.pubkey()) is None:
            self._top_up_faucet()
        ledger.add_run(self.slot, int(time.time() * 1000), self.slot_ms)
        ledger.set_meta("slot", str(self.slot).encode())
        ledger.commit()
        self._runs = ledger.runs()
        for signature, slot in ledger.recent_signatures(self.slot - 2 * MAX_PROCESSING_AGE):
            self._remember_signature(bytes(signature), slot)
        for slot in range(max(0, self.slot - 2 * MAX_PROCESSING_AGE), self.slot + 1):
            self._blockhash_slots[self.blockhash_for_slot(slot)] = slot
        self._set_clock()

    def _top_up_faucet(self) -> None:
        account = Account(FAUCET_LAMPORTS, b"", SYSTEM_PROGRAM_ID)
        self.svm.set_account(self.faucet.pubkey(), account)
        self.ledger.write_accounts(
            [(bytes(self.faucet.pubkey()), self.slot, FAUCET_LAMPORTS, bytes(SYSTEM_PROGRAM_ID), 0, 0, b"")]
        )

    def _index_owner(self, pubkey: Pubkey, owner: Pubkey | None) -> None:
        previous = self._owners.get(pubkey)
        if previous == owner:
            return
        if previous is not None:
            self.owner_index[previous].discard(pubkey)
            del self._owners[pubkey]
        if owner is not None:
            self._owners[pubkey] = owner
            self.owner_index.setdefault(owner, set()).add(pubkey)

    # --- clock ------------------------------------------------------------------------------------
    def blockhash_for_slot(self, slot: int) -> Hash:
        """The blockhash of ``slot``: ``sha256(genesis_hash || slot as u64 LE)`` via solders."""
        return Hash.hash(self._genesis_bytes + slot.to_bytes(8, "little"))

    def block_time(self, slot: int) -> int:
        """Unix time (seconds) of ``slot``, from the clock run that produced it."""
        start_slot, start_ms, slot_ms = self._runs[0]
        for run in self._runs:
            if run[0] <= slot:
                start_slot, start_ms, slot_ms = run
            else:
                break
        return (start_ms + (slot - start_slot) * slot_ms) // 1000

    def _set_clock(self) -> None:
        clock = self.svm.get_clock()
        clock.slot = self.slot
        clock.unix_timestamp = self.block_time(self.slot)
        clock.epoch = self.slot // SLOTS_PER_EPOCH
        self.svm.set_clock(clock)

    def start(self) -> None:
        """Start the background slot clock (idempotent)."""
        if self._clock_thread is None:
            self._clock_thread = threading.Thread(target=self._run_clock, name="localnet-clock", daemon=True)
            self._clock_thread.start()
            threading.Thread(
                target=self.ledger.checkpoint_forever, args=(self._stop,), name="localnet-checkpoint", daemon=True
            ).start()

    def close(self) -> None:
        """Stop the clock and close the ledger."""
        self._stop.set()
        if self._clock_thread is not None:
            self._clock_thread.join(timeout=5)
        with self.lock:
            self.ledger.close()

    def _run_clock(self) -> None:
        interval = self.slot_ms / 1000
        next_tick = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            next_tick += interval
            if next_tick < time.monotonic():
                next_tick = time.monotonic() + interval
            self.advance_slot()

    def advance_slot(self) -> int:
        """Move to the next slot: new blockhash, clock sysvar, due delayed transactions.

        :returns: the new slot.
        """
        with self.lock:
            self.slot += 1
            slot = self.slot
            self._blockhash_slots[self.blockhash_for_slot(slot)] = slot
            self._blockhash_slots.pop(
                self.blockhash_for_slot(slot - 2 * MAX_PROCESSING_AGE - 1), None
            ) if slot > 2 * MAX_PROCESSING_AGE else None
            self._priority_fees.pop(slot - MAX_PROCESSING_AGE, None)
            horizon = slot - 2 * MAX_PROCESSING_AGE
            while self._recent_order and self._recent_order[0][0] < horizon:
                self._recent_signatures.discard(self._recent_order.popleft()[1])
            self._set_clock()
            self.ledger.begin()
            try:
                while self._delayed and self._delayed[0].due_slot <= slot:
                    item = self._delayed.popleft()
                    self._pending_signatures.discard(bytes(item.transaction.signatures[0]))
                    with contextlib.suppress(TransactionRejected):
                        self._land(item.transaction, item.raw, rollback_on_error=False, check_blockhash=True)
                self.ledger.set_meta("slot", str(slot).encode())
            finally:
                self.ledger.commit()
            return slot

    # --- commitment -------------------------------------------------------------------------------
    def slot_at(self, commitment: str | None) -> int:
        """The slot a read at ``commitment`` sees (default ``finalized``, as validators do)."""
        if commitment == PROCESSED:
            return self.slot
        if commitment == CONFIRMED:
            return max(0, self.slot - 1)
        return max(0, self.slot - FINALIZATION_DEPTH)

    def blockhash_valid_until(self, blockhash: Hash) -> int | None:
        """Last valid block height of ``blockhash`` if it is still valid now, else ``None``."""
        slot = self._blockhash_slots.get(blockhash)
        if slot is None or self.slot > slot + MAX_PROCESSING_AGE:
            return None
        return slot + MAX_PROCESSING_AGE

    def latest_blockhash(self, commitment: str | None) -> tuple[int, Hash, int]:
        """``(context slot, blockhash, lastValidBlockHeight)`` at ``commitment``."""
        with self.lock:
            slot = self.slot_at(commitment)
            return slot, self.blockhash_for_slot(slot), slot + MAX_PROCESSING_AGE

    # --- accounts ---------------------------------------------------------------------------------
    def _live_account(self, pubkey: Pubkey) -> Account | None:
        account = self.svm.get_account(pubkey)
        if account is None or account.lamports == 0:
            return None
        return account

    def account(self, pubkey: Pubkey, slot: int) -> Account | None:
        """The account as of ``slot`` (``None`` when absent); caller holds :attr:`lock`."""
        if slot >= self.slot:
            return self._live_account(pubkey)
        row = self.ledger.account_at(bytes(pubkey), slot)
        if row is False:
            return self._live_account(pubkey)
        if row is None or not row[1]:
            return None
        _slot, lamports, owner, executable, rent_epoch, data = row
        return Account(lamports, data, Pubkey.from_bytes(owner), bool(executable), rent_epoch)

    def accounts(self, pubkeys: Iterable[Pubkey], commitment: str | None) -> tuple[int, list[Account | None]]:
        """``(context slot, accounts)`` at ``commitment``."""
        with self.lock:
            slot = self.slot_at(commitment)
            return slot, [self.account(pubkey, slot) for pubkey in pubkeys]

    def program_accounts(self, program: Pubkey, commitment: str | None) -> tuple[int, list[tuple[Pubkey, Account]]]:
        """``(context slot, [(address, account)])`` of accounts owned by ``program`` that the chain
        wrote (genesis program accounts are not enumerated)."""
        with self.lock:
            slot = self.slot_at(commitment)
            candidates = set(self.owner_index.get(program, ()))
            if slot < self.slot:
                rows = self.ledger.connection.execute(
                    "SELECT DISTINCT address FROM accounts WHERE owner=? AND slot<=?", (bytes(program), slot)
                ).fetchall()
                candidates.update(Pubkey.from_bytes(row[0]) for row in rows)
            found = []
            for pubkey in candidates:
                account = self.account(pubkey, slot)
                if account is not None and account.owner == program:
                    found.append((pubkey, account))
            found.sort(key=lambda item: bytes(item[0]))
            return slot, found

    def mint_decimals(self, mint: Pubkey, slot: int) -> int | None:
        """Decimals of an SPL mint as of ``slot`` or ``None``; caller holds :attr:`lock`."""
        account = self.account(mint, slot)
        if account is None or account.owner not in TOKEN_PROGRAM_IDS:
            return None
        parsed = parse_mint(bytes(account.data))
        return None if parsed is None else parsed["decimals"]

    # --- sending ----------------------------------------------------------------------------------
    def send(self, raw: bytes, transaction: VersionedTransaction, *, skip_preflight: bool) -> Signature:
        """Submit a transaction like a validator's ``sendTransaction``.

        With preflight: a bad signature raises -32003; an expired/unknown blockhash, a replay or an
        execution error raises -32002 and changes nothing.  Without preflight those transactions are
        dropped silently (their signature is returned, they never land); execution errors land
        with their fee charged.  Faults (drop, delay) apply after preflight.

        :param raw: the wire bytes (stored in the history).
        :returns: the transaction's first signature.
        :raises RpcError: -32002 / -32003 as above.
        """
        signature = transaction.signatures[0]
        with self.lock:
            self.ledger.begin()
            try:
                return self._send_locked(raw, transaction, signature, skip_preflight)
            finally:
                self.ledger.commit()

    def send_many(self, items: Sequence[tuple[bytes, VersionedTransaction, bool]]) -> list[Signature | RpcError]:
        """:meth:`send` for several transactions under one lock and one ledger commit (group
        commit); every result is durable when this returns.

        :param items: ``(raw, transaction, skip_preflight)`` each.
        :returns: per item, the signature or the :class:`RpcError` :meth:`send` would raise.
        """
        results: list[Signature | RpcError] = []
        with self.lock:
            self.ledger.begin()
            try:
                for raw, transaction, skip_preflight in items:
                    try:
                        results.append(self._send_locked(raw, transaction, transaction.signatures[0], skip_preflight))
                    except RpcError as error:
                        results.append(error)
            finally:
                self.ledger.commit()
        return results

    def _remember_signature(self, signature: bytes, slot: int) -> None:
        self._recent_signatures.add(signature)
        self._recent_order.append((slot, signature))

    def _is_duplicate(self, signature: Signature) -> bool:
        """True when the signature landed recently or waits in the delay queue.

        The status cache only needs the last ``2 * MAX_PROCESSING_AGE`` slots: an older
        transaction's blockhash has expired, so it is refused before this check matters.
        """
        key = bytes(signature)
        return key in self._recent_signatures or key in self._pending_signatures

    def _send_locked(
        self, raw: bytes, transaction: VersionedTransaction, signature: Signature, skip_preflight: bool
    ) -> Signature:
        faults = self.faults
        dropped = faults.should_drop()
        delayed = faults.delay_slots > 0
        if skip_preflight:
            if dropped:
                return signature
            if delayed:
                self._delay(raw, transaction)
                return signature
            with contextlib.suppress(TransactionRejected):
                self._land(transaction, raw, rollback_on_error=False, check_blockhash=True)
            return signature
        if self.blockhash_valid_until(transaction.message.recent_blockhash) is None:
            raise preflight_failure("BlockhashNotFound")
        if self._is_duplicate(signature):
            raise preflight_failure("AlreadyProcessed")
        if dropped or delayed:
            self._preflight_simulate(transaction)
            if delayed and not dropped:
                self._delay(raw, transaction)
            return signature
        try:
            self._land(transaction, raw, rollback_on_error=True, check_blockhash=False)
        except TransactionRejected as rejected:
            err, logs, units = (
                rejected.args[0],
                (rejected.args[1] if len(rejected.args) > 1 else []),
                (rejected.args[2] if len(rejected.args) > 2 else 0),
            )
            if err == "SignatureFailure":
                raise RpcError(*SIGNATURE_VERIFICATION_FAILURE) from None
            raise preflight_failure(err, logs, units) from None
        return signature

    def _delay(self, raw: bytes, transaction: VersionedTransaction) -> None:
        self._delayed.append(Delayed(self.slot + self.faults.delay_slots, raw, transaction))
        self._pending_signatures.add(bytes(transaction.signatures[0]))

    def _preflight_simulate(self, transaction: VersionedTransaction) -> None:
        result = self.svm.simulate_transaction(transaction)
        if isinstance(result, FailedTransactionMetadata):
            err = transaction_error_json(result.err())
            if err == "SignatureFailure":
                raise RpcError(*SIGNATURE_VERIFICATION_FAILURE)
            meta = result.meta()
            raise preflight_failure(err, meta.logs(), meta.compute_units_consumed())

    def _land(
        self, transaction: VersionedTransaction, raw: bytes, *, rollback_on_error: bool, check_blockhash: bool
    ) -> None:
        """Execute and, when it lands, persist one transaction (lock held, ledger transaction open).

        :raises TransactionRejected: ``(err json, logs, units)`` when it does not land.
        """
        message = transaction.message
        signature = transaction.signatures[0]
        if check_blockhash:
            if self.blockhash_valid_until(message.recent_blockhash) is None:
                raise TransactionRejected("BlockhashNotFound")
            if self._is_duplicate(signature):
                raise TransactionRejected("AlreadyProcessed")
        svm = self.svm
        keys, writable, loaded_writable, loaded_readonly = message_account_keys(message, svm)
        get_account = svm.get_account
        pre = [get_account(key) for key in keys]
        result = svm.send_transaction(transaction)
        post = [get_account(key) for key in keys]
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            err: Any = transaction_error_json(result.err())
            if rollback_on_error or post[0] == pre[0]:
                for key, before, after in zip(keys, pre, post, strict=True):
                    if before != after:
                        svm.set_account(key, before if before is not None else _EMPTY_ACCOUNT)
                raise TransactionRejected(err, meta.logs(), meta.compute_units_consumed())
        else:
            meta = result
            err = None
        slot = self.slot
        fee, price = transaction_fee(message, keys)
        self._seq += 1
        self.transaction_count += 1
        if price and (slot not in self._priority_fees or price < self._priority_fees[slot]):
            self._priority_fees[slot] = price
        elif slot not in self._priority_fees:
            self._priority_fees[slot] = 0
        rows = []
        for key, before, after, is_writable in zip(keys, pre, post, writable, strict=True):
            if is_writable and before != after:
                after = after if after is not None else _EMPTY_ACCOUNT
                rows.append(
                    (
                        bytes(key),
                        slot,
                        after.lamports,
                        bytes(after.owner),
                        int(after.executable),
                        after.rent_epoch,
                        bytes(after.data),
                    )
                )
                self._index_owner(key, after.owner if after.lamports else None)
        inner = stored_inner_instructions(meta.inner_instructions())
        return_data = meta.return_data()
        stored_meta = {
            "fee": fee,
            "pre": [account.lamports if account is not None else 0 for account in pre],
            "post": [account.lamports if account is not None else 0 for account in post],
            "preToken": self._token_balances(keys, pre),
            "postToken": self._token_balances(keys, post),
            "logs": meta.logs(),
            "inner": inner,
            "units": meta.compute_units_consumed(),
            "loaded": [loaded_writable, loaded_readonly],
            "returnData": [str(return_data.program_id), base64.b64encode(bytes(return_data.data)).decode()]
            if return_data.data
            else None,
            "writable": writable,
        }
        self._remember_signature(bytes(signature), slot)
        self.ledger.write_transaction(
            seq=self._seq,
            signature=bytes(signature),
            slot=slot,
            block_time=self.block_time(slot),
            err=orjson.dumps(err) if err is not None else None,
            raw=raw,
            meta=orjson.dumps(stored_meta),
            addresses=[bytes(key) for key in keys],
            accounts=rows,
        )

    def _token_balances(self, keys: Sequence[Pubkey], accounts: Sequence[Account | None]) -> list[dict[str, Any]]:
        balances = []
        decimals_by_mint: dict[bytes, int | None] = {}
        for index, account in enumerate(accounts):
            if account is None or account.owner not in TOKEN_PROGRAM_IDS:
                continue
            decoded = token_account_mint_and_owner(bytes(account.data))
            if decoded is None:
                continue
            mint, owner, amount = decoded
            if mint not in decimals_by_mint:
                decimals_by_mint[mint] = self.mint_decimals(Pubkey.from_bytes(mint), self.slot)
            decimals = decimals_by_mint[mint]
            if decimals is None:
                continue
            balances.append(
                {
                    "accountIndex": index,
                    "mint": str(Pubkey.from_bytes(mint)),
                    "owner": str(Pubkey.from_bytes(owner)),
                    "programId": str(account.owner),
                    "uiTokenAmount": ui_amount(amount, decimals),
                }
            )
        return balances

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """Send ``lamports`` from the faucet in a real system transfer (lands now, recorded in the
        history, subject to no faults).

        :raises RpcError: -32602-like failures are reported as ``-32603`` with the runtime error.
        """
        with self.lock:
            self.ledger.begin()
            try:
                faucet = self._live_account(self.faucet.pubkey())
                if faucet is None or faucet.lamports < lamports + 10 * LAMPORTS_PER_SIGNATURE:
                    self._top_up_faucet()
                blockhash = self.blockhash_for_slot(self.slot)
                instruction = transfer(TransferParams(from_pubkey=self.faucet.pubkey(), to_pubkey=pubkey, lamports=lamports))
                message = Message.new_with_blockhash([instruction], self.faucet.pubkey(), blockhash)
                legacy = Transaction([self.faucet], message, blockhash)
                transaction = VersionedTransaction.from_legacy(legacy)
                try:
                    self._land(transaction, bytes(legacy), rollback_on_error=True, check_blockhash=False)
                except TransactionRejected as rejected:
                    raise RpcError(-32603, f"airdrop failed: {transaction_error_text(rejected.args[0])}") from None
                return transaction.signatures[0]
            finally:
                self.ledger.commit()

    # --- simulation -------------------------------------------------------------------------------
    def simulate(
        self,
        transaction: VersionedTransaction,
        *,
        sig_verify: bool,
        replace_blockhash: bool,
        commitment: str | None,
        account_addresses: Sequence[Pubkey] | None,
    ) -> tuple[
        int,
        Any,
        SimulatedTransactionInfo | FailedTransactionMetadata | None,
        list[tuple[Pubkey, Account]] | None,
        dict[str, Any] | None,
    ]:
        """Simulate against the newest state (whatever ``commitment``; a documented gap).

        :returns: ``(context slot, err json, result, post accounts or None, replacementBlockhash)``.
        """
        with self.lock:
            slot = self.slot_at(commitment)
            replacement = None
            if replace_blockhash:
                replacement = {
                    "blockhash": str(self.blockhash_for_slot(self.slot)),
                    "lastValidBlockHeight": self.slot + MAX_PROCESSING_AGE,
                }
            elif self.blockhash_valid_until(transaction.message.recent_blockhash) is None:
                return slot, "BlockhashNotFound", None, None, None
            self.svm.with_sigverify(sig_verify)
            try:
                result = self.svm.simulate_transaction(transaction)
            finally:
                self.svm.with_sigverify(True)
            if isinstance(result, FailedTransactionMetadata):
                return slot, transaction_error_json(result.err()), result, None, replacement
            post = dict(result.post_accounts())
            accounts = None
            if account_addresses is not None:
                accounts = [(address, post.get(address) or self._live_account(address)) for address in account_addresses]
            return slot, None, result, accounts, replacement

    # --- history ----------------------------------------------------------------------------------
    def signature_statuses(self, signatures: Sequence[Signature]) -> tuple[int, list[dict[str, Any] | None]]:
        """``(context slot, TransactionStatus or None per signature)``.

        Status: ``{"slot", "confirmations", "err", "status", "confirmationStatus"}`` with
        ``confirmations`` ``None`` once finalized.  History is always searched (the ledger is the
        status cache; ``searchTransactionHistory`` changes nothing here).
        """
        with self.lock:
            current = self.slot
            statuses: list[dict[str, Any] | None] = []
            for signature in signatures:
                row = self.ledger.transaction_status(bytes(signature))
                if row is None:
                    statuses.append(None)
                    continue
                slot, err_bytes = row
                err = orjson.loads(err_bytes) if err_bytes is not None else None
                depth = current - slot
                if depth >= FINALIZATION_DEPTH:
                    level, confirmations = FINALIZED, None
                else:
                    level, confirmations = (CONFIRMED if depth >= 1 else PROCESSED), depth
                statuses.append(
                    {
                        "slot": slot,
                        "confirmations": confirmations,
                        "err": err,
                        "status": {"Ok": None} if err is None else {"Err": err},
                        "confirmationStatus": level,
                    }
                )
            return current, statuses

    def transaction_record(
        self, signature: Signature, commitment: str | None
    ) -> tuple[int, int, bytes, dict[str, Any], Any] | None:
        """``(slot, block time, raw bytes, stored meta, err)`` of a landed transaction visible at
        ``commitment`` or ``None``."""
        with self.lock:
            row = self.ledger.transaction(bytes(signature))
            visible = self.slot_at(commitment)
        if row is None:
            return None
        _seq, slot, block_time, raw, meta_bytes = row
        if slot > visible:
            return None
        meta = orjson.loads(meta_bytes)
        with self.lock:
            status = self.ledger.transaction_status(bytes(signature))
        err = orjson.loads(status[1]) if status and status[1] is not None else None
        return slot, block_time, bytes(raw), meta, err

    def signatures_for_address(
        self, address: Pubkey, *, before: Signature | None, until: Signature | None, limit: int, commitment: str | None
    ) -> list[dict[str, Any]]:
        """Newest-first ``getSignaturesForAddress`` entries ``{"signature", "slot", "err", "memo",
        "blockTime", "confirmationStatus"}``.

        :raises RpcError: -32602 when ``before`` / ``until`` name no landed transaction? No: an
            unknown ``before`` yields an empty list and an unknown ``until`` is ignored, as
            validators do.
        """
        with self.lock:
            current = self.slot
            visible = self.slot_at(commitment)
            before_seq = until_seq = None
            if before is not None:
                before_seq = self.ledger.transaction_seq(bytes(before))
                if before_seq is None:
                    return []
            if until is not None:
                until_seq = self.ledger.transaction_seq(bytes(until))
            rows = self.ledger.signatures_for_address(
                bytes(address), before_seq=before_seq, until_seq=until_seq, max_slot=visible, limit=limit
            )
        entries = []
        for signature, slot, err_bytes, block_time in rows:
            depth = current - slot
            entries.append(
                {
                    "signature": str(Signature.from_bytes(signature)),
                    "slot": slot,
                    "err": orjson.loads(err_bytes) if err_bytes is not None else None,
                    "memo": None,
                    "blockTime": block_time,
                    "confirmationStatus": FINALIZED
                    if depth >= FINALIZATION_DEPTH
                    else CONFIRMED
                    if depth >= 1
                    else PROCESSED,
                }
            )
        return entries

    def recent_prioritization_fees(self) -> list[dict[str, int]]:
        """``[{"slot", "prioritizationFee"}]`` for the last 150 slots (minimum landed price per slot,
        micro-lamports per compute unit; 0 for slots without transactions)."""
        with self.lock:
            first = max(0, self.slot - MAX_PROCESSING_AGE + 1)
            return [
                {"slot": slot, "prioritizationFee": self._priority_fees.get(slot, 0)} for slot in range(first, self.slot + 1)
            ]
