"""A stand-in for Twilio's Messages REST endpoint on 127.0.0.1 (an outside system, so a fake is fair):
answers from a script of ``(status, json)`` pairs and records every request."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Gateway:
    url: str
    script: list[tuple[int, dict]]
    requests: list[dict] = field(default_factory=list)


@contextmanager
def twilio_stand_in(script: list[tuple[int, dict]]) -> Iterator[Gateway]:
    """Serve ``script`` in order (the last answer repeats) until the block ends."""
    gateway = Gateway(url="", script=list(script))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
            auth = base64.b64decode(self.headers.get("Authorization", "Basic ").split(" ", 1)[1] or b"").decode()
            with lock:
                gateway.requests.append({"path": self.path, "auth": auth, "form": form})
                status, body = gateway.script.pop(0) if len(gateway.script) > 1 else gateway.script[0]
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()
