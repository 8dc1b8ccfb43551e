"""Push instead of poll: ``signatureSubscribe`` over the endpoint's websocket (PubSub) API.

https://solana.com/docs/rpc/websocket/signaturesubscribe — one notification when the signature
reaches the commitment (at once when it already has, on localnet), then the subscription ends.

:class:`SignatureWatcher` keeps one websocket connection per process, on a daemon thread with its own
event loop, opened on first use and again after it drops. :meth:`SignatureWatcher.watch` never blocks
and never raises: it only *hastens* the caller's next step. Whatever goes wrong — no websocket at that
URL, a dropped connection, a notification that never comes — a watched signature is simply not
reported, and the caller's polling (the outbox's batched poller, the beat sweep) finds the outcome
as it would without the push. Callbacks run on a worker thread of that loop, never on the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from solders.signature import Signature
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

logger = logging.getLogger(__name__)

#: Seconds a connection attempt may take.
CONNECT_TIMEOUT_SECONDS = 2.0
#: Seconds after a failed connection attempt during which :meth:`SignatureWatcher.watch` says no.
RETRY_AFTER_SECONDS = 30.0
#: Seconds a subscription is kept before it is given up (the poller owns it from then on).
WATCH_TIMEOUT_SECONDS = 90.0


def websocket_url(rpc_url: str) -> str:
    """The PubSub URL a validator serves next to ``rpc_url``: ``ws``/``wss`` for ``http``/``https``,
    and the port + 1 when the URL names a port (what ``solana-test-validator``, localnet and
    web3.js's ``makeWebsocketUrl`` do; providers without a port serve both on one host).

    >>> websocket_url("http://127.0.0.1:8899")
    'ws://127.0.0.1:8900'
    >>> websocket_url("https://api.devnet.solana.com")
    'wss://api.devnet.solana.com'
    """
    parts = urlsplit(rpc_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    netloc = parts.netloc
    if parts.port is not None:
        netloc = netloc[: netloc.rindex(":")] + f":{parts.port + 1}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


class SignatureWatcher:
    """``signatureSubscribe`` on one websocket per process (see the module docstring).

    :param url: the endpoint's websocket URL (``ws://`` / ``wss://``).
    :param commitment: ``processed | confirmed | finalized``: when a signature is reported.
    """

    def __init__(self, url: str, commitment: str) -> None:
        self.url = url
        self.commitment = commitment
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[Signature, Callable[[Any, int], None], float]] | None = None
        self._unavailable_until = 0.0
        self._pid = 0

    def watch(self, signature: Signature, on_landed: Callable[[Any, int], None]) -> bool:
        """Ask for ``on_landed(err, slot)`` once ``signature`` reaches the commitment (``err``: the
        transaction error JSON, ``None`` on success; ``slot``: where it landed).

        :returns: ``False`` when the endpoint's websocket was found unreachable in the last
            :data:`RETRY_AFTER_SECONDS` (the caller relies on polling alone); ``True`` means asked,
            not promised.
        """
        if time.monotonic() < self._unavailable_until:
            return False
        loop, queue = self._started()
        deadline = time.monotonic() + WATCH_TIMEOUT_SECONDS
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (signature, on_landed, deadline))
        except RuntimeError:  # the loop is gone (interpreter shutdown)
            return False
        return True

    def _started(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # first use, or a forked child
                self._pid = os.getpid()
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                threading.Thread(target=self._run, args=(loop, ready), name="solana-signature-watcher", daemon=True).start()
                ready.wait()
                self._loop = loop
            assert self._queue is not None  # noqa: S101 - set by _run before ready
            return self._loop, self._queue

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        self._queue = asyncio.Queue()
        ready.set()
        loop.run_until_complete(self._serve(self._queue))

    async def _serve(self, queue: asyncio.Queue[tuple[Signature, Callable[[Any, int], None], float]]) -> None:
        """Subscribe each queued signature; one connection at a time, re-opened when needed."""
        ids = itertools.count(1)
        websocket: ClientConnection | None = None
        pending: dict[int, tuple[Callable[[Any, int], None], float]] = {}
        watching: dict[int, tuple[Callable[[Any, int], None], float]] = {}
        reader: asyncio.Task[None] | None = None
        while True:
            try:
                signature, on_landed, deadline = await asyncio.wait_for(queue.get(), timeout=5.0)
            except TimeoutError:
                if websocket is not None:
                    await _give_up_expired(websocket, watching)
                continue
            if reader is None or reader.done():
                websocket = await self._connect()
                if websocket is None:
                    continue
                pending.clear()
                watching.clear()
                reader = asyncio.ensure_future(self._read(websocket, pending, watching))
            request_id = next(ids)
            pending[request_id] = (on_landed, deadline)
            request = {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "signatureSubscribe",
                "params": [str(signature), {"commitment": self.commitment}],
            }
            with contextlib.suppress(WebSocketException, OSError):
                await websocket.send(orjson.dumps(request).decode())  # type: ignore[union-attr]

    async def _connect(self) -> ClientConnection | None:
        try:
            return await connect(self.url, open_timeout=CONNECT_TIMEOUT_SECONDS, ping_interval=20, max_size=2**20)
        except (WebSocketException, OSError, TimeoutError) as error:
            self._unavailable_until = time.monotonic() + RETRY_AFTER_SECONDS
            logger.info("no websocket at %s (%s); signatures are polled for %ss", self.url, error, RETRY_AFTER_SECONDS)
            return None

    async def _read(
        self,
        websocket: ClientConnection,
        pending: dict[int, tuple[Callable[[Any, int], None], float]],
        watching: dict[int, tuple[Callable[[Any, int], None], float]],
    ) -> None:
        """Match answers to requests and notifications to subscriptions until the connection ends."""
        loop = asyncio.get_running_loop()
        try:
            async for message in websocket:
                frame = orjson.loads(message)
                for item in frame if isinstance(frame, list) else [frame]:
                    if not isinstance(item, dict):
                        continue
                    if "id" in item and item.get("id") is not None:
                        waiting = pending.pop(item["id"], None)
                        if waiting is not None and isinstance(item.get("result"), int):
                            watching[item["result"]] = waiting
                    elif item.get("method") == "signatureNotification":
                        result = item["params"]["result"]
                        if not isinstance(result.get("value"), dict):
                            continue  # "receivedSignature"
                        entry = watching.pop(item["params"]["subscription"], None)
                        if entry is not None:
                            err, slot = result["value"].get("err"), result["context"]["slot"]
                            loop.run_in_executor(None, _call, entry[0], err, slot)
        except (WebSocketException, OSError, orjson.JSONDecodeError, KeyError, TypeError) as error:
            logger.info("websocket %s ended (%s); watched signatures fall back to polling", self.url, error)
        finally:
            pending.clear()
            watching.clear()


async def _give_up_expired(websocket: ClientConnection, watching: dict[int, tuple[Any, float]]) -> None:
    now = time.monotonic()
    for subscription_id in [key for key, (_callback, deadline) in watching.items() if deadline < now]:
        watching.pop(subscription_id, None)
        request = {"jsonrpc": "2.0", "id": None, "method": "signatureUnsubscribe", "params": [subscription_id]}
        with contextlib.suppress(WebSocketException, OSError):
            await websocket.send(orjson.dumps(request).decode())


def _call(on_landed: Callable[[Any, int], None], err: Any, slot: int) -> None:
    try:
        on_landed(err, slot)
    except Exception:  # noqa: BLE001 - a callback's failure must not stop the watcher
        logger.exception("signature callback failed")


__all__ = ["SignatureWatcher", "websocket_url"]
