"""The PubSub websocket API (https://solana.com/docs/rpc/websocket), served by the chain process.

``python -m localnet`` listens on ``--ws-port`` (default: the RPC port + 1, as a validator does) and
serves it with the ``websockets`` library on the chain process's event loop, next to the channels
of the HTTP fronts: notifications come from the chain's own events (:class:`~localnet.chain.
SlotEvent`, :class:`~localnet.chain.TransactionEvent`, handed over after each ledger commit), so
nothing has to cross a process boundary and a notification never runs ahead of the ledger.

Methods (JSON-RPC 2.0 over text frames; a batch array is answered with an array):
``signatureSubscribe``, ``accountSubscribe``, ``programSubscribe``, ``logsSubscribe``,
``slotSubscribe``, ``rootSubscribe`` and their ``*Unsubscribe``.  A subscribe answers the
subscription id (an integer); an unsubscribe answers ``true`` or -32602 ``Invalid subscription id.``

When notifications are sent (localnet's slot model: a transaction landed in slot ``s`` is
``processed`` at once, ``confirmed`` when slot ``s + 1`` starts, ``finalized`` when slot ``s + 32``
starts):

* ``processed`` subscriptions hear of a transaction as soon as it lands;
* ``confirmed`` / ``finalized`` ones when the slot of the change reaches that level, with the
  account state at the end of that slot and the context slot of that slot;
* ``signatureSubscribe`` sends one notification (``{"err"}``) when the signature reaches the
  commitment — at once when it already has — then the subscription ends by itself; with
  ``enableReceivedNotification`` a ``"receivedSignature"`` notification comes first (when the
  transaction lands, or at once if it already has);
* ``slotNotification`` ``{"parent", "root", "slot"}`` at every new slot; ``rootNotification``
  (the new finalized slot) at every new slot from slot 32 on.

The default commitment is ``finalized``, as on a validator.  Subscriptions live in memory only:
a client that disconnects leaves nothing behind, and none survives a restart (clients resubscribe).
A client that does not read its notifications is disconnected (code 1008) once
:data:`MAX_QUEUED_MESSAGES` wait for it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from localnet.chain import (
    CONFIRMED,
    FINALIZATION_DEPTH,
    FINALIZED,
    PROCESSED,
    Chain,
    Event,
    RpcError,
    SlotEvent,
    TransactionEvent,
)
from localnet.rpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    Rpc,
    _account_encoding,
    _bool,
    _commitment,
    _config,
    _filters,
    _param,
    _pubkey,
    _signature,
    check_envelope,
    error_response,
    invalid_params,
)

#: Notifications queued for one connection before it is closed as too slow (code 1008).
MAX_QUEUED_MESSAGES = 50_000
#: Largest request frame accepted (bytes).
MAX_REQUEST_SIZE = 64 * 1024
_LEVELS = {PROCESSED: 0, CONFIRMED: 1, FINALIZED: 2}
_CLOSED_ACCOUNT = Account(0, b"", SYSTEM_PROGRAM_ID)
_log = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscription:
    """One subscription of one connection.

    :param kind: ``account``, ``program``, ``logs``, ``signature``, ``slot`` or ``root``.
    :param key: what it watches (account / program / mentioned address or signature bytes), if any.
    """

    id: int
    kind: str
    connection: Connection
    commitment: str = FINALIZED
    key: bytes | None = None
    encoding: str = "binary"
    config: dict[str, Any] = field(default_factory=dict)
    matchers: list[Callable[[bytes], bool]] = field(default_factory=list)
    received: bool = False


class Connection:
    """A websocket client: its subscriptions and its ordered outgoing queue (one writer task)."""

    def __init__(self, websocket: ServerConnection) -> None:
        self.websocket = websocket
        self.subscriptions: dict[int, Subscription] = {}
        self.outgoing: deque[bytes] = deque()
        self.ready = asyncio.Event()
        self.closing = False

    def send(self, message: bytes) -> None:
        """Queue one text frame; a client too slow to read gets closed instead."""
        if self.closing:
            return
        if len(self.outgoing) >= MAX_QUEUED_MESSAGES:
            self.closing = True
            self.outgoing.clear()
            asyncio.ensure_future(self.websocket.close(1008, "too many queued notifications"))
            return
        self.outgoing.append(message)
        self.ready.set()

    async def write_forever(self) -> None:
        """Send queued frames in order until the connection closes."""
        websocket = self.websocket
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.outgoing:
                await websocket.send(self.outgoing.popleft().decode())


@dataclass
class _SlotRecord:
    transactions: list[TransactionEvent] = field(default_factory=list)
    #: Address -> state at the end of the slot (the last write wins).
    writes: dict[Pubkey, Account] = field(default_factory=dict)


class PubSub:
    """Subscriptions and notifications of one chain (see the module docstring).

    :param chain: the chain (events arrive through :meth:`handle_events`).
    :param rpc: the JSON-RPC front, used to encode accounts exactly as ``getAccountInfo`` does.
    """

    def __init__(self, chain: Chain, rpc: Rpc) -> None:
        self.chain = chain
        self.rpc = rpc
        self.ids = itertools.count(1)
        self.subscriptions: dict[int, Subscription] = {}
        self.connections: set[Connection] = set()
        # Indexes: what each event must look up.
        self.by_account: dict[bytes, set[Subscription]] = {}
        self.by_program: dict[bytes, set[Subscription]] = {}
        self.by_signature: dict[bytes, set[Subscription]] = {}
        self.logs_all: set[Subscription] = set()
        self.logs_mentions: dict[bytes, set[Subscription]] = {}
        self.slot_subscribers: set[Subscription] = set()
        self.root_subscribers: set[Subscription] = set()
        #: Signature subscriptions whose transaction landed but whose commitment level is not
        #: reached yet: ``(slot it landed in, its err)``.
        self.landed: dict[Subscription, tuple[int, Any]] = {}
        self.recent: dict[int, _SlotRecord] = {}
        self.methods: dict[str, Callable[[Connection, list[Any]], Any]] = {
            "accountSubscribe": self.account_subscribe,
            "programSubscribe": self.program_subscribe,
            "logsSubscribe": self.logs_subscribe,
            "signatureSubscribe": self.signature_subscribe,
            "slotSubscribe": self.slot_subscribe,
            "rootSubscribe": self.root_subscribe,
            "accountUnsubscribe": self.unsubscribe_kind("account"),
            "programUnsubscribe": self.unsubscribe_kind("program"),
            "logsUnsubscribe": self.unsubscribe_kind("logs"),
            "signatureUnsubscribe": self.unsubscribe_kind("signature"),
            "slotUnsubscribe": self.unsubscribe_kind("slot"),
            "rootUnsubscribe": self.unsubscribe_kind("root"),
        }
        rpc.methods["localnet_getPubsubStats"] = self.stats

    def stats(self, params: list[Any]) -> dict[str, int]:
        """``localnet_getPubsubStats`` (HTTP JSON-RPC) -> ``{connections, subscriptions,
        indexed}``: open websocket connections, live subscriptions, and index entries (all three
        drop to 0 when every client is gone)."""
        indexed = sum(
            len(members)
            for index in (self.by_account, self.by_program, self.by_signature, self.logs_mentions)
            for members in index.values()
        )
        indexed += len(self.logs_all) + len(self.slot_subscribers) + len(self.root_subscribers) + len(self.landed)
        return {"connections": len(self.connections), "subscriptions": len(self.subscriptions), "indexed": indexed}

    # --- serving ----------------------------------------------------------------------------------
    async def start(self, listener: Any) -> Server:
        """Serve websocket connections on an already bound, listening socket."""
        return await serve(
            self.serve_connection,
            sock=listener,
            max_size=MAX_REQUEST_SIZE,
            compression=None,
            ping_interval=30,
            ping_timeout=30,
            max_queue=64,
        )

    async def serve_connection(self, websocket: ServerConnection) -> None:
        """One client, from handshake to close: answer its requests; on the way out, drop every
        subscription it held."""
        connection = Connection(websocket)
        self.connections.add(connection)
        writer = asyncio.ensure_future(connection.write_forever())
        try:
            async for message in websocket:
                response, due = self.answer(connection, message)
                connection.send(response)
                for notify in due:
                    notify()
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            self.connections.discard(connection)
            for subscription in list(connection.subscriptions.values()):
                self.remove(subscription)

    def answer(self, connection: Connection, message: str | bytes) -> tuple[bytes, list[Callable[[], None]]]:
        """The response frame to one request frame (object or batch), and the notifications due
        right after it (to send once the response is queued)."""
        due: list[Callable[[], None]] = []
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            return orjson.dumps(error_response(None, RpcError(PARSE_ERROR, "Parse error"))), due
        if isinstance(request, list):
            if not request:
                return orjson.dumps(error_response(None, RpcError(INVALID_REQUEST, "Invalid request"))), due
            return orjson.dumps([self.answer_object(connection, item, due) for item in request]), due
        return orjson.dumps(self.answer_object(connection, request, due)), due

    def answer_object(self, connection: Connection, request: Any, due: list[Callable[[], None]]) -> dict[str, Any]:
        """Answer one request object; a notification due at once is appended to ``due``."""
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            request_id, name, params = check_envelope(request)
            method = self.methods.get(name)
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, "Method not found")
            result, after = method(connection, params)
        except RpcError as error:
            return error_response(request_id, error)
        except Exception as error:  # noqa: BLE001 - answer every request
            _log.exception("pubsub request failed")
            return error_response(request_id, RpcError(-32603, f"Internal error: {error}"))
        if after is not None:
            due.append(after)
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    # --- subscribe / unsubscribe ------------------------------------------------------------------
    def add(self, subscription: Subscription) -> int:
        """Register a subscription in its connection and in the indexes."""
        self.subscriptions[subscription.id] = subscription
        subscription.connection.subscriptions[subscription.id] = subscription
        key = subscription.key
        kind = subscription.kind
        if kind == "account":
            self.by_account.setdefault(key, set()).add(subscription)  # type: ignore[arg-type]
        elif kind == "program":
            self.by_program.setdefault(key, set()).add(subscription)  # type: ignore[arg-type]
        elif kind == "signature":
            self.by_signature.setdefault(key, set()).add(subscription)  # type: ignore[arg-type]
        elif kind == "logs":
            if key is None:
                self.logs_all.add(subscription)
            else:
                self.logs_mentions.setdefault(key, set()).add(subscription)
        elif kind == "slot":
            self.slot_subscribers.add(subscription)
        elif kind == "root":
            self.root_subscribers.add(subscription)
        return subscription.id

    def remove(self, subscription: Subscription) -> None:
        """Forget a subscription everywhere (idempotent)."""
        if self.subscriptions.pop(subscription.id, None) is None:
            return
        subscription.connection.subscriptions.pop(subscription.id, None)
        self.landed.pop(subscription, None)
        index: dict[bytes, set[Subscription]] | None = {
            "account": self.by_account,
            "program": self.by_program,
            "signature": self.by_signature,
            "logs": self.logs_mentions,
        }.get(subscription.kind)
        if subscription.kind == "logs" and subscription.key is None:
            self.logs_all.discard(subscription)
        elif index is not None:
            members = index.get(subscription.key)  # type: ignore[arg-type]
            if members is not None:
                members.discard(subscription)
                if not members:
                    del index[subscription.key]  # type: ignore[arg-type]
        self.slot_subscribers.discard(subscription)
        self.root_subscribers.discard(subscription)

    def unsubscribe_kind(self, kind: str) -> Callable[[Connection, list[Any]], Any]:
        """The ``<kind>Unsubscribe(id)`` method: ``true``, or -32602 for an id this connection does
        not hold (of that kind)."""

        def unsubscribe(connection: Connection, params: list[Any]) -> tuple[bool, None]:
            subscription_id = _param(params, 0, "subscription_id")
            subscription = connection.subscriptions.get(subscription_id) if isinstance(subscription_id, int) else None
            if subscription is None or subscription.kind != kind:
                raise RpcError(INVALID_PARAMS, "Invalid subscription id.")
            self.remove(subscription)
            return True, None

        return unsubscribe

    def _new(self, connection: Connection, kind: str, **fields: Any) -> Subscription:
        return Subscription(next(self.ids), kind, connection, **fields)

    def account_subscribe(self, connection: Connection, params: list[Any]) -> tuple[int, None]:
        """``accountSubscribe(pubkey, [{commitment, encoding, dataSlice}])``; encodings ``base58``
        (default ``binary``), ``base64``, ``jsonParsed``."""
        pubkey = _pubkey(_param(params, 0, "pubkey"))
        config = _config(params, 1)
        subscription = self._new(
            connection,
            "account",
            key=bytes(pubkey),
            commitment=_commitment(config),
            encoding=_account_encoding(config),
            config=config,
        )
        return self.add(subscription), None

    def program_subscribe(self, connection: Connection, params: list[Any]) -> tuple[int, None]:
        """``programSubscribe(program, [{commitment, encoding, dataSlice, filters}])``; filters as
        ``getProgramAccounts`` (``dataSize``, ``memcmp``, ``tokenAccountState``)."""
        program = _pubkey(_param(params, 0, "program_id"))
        config = _config(params, 1)
        subscription = self._new(
            connection,
            "program",
            key=bytes(program),
            commitment=_commitment(config),
            encoding=_account_encoding(config),
            config=config,
            matchers=_filters(config.get("filters") or []),
        )
        return self.add(subscription), None

    def logs_subscribe(self, connection: Connection, params: list[Any]) -> tuple[int, None]:
        """``logsSubscribe("all" | "allWithVotes" | {"mentions": [address]}, [{commitment}])``
        (one address, as a validator allows; localnet has no vote transactions)."""
        selector = _param(params, 0, "filter")
        key: bytes | None = None
        if isinstance(selector, dict) and set(selector) == {"mentions"}:
            mentions = selector["mentions"]
            if not isinstance(mentions, list) or len(mentions) != 1:
                raise invalid_params("Invalid Request: Only 1 address supported")
            key = bytes(_pubkey(mentions[0]))
        elif selector not in ("all", "allWithVotes"):
            raise invalid_params('unknown variant, expected `all`, `allWithVotes` or `{"mentions": [address]}`')
        config = _config(params, 1)
        return self.add(self._new(connection, "logs", key=key, commitment=_commitment(config))), None

    def signature_subscribe(self, connection: Connection, params: list[Any]) -> tuple[int, Callable[[], None] | None]:
        """``signatureSubscribe(signature, [{commitment, enableReceivedNotification}])``.

        A signature that already reached the commitment is notified at once (right after the
        answer) and the subscription ends, so subscribing after sending never misses it.
        """
        signature = _signature(_param(params, 0, "signature"))
        config = _config(params, 1)
        subscription = self._new(
            connection,
            "signature",
            key=bytes(signature),
            commitment=_commitment(config),
            received=_bool(config, "enableReceivedNotification"),
        )
        self.add(subscription)
        _slot, (status,) = self.chain.signature_statuses([signature])
        if status is None:
            return subscription.id, None
        after: Callable[[], None]

        def after() -> None:
            if subscription.received:
                self._notify_received(subscription, status["slot"])
            if _LEVELS[status["confirmationStatus"]] >= _LEVELS[subscription.commitment]:
                self._notify_signature(subscription, status["slot"], status["err"])
            else:
                self.landed[subscription] = (status["slot"], status["err"])

        return subscription.id, after

    def slot_subscribe(self, connection: Connection, params: list[Any]) -> tuple[int, None]:
        """``slotSubscribe()``: ``{"parent", "root", "slot"}`` at each new slot."""
        return self.add(self._new(connection, "slot")), None

    def root_subscribe(self, connection: Connection, params: list[Any]) -> tuple[int, None]:
        """``rootSubscribe()``: the new root (finalized slot) at each new slot."""
        return self.add(self._new(connection, "root")), None

    # --- notifications ----------------------------------------------------------------------------
    def _send(self, subscription: Subscription, method: str, result: Any) -> None:
        subscription.connection.send(
            orjson.dumps({"jsonrpc": "2.0", "method": method, "params": {"result": result, "subscription": subscription.id}})
        )

    def _notify_received(self, subscription: Subscription, slot: int) -> None:
        subscription.received = False
        self._send(subscription, "signatureNotification", {"context": {"slot": slot}, "value": "receivedSignature"})

    def _notify_signature(self, subscription: Subscription, slot: int, err: Any) -> None:
        self._send(subscription, "signatureNotification", {"context": {"slot": slot}, "value": {"err": err}})
        self.remove(subscription)

    def handle_events(self, events: Iterable[Event]) -> None:
        """Apply the chain's events in order (called on the event loop)."""
        for event in events:
            try:
                if isinstance(event, TransactionEvent):
                    self._on_transaction(event)
                else:
                    self._on_slot(event)
            except Exception:  # noqa: BLE001 - one bad notification must not stop the others
                _log.exception("pubsub event failed")

    def _on_transaction(self, event: TransactionEvent) -> None:
        # Kept for the confirmed / finalized notifications only what a subscription watches, so
        # an unwatched chain keeps nothing (a subscription hears of changes made after it).
        watched_logs = bool(self.logs_all or self.logs_mentions)
        watched = [
            (address, account)
            for address, account in event.written
            if bytes(address) in self.by_account or bytes(account.owner) in self.by_program
        ]
        if watched_logs or watched:
            record = self.recent.get(event.slot)
            if record is None:
                record = self.recent[event.slot] = _SlotRecord()
            if watched_logs:
                record.transactions.append(event)
            for address, account in watched:
                record.writes[address] = account
        for subscription in list(self.by_signature.get(event.signature, ())):
            if subscription.received:
                self._notify_received(subscription, event.slot)
            if subscription.commitment == PROCESSED:
                self._notify_signature(subscription, event.slot, event.err)
            else:
                self.landed[subscription] = (event.slot, event.err)
        self._notify_transaction_level(PROCESSED, event.slot, [event])
        self._notify_writes_level(PROCESSED, event.slot, event.written)

    def _on_slot(self, event: SlotEvent) -> None:
        slot = event.slot
        root = slot - FINALIZATION_DEPTH
        for subscription in list(self.slot_subscribers):
            self._send(subscription, "slotNotification", {"parent": slot - 1, "root": max(0, root), "slot": slot})
        if root >= 0:
            for subscription in list(self.root_subscribers):
                self._send(subscription, "rootNotification", root)
        for subscription, (landed_slot, err) in list(self.landed.items()):
            if landed_slot <= (slot - 1 if subscription.commitment == CONFIRMED else root):
                self._notify_signature(subscription, landed_slot, err)
        for level, level_slot in ((CONFIRMED, slot - 1), (FINALIZED, root)):
            record = self.recent.get(level_slot)
            if record is not None:
                self._notify_transaction_level(level, level_slot, record.transactions)
                self._notify_writes_level(level, level_slot, list(record.writes.items()))
        for old in [old for old in self.recent if old <= root]:
            del self.recent[old]

    def _notify_transaction_level(self, level: str, slot: int, transactions: Iterable[TransactionEvent]) -> None:
        if not self.logs_all and not self.logs_mentions:
            return
        for event in transactions:
            targets = [subscription for subscription in self.logs_all if subscription.commitment == level]
            for key in event.keys:
                targets.extend(
                    subscription for subscription in self.logs_mentions.get(key, ()) if subscription.commitment == level
                )
            if not targets:
                continue
            value = {"signature": str(Signature.from_bytes(event.signature)), "err": event.err, "logs": event.logs}
            for subscription in targets:
                self._send(subscription, "logsNotification", {"context": {"slot": slot}, "value": value})

    def _notify_writes_level(self, level: str, slot: int, writes: Iterable[tuple[Pubkey, Account]]) -> None:
        if not self.by_account and not self.by_program:
            return
        for address, account in writes:
            address_bytes = bytes(address)
            for subscription in list(self.by_account.get(address_bytes, ())):
                if subscription.commitment == level:
                    value = self._encode(account, subscription, slot)
                    self._send(subscription, "accountNotification", {"context": {"slot": slot}, "value": value})
            if account.lamports == 0:
                continue
            program_subscriptions = self.by_program.get(bytes(account.owner))
            if not program_subscriptions:
                continue
            data = bytes(account.data)
            for subscription in list(program_subscriptions):
                if subscription.commitment == level and all(matcher(data) for matcher in subscription.matchers):
                    value = {"pubkey": str(address), "account": self._encode(account, subscription, slot)}
                    self._send(subscription, "programNotification", {"context": {"slot": slot}, "value": value})

    def _encode(self, account: Account, subscription: Subscription, slot: int) -> dict[str, Any]:
        """The account as ``getAccountInfo`` shows it; a closed account as 0 lamports, no data,
        owned by the System program (what a validator notifies)."""
        if account.lamports == 0:
            account = _CLOSED_ACCOUNT
        return self.rpc._encode(account, subscription.encoding, subscription.config, slot)  # type: ignore[return-value]


__all__ = ["MAX_QUEUED_MESSAGES", "PubSub"]
