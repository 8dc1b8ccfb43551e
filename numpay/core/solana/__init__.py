"""The one chain client (DESIGN.md "The chain client"), Solana program ids and typed send outcomes.

Nothing else in the project talks JSON-RPC to a cluster or imports solana-py's RPC client.

* :mod:`.client`: :class:`ChainClient` / :func:`get_chain_client`: commitment levels, the HTTP timeout,
  retry of transient failures (HTTP 429 / 5xx, timeouts, connection errors) with exponential backoff,
  blockhashes with ``last_valid_block_height``, ``getSignatureStatuses``, balances, token accounts.
  JSON-RPC errors (the endpoint answered, and said no) are terminal: :class:`ChainRequestError` or one
  of the typed outcomes below; an endpoint that stays unreachable raises :class:`ChainUnavailableError`.
* :mod:`.errors`: :class:`AlreadyProcessed`, :class:`BlockhashNotFound`, :class:`PreflightFailure`
  (``.err``: the transaction error JSON), mapped from the JSON-RPC code and ``data.err``.
* :mod:`.programs`: program ids, account sizes and layouts, decimals.

How it talks to the cluster, and why (issue 7, item 4)
------------------------------------------------------
solana-py 0.41 (needed for solders 0.29, whose LiteSVM runs SBPF v3) has no synchronous ``Client``
any more. Two ways were measured against a localnet (``bench/chain_client.py``: 2 shared CPUs with
other suites running, keep-alive HTTP/1.1, 3 rounds x 3 s, best round; calls/s, and in brackets the
client's own CPU per call in µs, which the machine's load blurs much less):

=======  ======  ==================  =========================  ===============
threads  way     getLatestBlockhash  getSignatureStatuses(256)  sendTransaction
=======  ======  ==================  =========================  ===============
1        direct  BENCH_D1
1        facade  BENCH_F1
8        direct  BENCH_D8
8        facade  BENCH_F8
=======  ======  ==================  =========================  ===============

``direct`` is this client: ``httpx2.Client`` + solders' request types (``solders.rpc.requests``) and
response types (``solders.rpc.responses``). ``facade`` is solana-py's ``AsyncClient`` behind a sync
wrapper (an event loop on a daemon thread, ``run_coroutine_threadsafe`` per call), the only way to
keep using solana-py from Django views and Celery tasks.

The direct client is chosen. It costs about half the client CPU per call for the small, frequent
calls (blockhash, send) and is faster at every concurrency there; ``getSignatureStatuses`` of 256 is
bound by the server's work, and the direct client still spends less CPU on it. It is also simpler
to keep correct in our processes: callers are synchronous, and a facade needs an event-loop thread
per process (re-created after a fork in Celery's prefork workers) plus a cross-thread hop on every
call. Finally it answers with the validator's own error JSON: solana-py raises ``RPCException``
around solders' typed errors, and solders serializes a ``TransactionError`` without its variant
name (``{"InstructionError": [0, {"Custom": 1}]}`` comes out as ``[0, 1]``), so
``getSignatureStatuses``, ``getSignaturesForAddress`` and ``getTransaction`` are read as plain JSON.

The HTTP client is ``httpx2`` (pydantic's maintained continuation of httpx, the one solana-py 0.41
itself depends on), not ``httpx`` 0.28.1, which has had no release since December 2024.
"""

from __future__ import annotations

from numpay.core.errors import ChainRequestError, ChainUnavailableError

from .client import AccountInfo, Blockhash, ChainClient, SignatureStatus, get_chain_client
from .errors import PREFLIGHT_FAILURE_CODE, AlreadyProcessed, BlockhashNotFound, PreflightFailure

__all__ = [
    "PREFLIGHT_FAILURE_CODE",
    "AccountInfo",
    "AlreadyProcessed",
    "Blockhash",
    "BlockhashNotFound",
    "ChainClient",
    "ChainRequestError",
    "ChainUnavailableError",
    "PreflightFailure",
    "SignatureStatus",
    "get_chain_client",
]
