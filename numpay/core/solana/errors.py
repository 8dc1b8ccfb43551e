"""Typed outcomes of a refused ``sendTransaction``, mapped from the JSON-RPC error code and data.

The error object of a validator (solana-rpc-client-api ``custom_error.rs``): code ``-32002``
``SendTransactionPreflightFailure`` carries the simulation result as ``data`` with the transaction
error in ``data.err`` (JSON of ``TransactionError``, e.g. ``"AlreadyProcessed"``,
``"BlockhashNotFound"``, ``{"InstructionError": [0, {"Custom": 1}]}``). Matching on the code and
``data.err`` instead of the message text survives rewording across validator versions.

All three are :class:`~numpay.core.errors.ChainRequestError` subclasses (code that handles a terminal
RPC error in general keeps working) and carry ``.err``; they are siblings: an ``except PreflightFailure``
does not catch the other two.
"""

from __future__ import annotations

from typing import Any

from numpay.core.errors import ChainRequestError

#: ``SendTransactionPreflightFailure``: "Transaction simulation failed: ...".
PREFLIGHT_FAILURE_CODE = -32002


class _PreflightOutcome(ChainRequestError):
    """A -32002 answer with a transaction error; ``.err`` is that error's JSON (``data.err``)."""

    def __init__(self, message: str, *, rpc_code: int | None = None, data: Any = None):
        super().__init__(message, rpc_code=rpc_code, data=data)
        self.err: Any = data.get("err") if isinstance(data, dict) else None


class AlreadyProcessed(_PreflightOutcome):
    """The cluster already processed a transaction with this signature: the bytes were sent before.

    A re-send of stored bytes that meets this has nothing more to do than wait for the status.
    """


class BlockhashNotFound(_PreflightOutcome):
    """The transaction's recent blockhash is unknown to the node (expired, or from a node ahead of it).

    Nothing was executed; whether an earlier send landed is told by the signature's status.
    """


class PreflightFailure(_PreflightOutcome):
    """The preflight simulation failed with any other transaction error: nothing was sent.

    :ivar err: the transaction error JSON, e.g. ``{"InstructionError": [0, {"Custom": 1}]}``.
    """


def chain_request_error(error: Any) -> ChainRequestError:
    """The exception for one JSON-RPC ``error`` object ``{"code", "message", "data"?}``.

    :returns: :class:`AlreadyProcessed`, :class:`BlockhashNotFound` or :class:`PreflightFailure` for a
        -32002 with that ``data.err``; a plain :class:`ChainRequestError` for anything else.
    """
    if not isinstance(error, dict):
        return ChainRequestError(str(error))
    code = error.get("code")
    message = str(error.get("message", "JSON-RPC error"))
    data = error.get("data")
    if code == PREFLIGHT_FAILURE_CODE and isinstance(data, dict) and data.get("err") is not None:
        err = data["err"]
        if err == "AlreadyProcessed":
            return AlreadyProcessed(message, rpc_code=code, data=data)
        if err == "BlockhashNotFound":
            return BlockhashNotFound(message, rpc_code=code, data=data)
        return PreflightFailure(message, rpc_code=code, data=data)
    return ChainRequestError(message, rpc_code=code if isinstance(code, int) else None, data=data)
