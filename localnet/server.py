"""Request processing, and how the processes of a localnet talk to each other.

``python -m localnet`` runs several processes so that HTTP work and chain work use several CPUs:

* the **chain process** (the one started, whose pid you kill) owns the :class:`~localnet.chain.Chain`
  (LiteSVM, ledger, slot clock) and answers request *frames* arriving on one Unix socket pair per
  front process with :class:`ChainService`;
* the **front processes** (:mod:`localnet.front`, children; ``--http-workers``, default 2) run
  uvicorn (httptools + uvloop) on the shared listening socket and forward every HTTP request to the
  chain process as a frame.  A front exits as soon as the chain process goes away (its socket pair
  reaches end of file), so a ``kill -9`` of the chain process takes the whole localnet down.

Frames (little-endian): request ``id u32 | kind u8 | length u32 | body``, kind 0 = JSON-RPC body,
1 = health check, 2 = a ``sendTransaction`` the front already decoded and validated (body:
``flags u8 | id length u16 | id as JSON | wire transaction``; flags bit 0 = skipPreflight, bit 1 =
every signature verified by the front), which moves JSON, base64 and ed25519 work off the chain
process, as a validator's sigverify stage runs ahead of its banking stage; response
``id u32 | status u16 | content u8 | length u32 | body``, content 0 = JSON, 1 = plain text.

:class:`ChainService` applies the HTTP faults (429 / 503, except for ``localnet_*`` calls), then
answers JSON-RPC.  All single ``sendTransaction`` requests that arrive together are applied by one
:meth:`Chain.send_many` call — one lock acquisition and one SQLite commit for the group — and every
answer is written only after that commit, so an answered transaction is always durable.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from solders.transaction import VersionedTransaction

from localnet.chain import Chain, RpcError
from localnet.rpc import INTERNAL_ERROR, Rpc, error_response

REQUEST_HEADER = struct.Struct("<IBI")
RESPONSE_HEADER = struct.Struct("<IHBI")
KIND_RPC = 0
KIND_HEALTH = 1
KIND_SEND = 2
SEND_PREFIX = struct.Struct("<BH")
FLAG_SKIP_PREFLIGHT = 1
FLAG_SIGNATURES_VERIFIED = 2
CONTENT_JSON = 0
CONTENT_TEXT = 1

#: Largest request body accepted (bytes), like a validator's ``MAX_REQUEST_BODY_SIZE`` (50 KiB).
MAX_REQUEST_BODY_SIZE = 50 * 1024

Answer = tuple[int, int, bytes]

_TOO_MANY_REQUESTS: Answer = (429, CONTENT_TEXT, b"Too Many Requests")
_UNAVAILABLE: Answer = (503, CONTENT_TEXT, b"Service Unavailable")
_HEALTHY: Answer = (200, CONTENT_TEXT, b"ok")


class ChainService:
    """Answers request frames for one :class:`Chain` (transport independent).

    :param chain: the chain to serve.
    """

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.rpc = Rpc(chain)

    def answer_many(self, requests: Sequence[tuple[int, bytes]]) -> list[Answer]:
        """Answer ``(kind, body)`` requests that arrived together.

        :returns: per request ``(HTTP status, content kind, body)``.
        """
        answers: list[Answer | None] = [None] * len(requests)
        sends: list[tuple[int, Any, tuple[Any, ...]]] = []
        faults = self.chain.faults
        rpc = self.rpc
        for position, (kind, body) in enumerate(requests):
            if kind == KIND_HEALTH:
                answers[position] = _HEALTHY
                continue
            if faults.http_enabled and (kind == KIND_SEND or b"localnet_" not in body):
                status = faults.http_status()
                if status is not None:
                    answers[position] = _TOO_MANY_REQUESTS if status == 429 else _UNAVAILABLE
                    continue
            if kind == KIND_SEND:
                flags, id_length = SEND_PREFIX.unpack_from(body, 0)
                start = SEND_PREFIX.size + id_length
                raw = body[start:]
                item = (
                    raw,
                    VersionedTransaction.from_bytes(raw),
                    bool(flags & FLAG_SKIP_PREFLIGHT),
                    bool(flags & FLAG_SIGNATURES_VERIFIED),
                )
                sends.append((position, body[SEND_PREFIX.size : start], item))
                continue
            try:
                request = orjson.loads(body)
            except orjson.JSONDecodeError:
                answers[position] = (200, CONTENT_JSON, rpc.handle(body))
                continue
            if isinstance(request, dict) and request.get("method") == "sendTransaction":
                request_id = request.get("id")
                try:
                    request_id, _method, params = rpc.check_request(request)
                    sends.append((position, orjson.dumps(request_id), rpc.parse_send(params)))
                except RpcError as error:
                    answers[position] = (200, CONTENT_JSON, orjson.dumps(error_response(request_id, error)))
                continue
            answers[position] = (200, CONTENT_JSON, rpc.handle_parsed(request))
        if sends:
            try:
                outcomes: list[Any] = self.chain.send_many([item for _position, _id, item in sends])
            except Exception as error:  # noqa: BLE001 - every waiting request must get an answer
                outcomes = [RpcError(INTERNAL_ERROR, f"Internal error: {error}")] * len(sends)
            for (position, request_id, _item), outcome in zip(sends, outcomes, strict=True):
                if isinstance(outcome, RpcError):
                    payload = orjson.dumps(error_response(orjson.loads(request_id), outcome))
                else:
                    payload = b'{"jsonrpc":"2.0","result":"' + str(outcome).encode() + b'","id":' + request_id + b"}"
                answers[position] = (200, CONTENT_JSON, payload)
        return answers  # type: ignore[return-value]


class ChainChannelProtocol(asyncio.Protocol):
    """Chain-process end of the socket pair: decodes request frames, answers them in groups.

    :param service: the request processor.
    :param on_lost: called when the front process on the other end goes away.
    """

    def __init__(self, service: ChainService, on_lost: Callable[[], None]) -> None:
        self.service = service
        self.on_lost = on_lost
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Answer every complete frame received so far, in one write."""
        buffer = self.buffer + data if self.buffer else data
        offset = 0
        ids: list[int] = []
        requests: list[tuple[int, bytes]] = []
        size = REQUEST_HEADER.size
        while len(buffer) - offset >= size:
            request_id, kind, length = REQUEST_HEADER.unpack_from(buffer, offset)
            end = offset + size + length
            if len(buffer) < end:
                break
            ids.append(request_id)
            requests.append((kind, buffer[offset + size : end]))
            offset = end
        self.buffer = buffer[offset:]
        if requests:
            try:
                answers = self.service.answer_many(requests)
            except Exception:  # noqa: BLE001 - a bug must not cut the channel; log and answer 500
                logging.getLogger(__name__).exception("failed to answer %d requests", len(requests))
                answers = [(500, CONTENT_TEXT, b"Internal Server Error")] * len(requests)
            pack = RESPONSE_HEADER.pack
            assert self.transport is not None  # noqa: S101 - set in connection_made
            self.transport.write(
                b"".join(
                    pack(request_id, status, content, len(body)) + body
                    for request_id, (status, content, body) in zip(ids, answers, strict=True)
                )
            )

    def connection_lost(self, exc: Exception | None) -> None:
        """The front process is gone: stop."""
        self.on_lost()
