"""The one error family of Numpay (STYLE.md: "One ApplicationError family mapped to HTTP by one DRF
exception handler"). Services raise these; the API renders them as problem-details JSON
(RFC 9457) with a stable machine-readable ``code``; pages render ``message`` inline.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A refusal or failure that a user or client can act on.

    :param code: stable machine-readable code, e.g. ``"insufficient_funds"`` (snake_case, never reworded).
    :param message: a plain-words sentence for people; never contains secrets.
    :param status: the HTTP status the API answers with (4xx for refusals, 503 for an unavailable chain).
    :param extra: extra JSON-serialisable fields added to the problem details (e.g. ``{"field": "amount"}``).
    """

    status: int = 400

    def __init__(self, code: str, message: str, *, status: int | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.extra = extra or {}


class NotFoundError(ApplicationError):
    """The object does not exist or belongs to someone else (both are 404: no existence oracle)."""

    status = 404


class ConflictError(ApplicationError):
    """The request conflicts with current state (HTTP 409)."""

    status = 409


class UnprocessableError(ApplicationError):
    """Well-formed but cannot be processed, e.g. an Idempotency-Key reused with another body (HTTP 422)."""

    status = 422


class ChainUnavailableError(ApplicationError):
    """The Solana RPC endpoint could not be reached after retries (HTTP 503); safe to retry later."""

    status = 503

    def __init__(self, message: str = "The Solana network is not reachable right now. Please try again shortly."):
        super().__init__("chain_unavailable", message)


class ChainRequestError(ApplicationError):
    """The Solana RPC endpoint answered with a JSON-RPC error (terminal for this request).

    :param rpc_code: the JSON-RPC error code (e.g. -32002 preflight failure).
    """

    status = 502

    def __init__(self, message: str, *, rpc_code: int | None = None, data: Any = None):
        super().__init__("chain_request_failed", message)
        self.rpc_code = rpc_code
        self.data = data
