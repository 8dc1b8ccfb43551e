"""The HTTP front: a plain ASGI application served by uvicorn (httptools + uvloop when present).

``POST /`` takes JSON-RPC 2.0 (single or batch); ``GET /health`` answers ``ok`` like a validator.
HTTP faults (429 / 503) are drawn per request before the body is parsed; requests calling the
``localnet_*`` control methods are exempt so tests can always switch faults off.

``sendTransaction`` requests arriving together are applied by one :meth:`Chain.send_many` call —
one lock acquisition and one SQLite commit for the group — and each is answered only after that
commit, so an answered transaction is always durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from localnet.chain import Chain, RpcError
from localnet.rpc import INTERNAL_ERROR, Rpc, _error_response

#: Largest request body accepted (bytes), like a validator's ``MAX_REQUEST_BODY_SIZE`` (50 KiB).
MAX_REQUEST_BODY_SIZE = 50 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json")]
_TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


class SendBatcher:
    """Collects ``sendTransaction`` calls made in one event-loop turn and applies them together."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []

    def submit(self, item: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue ``(raw, transaction, skip_preflight)``; the future yields a signature or an
        :class:`RpcError`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((item, future))
        return future

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        try:
            results: list[Any] = self.chain.send_many([item for item, _future in queue])
        except Exception as error:  # noqa: BLE001 - every waiting request must get an answer
            results = [RpcError(INTERNAL_ERROR, f"Internal error: {error}")] * len(queue)
        for (_item, future), result in zip(queue, results, strict=True):
            if not future.cancelled():
                future.set_result(result)


class LocalnetApp:
    """ASGI application serving one :class:`Chain`.

    :param chain: the chain to serve.
    """

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.rpc = Rpc(chain)
        self.batcher = SendBatcher(chain)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method == "GET" and scope["path"] == "/health":
            await _respond(send, 200, b"ok", _TEXT_HEADERS)
            return
        if method != "POST":
            await _respond(send, 405, b"Method Not Allowed", _TEXT_HEADERS)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_REQUEST_BODY_SIZE:
                await _respond(send, 413, b"Payload Too Large", _TEXT_HEADERS)
                return
            if not message.get("more_body", False):
                break
        faults = self.chain.faults
        if faults.http_enabled and b"localnet_" not in body:
            status = faults.http_status()
            if status == 429:
                await _respond(send, 429, b"Too Many Requests", _TEXT_HEADERS)
                return
            if status == 503:
                await _respond(send, 503, b"Service Unavailable", _TEXT_HEADERS)
                return
        await _respond(send, 200, await self.answer(body), _JSON_HEADERS)

    async def answer(self, body: bytes) -> bytes:
        """The JSON-RPC response body for ``body``; single ``sendTransaction`` calls go through
        the group-commit batcher, everything else is answered directly."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self.rpc.handle(body)
        if not (isinstance(request, dict) and request.get("method") == "sendTransaction"):
            return self.rpc.handle(body)
        request_id = request.get("id")
        try:
            request_id, _method, params = self.rpc.check_request(request)
            item = self.rpc.parse_send(params)
        except RpcError as error:
            return orjson.dumps(_error_response(request_id, error))
        result = await self.batcher.submit(item)
        if isinstance(result, RpcError):
            return orjson.dumps(_error_response(request_id, result))
        return orjson.dumps({"jsonrpc": "2.0", "result": str(result), "id": request_id})


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
