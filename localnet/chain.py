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
import bisect
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
from localnet.instructions import MEMO_PROGRAM_IDS
from localnet.ledger import Ledger, pack_writes, unpack_writes

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
#: Default units of an instruction of a builtin program (``MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT``).
BUILTIN_COMPUTE_UNIT_LIMIT = 3_000
MAX_COMPUTE_UNIT_LIMIT = 1_400_000
SLOTS_PER_EPOCH = 432_000
COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
ADDRESS_LOOKUP_TABLE_PROGRAM_ID = Pubkey.from_string("AddressLookupTab1e1111111111111111111111111")
#: Programs whose instructions get the builtin default of 3,000 compute units in the runtime LiteSVM
#: runs (agave 4.1): System, ComputeBudget, the BPF loaders and the ed25519 / secp256k1 precompiles.
#: Address Lookup Table, Stake, Vote, Config and secp256r1 are not (migrated to sBPF or not builtin).
BUILTIN_PROGRAM_IDS = frozenset(
    Pubkey.from_string(address)
    for address in (
        "11111111111111111111111111111111",
        "ComputeBudget111111111111111111111111111111",
        "BPFLoader1111111111111111111111111111111111",
        "BPFLoader2111111111111111111111111111111111",
        "BPFLoaderUpgradeab1e11111111111111111111111",
        "LoaderV411111111111111111111111111111111111",
        "Ed25519SigVerify111111111111111111111111111",
        "KeccakSecp256k11111111111111111111111111111",
    )
)
FAUCET_LAMPORTS = 2**62
#: Owner of programs loaded with ``--bpf-program`` (what ``solana-test-validator`` uses for that flag).
BPF_LOADER_2_ID = Pubkey.from_string("BPFLoader2111111111111111111111111111111111")
#: Entries of the SlotHashes sysvar (``solana_slot_hashes::MAX_ENTRIES``).
MAX_SLOT_HASHES = 512
_TOKEN_PROGRAMS = frozenset(TOKEN_PROGRAM_IDS)
_MEMO_PROGRAM_KEYS = frozenset(bytes(program) for program in MEMO_PROGRAM_IDS)
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
    signatures_verified: bool = False


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
    static = message.account_keys
    count = len(static)
    signed = header.num_required_signatures
    writable_signed = signed - header.num_readonly_signed_accounts
    writable_end = max(signed, count - header.num_readonly_unsigned_accounts)
    flags = [True] * writable_signed + [False] * (signed - writable_signed)
    flags += [True] * (writable_end - signed) + [False] * (count - writable_end)
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


@dataclass(frozen=True, slots=True)
class SlotEvent:
    """The chain moved to ``slot``: ``slot - 1`` is now confirmed, ``slot - 32`` finalized."""

    slot: int


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """A transaction landed (is ``processed``) in ``slot``.

    :param signature: its first signature (64 bytes).
    :param err: the transaction error JSON, ``None`` on success.
    :param keys: every account key it loaded (32 bytes each).
    :param written: ``(address, account after)`` of each account it changed (closed accounts have
        0 lamports).
    :param logs: its log messages.
    """

    slot: int
    signature: bytes
    err: Any
    keys: frozenset[bytes]
    written: list[tuple[Pubkey, Account]]
    logs: list[str]


Event = SlotEvent | TransactionEvent


class TransactionRejected(Exception):
    """A transaction the runtime refuses before execution; ``args[0]`` is the RPC error JSON."""


def transaction_memo(message: Message | MessageV0, key_bytes: Sequence[bytes]) -> str | None:
    """The ``memo`` field of ``getSignaturesForAddress``: each SPL Memo instruction as
    ``"[<length>] <text>"``, joined with ``"; "`` (agave's ``extract_and_fmt_memos``)."""
    memos = []
    for instruction in message.instructions:
        index = instruction.program_id_index
        if index < len(key_bytes) and key_bytes[index] in _MEMO_PROGRAM_KEYS:
            text = bytes(instruction.data).decode("utf-8", errors="replace")
            memos.append(f"[{len(text)}] {text}")
    return "; ".join(memos) if memos else None


