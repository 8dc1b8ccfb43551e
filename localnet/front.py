"""An HTTP front process of localnet (started by ``python -m localnet``, not by hand).

Usage: ``python -m localnet.front --listen-fd N --channel-fd M [--verify-signatures]``.

Runs uvicorn (httptools + uvloop when installed) on the listening socket inherited from the chain
process and forwards each request to it over the inherited socket pair (frame format in
:mod:`localnet.server`).  ``GET /health`` is forwarded too, so it answers ``ok`` only while the
chain answers.  Exits at once when the chain process closes the socket pair.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import os
import socket
import sys
from typing import Any

import orjson
import uvicorn

from localnet.chain import RpcError
from localnet.rpc import check_envelope, parse_send_params
from localnet.server import (
    CONTENT_JSON,
    FLAG_SIGNATURES_VERIFIED,
    FLAG_SKIP_PREFLIGHT,
    KIND_HEALTH,
    KIND_RPC,
    KIND_SEND,
    MAX_REQUEST_BODY_SIZE,
    REQUEST_HEADER,
    RESPONSE_HEADER,
    SEND_PREFIX,
)

_CONTENT_TYPES = {
    CONTENT_JSON: [(b"content-type", b"application/json")],
}
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


class FrontChannelProtocol(asyncio.Protocol):
    """Front end of the socket pair: sends request frames, resolves futures with answers."""

    def __init__(self) -> None:
        self.buffer = b""
        self.pending: dict[int, asyncio.Future[tuple[int, int, bytes]]] = {}
        self.ids = itertools.count(1)
        self.transport: asyncio.Transport | None = None
        self.outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]

    def request(self, kind: int, body: bytes) -> asyncio.Future[tuple[int, int, bytes]]:
        """Queue one request frame; the future yields ``(status, content kind, body)``.

        Frames queued during one event-loop turn go out in one write (fewer system calls, and the
        chain process receives them together, which it answers as one group).
        """
        request_id = next(self.ids) & 0xFFFFFFFF
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, int, bytes]] = loop.create_future()
        self.pending[request_id] = future
        if not self.outgoing:
            loop.call_soon(self._flush)
        self.outgoing.append(REQUEST_HEADER.pack(request_id, kind, len(body)) + body)
        return future

    def _flush(self) -> None:
        frames, self.outgoing = self.outgoing, []
        assert self.transport is not None  # noqa: S101 - set in connection_made
        self.transport.write(b"".join(frames))

    def data_received(self, data: bytes) -> None:
        """Resolve every complete answer frame."""
        buffer = self.buffer + data if self.buffer else data
        offset = 0
        size = RESPONSE_HEADER.size
        while len(buffer) - offset >= size:
            request_id, status, content, length = RESPONSE_HEADER.unpack_from(buffer, offset)
            end = offset + size + length
            if len(buffer) < end:
                break
            future = self.pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result((status, content, buffer[offset + size : end]))
            offset = end
        self.buffer = buffer[offset:]

    def connection_lost(self, exc: Exception | None) -> None:
        """The chain process is gone: leave immediately (no clean-up to do)."""
        os._exit(0)


class FrontApp:
    """ASGI application forwarding to the chain process.

    :param channel: the connected socket-pair protocol.
    :param verify_signatures: check ``sendTransaction`` signatures here, sparing the chain process
        that work (worth it when there are CPUs to spare).
    """

    def __init__(self, channel: FrontChannelProtocol, verify_signatures: bool) -> None:
        self.channel = channel
        self.verify_signatures = verify_signatures

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """ASGI entry point: ``GET /health`` and ``POST`` JSON-RPC."""
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method == "GET" and scope["path"] == "/health":
            status, content, body = await self.channel.request(KIND_HEALTH, b"")
        elif method == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > MAX_REQUEST_BODY_SIZE:
                    await _respond(send, 413, _TEXT, b"Payload Too Large")
                    return
                if not message.get("more_body", False):
                    break
            status, content, body = await self.channel.request(*_frame(body, self.verify_signatures))
        else:
            await _respond(send, 405, _TEXT, b"Method Not Allowed")
            return
        await _respond(send, status, _CONTENT_TYPES.get(content, _TEXT), body)


def _frame(body: bytes, verify_signatures: bool) -> tuple[int, bytes]:
    """The frame for a POST body: a pre-decoded ``sendTransaction`` (signatures checked here, on
    this process's CPU) when it is a single, well-formed one; otherwise the body as is (the chain
    process then answers it, errors included)."""
    if b"sendTransaction" not in body:
        return KIND_RPC, body
    try:
        request = orjson.loads(body)
        if not isinstance(request, dict) or request.get("method") != "sendTransaction":
            return KIND_RPC, body
        request_id, _method, params = check_envelope(request)
        raw, transaction, skip_preflight = parse_send_params(params)
        request_id_json = orjson.dumps(request_id)
    except (orjson.JSONDecodeError, RpcError):
        return KIND_RPC, body
    flags = FLAG_SKIP_PREFLIGHT if skip_preflight else 0
    if verify_signatures and all(transaction.verify_with_results()):
        flags |= FLAG_SIGNATURES_VERIFIED
    return KIND_SEND, SEND_PREFIX.pack(flags, len(request_id_json)) + request_id_json + raw


async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def serve(listen_fd: int, channel_fd: int, verify_signatures: bool) -> None:
    """Connect to the chain process and serve HTTP until stopped."""
    loop = asyncio.get_running_loop()
    channel_socket = socket.socket(fileno=channel_fd)
    _transport, channel = await loop.create_connection(FrontChannelProtocol, sock=channel_socket)
    listener = socket.socket(fileno=listen_fd)
    config = uvicorn.Config(
        FrontApp(channel, verify_signatures),
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        proxy_headers=False,
        server_header=False,
        date_header=False,
        backlog=2048,
    )
    await uvicorn.Server(config).serve(sockets=[listener])


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m localnet.front --listen-fd N --channel-fd M``."""
    parser = argparse.ArgumentParser(prog="python -m localnet.front")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--verify-signatures", action="store_true")
    args = parser.parse_args(argv)
    try:
        import uvloop  # noqa: PLC0415 - optional

        uvloop.run(serve(args.listen_fd, args.channel_fd, args.verify_signatures))
    except ImportError:
        asyncio.run(serve(args.listen_fd, args.channel_fd, args.verify_signatures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
