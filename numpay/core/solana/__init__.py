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
* :mod:`.subscriptions`: :class:`~.subscriptions.SignatureWatcher`, confirmations pushed over the endpoint's
  websocket (``signatureSubscribe``), behind :meth:`ChainClient.watch_signature`.

How it talks to the cluster, and why (issue 7, item 4)
------------------------------------------------------
solana-py 0.41 (needed for solders 0.29, whose LiteSVM runs SBPF v3) has no synchronous ``Client``
any more. Two ways were measured against a localnet (``bench/chain_client.py``, 2026-12-01: 2 CPUs
shared with other agents' work, keep-alive HTTP/1.1, 3 rounds x 3 s, best round; calls/s, and in
brackets the client's own CPU per call in µs, which the machine's load blurs much less):

=======  ======  ==================  =========================  ===============
threads  way     getLatestBlockhash  getSignatureStatuses(256)  sendTransaction
=======  ======  ==================  =========================  ===============
1        direct  1664 (419)          318 (760)                  1158 (427)
1        facade  1089 (802)          258 (1451)                 694 (920)
8        direct  1555 (503)          442 (864)                  1283 (617)
8        facade  1039 (912)          382 (1603)                 786 (956)
=======  ======  ==================  =========================  ===============

``direct`` is this client: ``httpx2.Client`` + solders' request types (``solders.rpc.requests``) and
response types (``solders.rpc.responses``). ``facade`` is solana-py's ``AsyncClient`` behind a sync
wrapper (an event loop on a daemon thread, ``run_coroutine_threadsafe`` per call), the only way to
keep using solana-py from Django views and Celery tasks.

The direct client is chosen: 1.5-1.7x the calls/s on ``getLatestBlockhash`` and ``sendTransaction``,
1.2x on ``getSignatureStatuses`` of 256 (bound more by the server's work), at one and at eight caller
threads, for about half the client CPU per call (CPU is what a busy gunicorn / Celery process runs
out of); the facade pays a hop to the loop thread and back plus solana-py's own per-call layers. It
is also simpler to keep correct in our processes: callers are synchronous, and a facade needs an
event-loop thread per process (re-created after a fork in Celery's prefork workers) on the path of
every call. Finally it answers with the validator's own error JSON: solana-py raises
``RPCException`` around solders' typed errors, and solders serializes a ``TransactionError`` without
its variant name (``{"InstructionError": [0, {"Custom": 1}]}`` comes out as ``[0, 1]``), so
``getSignatureStatuses``, ``getSignaturesForAddress`` and ``getTransaction`` are read as plain JSON.

Pushed confirmations (issue 12, item 4)
---------------------------------------
:meth:`ChainClient.watch_signature` asks the endpoint's websocket (``SOLANA_WS_URL``, default derived from
``SOLANA_RPC_URL``; :mod:`.subscriptions`) for ``signatureSubscribe``; the outbox uses it after each send and
keeps its batched poller as the fallback and the beat sweep as the safety net. ``bench/payments.py
--clients 8 --duration 10 --rounds 1`` (2026-12-01, 2 CPUs shared with other agents, load average 6-15),
same code with the push on and off (``SOLANA_WS_URL=none``), alternating: created -> confirmed p50 / p99
0.95 / 1.78 s and 0.83 / 1.45 s with the push, 1.58 / 2.50 s and 3.12 / 5.96 s without (main before this
change: 3.61 / 6.34 s); in the paced (open-loop, ~3.5 payments/s) phase 0.32 / 0.56 s and 0.35 / 0.58 s with
the push, 0.48 / 0.90 s and 0.59 / 0.90 s without (main: 0.48 / 0.93 s).

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