def compute_budget(message: Message | MessageV0, keys: Sequence[Pubkey]) -> tuple[int, int]:
    """``(compute unit limit, micro-lamports per compute unit)`` requested by a message.

    Follows the ComputeBudget program's instruction layout (tag 2: ``SetComputeUnitLimit(u32)``,
    tag 3: ``SetComputeUnitPrice(u64)``); without a limit instruction the runtime default (agave 4,
    SIMD-0170) is 3,000 units per instruction of a builtin program (:data:`BUILTIN_PROGRAM_IDS`,
    compute budget instructions included) plus 200,000 per other instruction, capped at 1,400,000.
    """
    limit: int | None = None
    price = 0
    default = 0
    for instruction in message.instructions:
        program = keys[instruction.program_id_index] if instruction.program_id_index < len(keys) else None
        if program == COMPUTE_BUDGET_PROGRAM_ID:
            data = bytes(instruction.data)
            if len(data) >= 5 and data[0] == 2:
                limit = struct.unpack_from("<I", data, 1)[0]
            elif len(data) >= 9 and data[0] == 3:
                price = struct.unpack_from("<Q", data, 1)[0]
        default += BUILTIN_COMPUTE_UNIT_LIMIT if program in BUILTIN_PROGRAM_IDS else DEFAULT_COMPUTE_UNIT_LIMIT
    if limit is None:
        limit = default
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
    :param programs: ``(address, ELF bytes)`` of sBPF programs to place at genesis
        (``--bpf-program``); see :meth:`_load_genesis_programs`.
    """

    def __init__(
        self,
        ledger_path: str | Path,
        *,
        slot_ms: int = 400,
        faults: Faults | None = None,
        programs: Sequence[tuple[Pubkey, bytes]] = (),
    ) -> None:
        self.lock = threading.RLock()
        self.slot_ms = slot_ms
        self.faults = faults or Faults()
        self.ledger = Ledger(ledger_path)
        self.svm = LiteSVM().with_blockhash_check(False).with_transaction_history(0)
        self._stop = threading.Event()
        self._clock_thread: threading.Thread | None = None
        self._delayed: deque[Delayed] = deque()
        self._sigverify = True
        self._programs: dict[Pubkey, Account] = {}
        self._slot_hashes: deque[tuple[int, Hash]] = deque(maxlen=MAX_SLOT_HASHES)
        self._pending_signatures: set[bytes] = set()
        self._blockhash_slots: dict[Hash, int] = {}
        self._priority_fees: dict[int, int] = {}
        self.owner_index: dict[Pubkey, set[Pubkey]] = {}
        self._owners: dict[Pubkey, Pubkey] = {}
        self._token_accounts_by_holder: dict[bytes, set[Pubkey]] = {}
        self._token_holder_of: dict[Pubkey, bytes] = {}
        # History indexes, rebuilt from the ledger at startup (the ledger is an append-only log).
        self._tx_by_signature: dict[bytes, int] = {}
        self._tx_signatures: list[bytes] = []
        self._tx_slots: list[int] = []
        self._tx_errors: list[bytes | None] = []
        self._tx_memos: dict[int, str] = {}
        self._address_txs: dict[bytes, list[int]] = {}
        # Undo log for reads below the processed slot: per address, (slot of a change, the state
        # before it), for changes in the last FINALIZATION_DEPTH + 1 slots.
        self._changes: dict[Pubkey, deque[tuple[int, Account | None]]] = {}
        self._change_order: deque[tuple[int, Pubkey]] = deque()
        #: Receives the chain's events after each ledger commit (set by :mod:`localnet.pubsub`;
        #: called with the lock held, so it must only hand the list over, e.g. to an event loop).
        self.publish: Callable[[list[Event]], None] | None = None
        self._events: list[Event] = []
        with self.lock:
            self._open(programs)

    # --- startup --------------------------------------------------------------------------------
    def _open(self, programs: Sequence[tuple[Pubkey, bytes]] = ()) -> None:
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
        latest: dict[bytes, bytes] = {}
        max_tx_slot = -1
        stored_slot = ledger.get_meta("slot")
        # Changes of the last FINALIZATION_DEPTH slots go back into the undo log, so reads at
        # confirmed / finalized answer after a restart exactly as before it.
        horizon = (int(stored_slot) if stored_slot else 0) + 1 - FINALIZATION_DEPTH
        for kind, row in ledger.replay():
            if kind == "writes":
                slot, writes = row
            else:
                index, signature, slot, err, keys, writes, memo = row
                if memo is not None:
                    self._tx_memos[index] = memo
                keys = bytes(keys)
                self._record_transaction(
                    index, bytes(signature), slot, err, [keys[i : i + 32] for i in range(0, len(keys), 32)]
                )
                max_tx_slot = slot
            for address, raw_account in unpack_writes(writes):
                if slot >= horizon:
                    previous = latest.get(address)
                    self._remember_change(
                        Pubkey.from_bytes(address), Account.from_bytes(previous) if previous is not None else None, slot
                    )
                latest[address] = raw_account
        for address, raw_account in latest.items():
            pubkey = Pubkey.from_bytes(address)
            account = Account.from_bytes(raw_account)
            self.svm.set_account(pubkey, account)
            self._index_owner(pubkey, account.owner if account.lamports else None)
            self._index_token_holder(pubkey, account)
        self.slot = max(int(stored_slot) if stored_slot else -1, max_tx_slot) + 1
        if self._live_account(self.faucet.pubkey()) is None:
            self._top_up_faucet()
        self._load_genesis_programs(programs)
        ledger.add_run(self.slot, int(time.time() * 1000), self.slot_ms)
        ledger.set_meta("slot", str(self.slot).encode())
        ledger.commit()
        self._runs = ledger.runs()
        for slot in range(max(0, self.slot - 2 * MAX_PROCESSING_AGE), self.slot + 1):
            self._blockhash_slots[self.blockhash_for_slot(slot)] = slot
        for slot in range(max(0, self.slot - MAX_SLOT_HASHES), self.slot):
            self._slot_hashes.appendleft((slot, self.blockhash_for_slot(slot)))
        self._set_clock()

    @property
    def transaction_count(self) -> int:
        """Transactions landed since genesis."""
        return len(self._tx_signatures)

    def _record_transaction(self, index: int, signature: bytes, slot: int, err: bytes | None, keys: list[bytes]) -> None:
        self._tx_by_signature[signature] = index
        self._tx_signatures.append(signature)
        self._tx_slots.append(slot)
        self._tx_errors.append(err)
        address_txs = self._address_txs
        for address in keys:
            entries = address_txs.get(address)
            if entries is None:
                address_txs[address] = [index]
            elif entries[-1] != index:
                entries.append(index)

    def _top_up_faucet(self) -> None:
        account = Account(FAUCET_LAMPORTS, b"", SYSTEM_PROGRAM_ID)
        previous = self._live_account(self.faucet.pubkey())
        self.svm.set_account(self.faucet.pubkey(), account)
        self._remember_change(self.faucet.pubkey(), previous)
        self.ledger.append_account_writes(
            after_tx=self.transaction_count,
            slot=self.slot,
            writes=pack_writes([(bytes(self.faucet.pubkey()), bytes(account))]),
        )

    def _publish(self) -> None:
        """Hand the events collected since the last commit to :attr:`publish` (lock held)."""
        if self._events:
            events, self._events = self._events, []
            if self.publish is not None:
                self.publish(events)

    def _load_genesis_programs(self, programs: Sequence[tuple[Pubkey, bytes]]) -> None:
        """Place each ``(address, ELF)`` as an executable account owned by ``BPFLoader2111…``
        holding the ELF, rent-exempt — the account ``solana-test-validator --bpf-program`` makes.

        The account is written to the ledger (``account_writes`` at slot 0, so it is visible at
        every commitment at once, as a genesis account is); it stays across restarts with or
        without the flag.  Giving the same program again writes nothing; other bytes replace it.

        :raises ValueError: when the runtime refuses the bytes (not a loadable sBPF ELF).
        """
        for address, elf in programs:
            account = Account(
                self.svm.minimum_balance_for_rent_exemption(len(elf)), elf, BPF_LOADER_2_ID, True, 2**64 - 1
            )
            if self.svm.get_account(address) == account:
                continue
            try:
                self.svm.set_account(address, account)
            except Exception as error:  # noqa: BLE001 - solders raises its own error types
                raise ValueError(f"cannot load the program at {address}: {error}") from None
            self._programs.pop(address, None)
            self._index_owner(address, BPF_LOADER_2_ID)
            self.ledger.append_account_writes(
                after_tx=self.transaction_count, slot=0, writes=pack_writes([(bytes(address), bytes(account))])
            )

    def _remember_change(self, pubkey: Pubkey, previous: Account | None, slot: int | None = None) -> None:
        slot = self.slot if slot is None else slot
        changes = self._changes.get(pubkey)
        if changes is None:
            changes = self._changes[pubkey] = deque()
        changes.append((slot, previous))
        self._change_order.append((slot, pubkey))

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

    def _index_token_holder(self, pubkey: Pubkey, account: Account) -> None:
        """Keep ``token holder (wallet) -> token accounts`` current for ``getTokenAccountsByOwner``."""
        holder = None
        if account.lamports and account.owner in _TOKEN_PROGRAMS:
            decoded = token_account_mint_and_owner(bytes(account.data))
            holder = decoded[1] if decoded is not None else None
        previous = self._token_holder_of.get(pubkey)
        if previous == holder:
            return
        if previous is not None:
            self._token_accounts_by_holder[previous].discard(pubkey)
            del self._token_holder_of[pubkey]
        if holder is not None:
            self._token_holder_of[pubkey] = holder
            self._token_accounts_by_holder.setdefault(holder, set()).add(pubkey)

    # --- clock ------------------------------------------------------------------------------------
    def blockhash_for_slot(self, slot: int) -> Hash:
        """The blockhash of ``slot``: ``sha256(genesis_hash || slot as u64 LE)`` via solders."""
        return Hash.hash(self._genesis_bytes + slot.to_bytes(8, "little"))

    def block_time(self, slot: int) -> int:
        """Unix time (seconds) of ``slot``, from the clock run that produced it."""
        start_slot, start_ms, slot_ms = self._runs[-1]
        if slot >= start_slot:
            return (start_ms + (slot - start_slot) * slot_ms) // 1000
        start_slot, start_ms, slot_ms = self._runs[0]
        for run in self._runs:
            if run[0] <= slot:
                start_slot, start_ms, slot_ms = run
            else:
                break
        return (start_ms + (slot - start_slot) * slot_ms) // 1000

    def _set_clock(self) -> None:
        """Write the Clock and SlotHashes sysvars for the current slot (SlotHashes lists the
        previous slots, newest first; address lookup tables need it)."""
        self.svm.set_slot_hashes(list(self._slot_hashes))
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
            self._slot_hashes.appendleft((self.slot, self.blockhash_for_slot(self.slot)))
            self.slot += 1
            slot = self.slot
            self._blockhash_slots[self.blockhash_for_slot(slot)] = slot
            self._blockhash_slots.pop(
                self.blockhash_for_slot(slot - 2 * MAX_PROCESSING_AGE - 1), None
            ) if slot > 2 * MAX_PROCESSING_AGE else None
            self._priority_fees.pop(slot - MAX_PROCESSING_AGE, None)
            horizon = slot - FINALIZATION_DEPTH
            order = self._change_order
            while order and order[0][0] < horizon:
                pubkey = order.popleft()[1]
                changes = self._changes[pubkey]
                changes.popleft()
                if not changes:
                    del self._changes[pubkey]
            self._set_clock()
            if self.publish is not None:
                self._events.append(SlotEvent(slot))
            self.ledger.begin()
            try:
                while self._delayed and self._delayed[0].due_slot <= slot:
                    item = self._delayed.popleft()
                    self._pending_signatures.discard(bytes(item.transaction.signatures[0]))
                    self._verify_signatures(not item.signatures_verified)
                    with contextlib.suppress(TransactionRejected):
                        self._land(item.transaction, item.raw, rollback_on_error=False, check_blockhash=True)
                self.ledger.set_meta("slot", str(slot).encode())
            finally:
                self.ledger.commit()
                self._publish()
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

    def fee_for_message(self, message: Message | MessageV0) -> int:
        """Fee in lamports of ``message`` (see :func:`transaction_fee`); address-table lookups
        that cannot be resolved are left out of the account list."""
        with self.lock:
            try:
                keys = message_account_keys(message, self.svm)[0]
            except TransactionRejected:
                keys = list(message.account_keys)
        return transaction_fee(message, keys)[0]

    # --- accounts ---------------------------------------------------------------------------------
    def _live_account(self, pubkey: Pubkey) -> Account | None:
        account = self.svm.get_account(pubkey)
        if account is None or account.lamports == 0:
            return None
        return account

    def account(self, pubkey: Pubkey, slot: int) -> Account | None:
        """The account as of the end of ``slot`` (``None`` when absent); caller holds :attr:`lock`.

        ``slot`` may be as old as the finalized slot: the state before the first change made after
        ``slot`` comes from the in-memory undo log, else the state is the live one.
        """
        if slot < self.slot:
            for changed_at, previous in self._changes.get(pubkey, ()):
                if changed_at > slot:
                    return previous if previous is not None and previous.lamports else None
        return self._live_account(pubkey)

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
                for pubkey, changes in self._changes.items():
                    if any(previous is not None and previous.owner == program for _slot, previous in changes):
                        candidates.add(pubkey)
            found = []
            for pubkey in candidates:
                account = self.account(pubkey, slot)
                if account is not None and account.owner == program:
                    found.append((pubkey, account))
            found.sort(key=lambda item: bytes(item[0]))
            return slot, found

    def token_accounts_of(self, holder: Pubkey, commitment: str | None) -> tuple[int, list[tuple[Pubkey, Account]]]:
        """``(context slot, [(address, account)])`` of the SPL Token / Token-2022 accounts whose
        owner (wallet) is ``holder`` as of ``commitment``, from an index (no scan)."""
        holder_bytes = bytes(holder)
        with self.lock:
            slot = self.slot_at(commitment)
            candidates = set(self._token_accounts_by_holder.get(holder_bytes, ()))
            if slot < self.slot:
                for pubkey, changes in self._changes.items():
                    for _changed_at, previous in changes:
                        if previous is not None and previous.owner in _TOKEN_PROGRAMS:
                            decoded = token_account_mint_and_owner(bytes(previous.data))
                            if decoded is not None and decoded[1] == holder_bytes:
                                candidates.add(pubkey)
            found = []
            for pubkey in candidates:
                account = self.account(pubkey, slot)
                if account is None or account.owner not in _TOKEN_PROGRAMS:
                    continue
                decoded = token_account_mint_and_owner(bytes(account.data))
                if decoded is not None and decoded[1] == holder_bytes:
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
    def send(
        self, raw: bytes, transaction: VersionedTransaction, *, skip_preflight: bool, signatures_verified: bool = False
    ) -> Signature:
        """Submit a transaction like a validator's ``sendTransaction``.

        With preflight: a bad signature raises -32003; an expired/unknown blockhash, a replay or an
        execution error raises -32002 and changes nothing.  Without preflight those transactions are
        dropped silently (their signature is returned, they never land); execution errors land
        with their fee charged.  Faults (drop, delay) apply after preflight.

        :param raw: the wire bytes (stored in the history).
        :param signatures_verified: the caller has already checked every signature (the HTTP front
            process does, on another CPU, like a validator's sigverify stage ahead of banking), so
            the runtime skips that step.  Never set it for unchecked input.  Precompile
            instructions (ed25519, secp256k1, secp256r1) are verified by the runtime either way.
        :returns: the transaction's first signature.
        :raises RpcError: -32002 / -32003 as above.
        """
        signature = transaction.signatures[0]
        with self.lock:
            self.ledger.begin()
            try:
                return self._send_locked(raw, transaction, signature, skip_preflight, signatures_verified)
            finally:
                self.ledger.commit()
                self._publish()

    def send_many(self, items: Sequence[tuple[Any, ...]]) -> list[Signature | RpcError]:
        """:meth:`send` for several transactions under one lock and one ledger commit (group
        commit); every result is durable when this returns.

        :param items: ``(raw, transaction, skip_preflight)`` or ``(raw, transaction,
            skip_preflight, signatures_verified)`` each.
        :returns: per item, the signature or the :class:`RpcError` :meth:`send` would raise.
        """
        results: list[Signature | RpcError] = []
        with self.lock:
            self.ledger.begin()
            try:
                for raw, transaction, skip_preflight, *verified in items:
                    try:
                        results.append(
                            self._send_locked(
                                raw, transaction, transaction.signatures[0], skip_preflight, bool(verified and verified[0])
                            )
                        )
                    except RpcError as error:
                        results.append(error)
            finally:
                self.ledger.commit()
                self._publish()
        return results

    def _is_duplicate(self, signature: Signature) -> bool:
        """True when the signature already landed or waits in the delay queue."""
        key = bytes(signature)
        return key in self._tx_by_signature or key in self._pending_signatures

    def _verify_signatures(self, enabled: bool) -> None:
        """Switch the runtime's signature verification (lock held)."""
        if self._sigverify != enabled:
            self.svm.with_sigverify(enabled)
            self._sigverify = enabled

    def _send_locked(
        self,
        raw: bytes,
        transaction: VersionedTransaction,
        signature: Signature,
        skip_preflight: bool,
        signatures_verified: bool = False,
    ) -> Signature:
        self._verify_signatures(not signatures_verified)
        faults = self.faults
        dropped = faults.should_drop()
        delayed = faults.delay_slots > 0
        if skip_preflight:
            if dropped:
                return signature
            if delayed:
                self._delay(raw, transaction, signatures_verified)
                return signature
            with contextlib.suppress(TransactionRejected):
                self._land(transaction, raw, rollback_on_error=False, check_blockhash=True)
            return signature
        message = transaction.message
        if self.blockhash_valid_until(message.recent_blockhash) is None:
            raise preflight_failure("BlockhashNotFound")
        if self._is_duplicate(signature):
            raise preflight_failure("AlreadyProcessed")
        if dropped or delayed:
            self._preflight_simulate(transaction)
            if delayed and not dropped:
                self._delay(raw, transaction, signatures_verified)
            return signature
        try:
            self._land(transaction, raw, rollback_on_error=True, check_blockhash=False, message=message, signature=signature)
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

    def _delay(self, raw: bytes, transaction: VersionedTransaction, signatures_verified: bool) -> None:
        self._delayed.append(Delayed(self.slot + self.faults.delay_slots, raw, transaction, signatures_verified))
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
        self,
        transaction: VersionedTransaction,
        raw: bytes,
        *,
        rollback_on_error: bool,
        check_blockhash: bool,
        message: Message | MessageV0 | None = None,
        signature: Signature | None = None,
    ) -> None:
        """Execute and, when it lands, persist one transaction (lock held, ledger transaction open).

        This is the hot path of ``sendTransaction``: solders getters copy, so the message and
        signature are read once (callers may pass them in).

        :raises TransactionRejected: ``(err json, logs, units)`` when it does not land.
        """
        if message is None:
            message = transaction.message
        if signature is None:
            signature = transaction.signatures[0]
        if check_blockhash:
            if self.blockhash_valid_until(message.recent_blockhash) is None:
                raise TransactionRejected("BlockhashNotFound")
            if self._is_duplicate(signature):
                raise TransactionRejected("AlreadyProcessed")
        svm = self.svm
        keys, writable, loaded_writable, loaded_readonly = message_account_keys(message, svm)
        get_account = svm.get_account
        # Read-only accounts cannot change, so they are read once; programs (executable) are
        # cached across transactions, since copying e.g. Token-2022's 1.4 MB would dominate.
        programs = self._programs
        pre = []
        for key, is_writable in zip(keys, writable, strict=True):
            if is_writable:
                pre.append(get_account(key))
                continue
            account = programs.get(key)
            if account is None:
                account = get_account(key)
                if account is not None and account.executable:
                    programs[key] = account
            pre.append(account)
        price = compute_budget(message, keys)[1]
        # LiteSVM charges the whole fee (signatures + priority fee) like a cluster does.
        charged = pre[0]
        result = svm.send_transaction(transaction)
        post = [
            get_account(key) if is_writable else before for key, is_writable, before in zip(keys, writable, pre, strict=True)
        ]
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            err: Any = transaction_error_json(result.err())
            if rollback_on_error or post[0] == charged:
                for key, before, after in zip(keys, pre, post, strict=True):
                    if before != after:
                        svm.set_account(key, before if before is not None else _EMPTY_ACCOUNT)
                raise TransactionRejected(err, meta.logs(), meta.compute_units_consumed())
        else:
            meta = result
            err = None
        fee = meta.fee()
        slot = self.slot
        if price and price < self._priority_fees.get(slot, 2**64):
            self._priority_fees[slot] = price
        else:
            self._priority_fees.setdefault(slot, 0)
        writes = []
        written_accounts = []
        for key, before, after, is_writable in zip(keys, pre, post, writable, strict=True):
            if is_writable and before != after:
                written = after if after is not None else _EMPTY_ACCOUNT
                writes.append((bytes(key), bytes(written)))
                written_accounts.append((key, written))
                programs.pop(key, None)
                self._remember_change(key, before)
                self._index_owner(key, written.owner if written.lamports else None)
                if written.owner in _TOKEN_PROGRAMS or key in self._token_holder_of:
                    self._index_token_holder(key, written)
        return_data = meta.return_data()
        return_data_bytes = bytes(return_data.data)
        stored_meta = {
            "fee": fee,
            "pre": [account.lamports if account is not None else 0 for account in pre],
            "post": [account.lamports if account is not None else 0 for account in post],
            "preToken": self._token_balances(pre),
            "postToken": self._token_balances(post),
            "logs": meta.logs(),
            "inner": stored_inner_instructions(meta.inner_instructions()),
            "units": meta.compute_units_consumed(),
            "loaded": [loaded_writable, loaded_readonly],
            "returnData": [str(return_data.program_id), base64.b64encode(return_data_bytes).decode()]
            if return_data_bytes
            else None,
            "writable": writable,
        }
        index = self.transaction_count
        signature_bytes = bytes(signature)
        key_bytes = [bytes(key) for key in keys]
        keys_bytes = b"".join(key_bytes)
        err_bytes = orjson.dumps(err) if err is not None else None
        self._record_transaction(index, signature_bytes, slot, err_bytes, key_bytes)
        memo = None
        if _MEMO_PROGRAM_KEYS.intersection(key_bytes):
            memo = transaction_memo(message, key_bytes)
            if memo is not None:
                self._tx_memos[index] = memo
        self.ledger.append_transaction(
            index=index,
            signature=signature_bytes,
            slot=slot,
            block_time=self.block_time(slot),
            err=err_bytes,
            raw=raw,
            meta=orjson.dumps(stored_meta),
            keys=keys_bytes,
            writes=pack_writes(writes),
            memo=memo,
        )
        if self.publish is not None:
            self._events.append(
                TransactionEvent(slot, signature_bytes, err, frozenset(key_bytes), written_accounts, stored_meta["logs"])
            )

    def _token_balances(self, accounts: Sequence[Account | None]) -> list[dict[str, Any]]:
        balances = []
        decimals_by_mint: dict[bytes, int | None] = {}
        for index, account in enumerate(accounts):
            if account is None or account.owner not in _TOKEN_PROGRAMS:
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
                self._verify_signatures(True)
                try:
                    self._land(transaction, bytes(legacy), rollback_on_error=True, check_blockhash=False)
                except TransactionRejected as rejected:
                    raise RpcError(-32603, f"airdrop failed: {transaction_error_text(rejected.args[0])}") from None
                return transaction.signatures[0]
            finally:
                self.ledger.commit()
                self._publish()

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
            self._verify_signatures(sig_verify)
            result = self.svm.simulate_transaction(transaction)
            if isinstance(result, FailedTransactionMetadata):
                return slot, transaction_error_json(result.err()), result, None, replacement
            post = dict(result.post_accounts())
            accounts = None
            if account_addresses is not None:
                accounts = [(address, post.get(address) or self._live_account(address)) for address in account_addresses]
            return slot, None, result, accounts, replacement

    # --- history ----------------------------------------------------------------------------------
    def _level(self, slot: int) -> tuple[str, int | None]:
        depth = self.slot - slot
        if depth >= FINALIZATION_DEPTH:
            return FINALIZED, None
        return (CONFIRMED if depth >= 1 else PROCESSED), depth

    def signature_statuses(self, signatures: Sequence[Signature]) -> tuple[int, list[dict[str, Any] | None]]:
        """``(context slot, TransactionStatus or None per signature)``.

        Status: ``{"slot", "confirmations", "err", "status", "confirmationStatus"}`` with
        ``confirmations`` ``None`` once finalized.  The whole history is always searched, so
        ``searchTransactionHistory`` changes nothing.
        """
        with self.lock:
            statuses: list[dict[str, Any] | None] = []
            for signature in signatures:
                index = self._tx_by_signature.get(bytes(signature))
                if index is None:
                    statuses.append(None)
                    continue
                slot = self._tx_slots[index]
                err_bytes = self._tx_errors[index]
                err = orjson.loads(err_bytes) if err_bytes is not None else None
                level, confirmations = self._level(slot)
                statuses.append(
                    {
                        "slot": slot,
                        "confirmations": confirmations,
                        "err": err,
                        "status": {"Ok": None} if err is None else {"Err": err},
                        "confirmationStatus": level,
                    }
                )
            return self.slot, statuses

    def transaction_record(
        self, signature: Signature, commitment: str | None
    ) -> tuple[int, int | None, bytes, dict[str, Any], Any] | None:
        """``(slot, block time, raw bytes, stored meta, err)`` of a landed transaction visible at
        ``commitment``, or ``None``."""
        with self.lock:
            index = self._tx_by_signature.get(bytes(signature))
            if index is None or self._tx_slots[index] > self.slot_at(commitment):
                return None
            slot, block_time, err_bytes, raw, meta_bytes = self.ledger.transaction(index)
        err = orjson.loads(err_bytes) if err_bytes is not None else None
        return slot, block_time, bytes(raw), orjson.loads(meta_bytes), err

    def block_records(self, slot: int) -> list[tuple[bytes, dict[str, Any], Any]]:
        """``(raw bytes, stored meta, err)`` of every transaction of block ``slot``, in landing
        order (every slot is a block on localnet; ``_tx_slots`` never decreases)."""
        with self.lock:
            first = bisect.bisect_left(self._tx_slots, slot)
            end = bisect.bisect_right(self._tx_slots, slot)
            rows = self.ledger.transactions(first, end) if end > first else []
        return [
            (bytes(raw), orjson.loads(meta), orjson.loads(err) if err is not None else None)
            for _slot, _time, err, raw, meta in rows
        ]

    def signatures_for_address(
        self, address: Pubkey, *, before: Signature | None, until: Signature | None, limit: int, commitment: str | None
    ) -> list[dict[str, Any]]:
        """Newest-first ``getSignaturesForAddress`` entries ``{"signature", "slot", "err", "memo",
        "blockTime", "confirmationStatus"}``.

        An unknown ``before`` yields an empty list and an unknown ``until`` is ignored.
        """
        with self.lock:
            visible = self.slot_at(commitment)
            indexes = self._address_txs.get(bytes(address), [])
            end = len(indexes)
            if before is not None:
                before_index = self._tx_by_signature.get(bytes(before))
                if before_index is None:
                    return []
                end = bisect.bisect_left(indexes, before_index)
            until_index = self._tx_by_signature.get(bytes(until), -1) if until is not None else -1
            entries = []
            for position in range(end - 1, -1, -1):
                index = indexes[position]
                if index <= until_index or len(entries) >= limit:
                    break
                slot = self._tx_slots[index]
                if slot > visible:
                    continue
                err_bytes = self._tx_errors[index]
                entries.append(
                    {
                        "signature": str(Signature.from_bytes(self._tx_signatures[index])),
                        "slot": slot,
                        "err": orjson.loads(err_bytes) if err_bytes is not None else None,
                        "memo": self._tx_memos.get(index),
                        "blockTime": self.block_time(slot),
                        "confirmationStatus": self._level(slot)[0],
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
