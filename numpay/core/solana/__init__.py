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
any more. Two ways were measured against a localnet (``bench/chain_client.py``, 2 shared cores,
HTTP/1.1 keep-alive, one caller thread; calls per second, higher is better):

==================================================  ==================  ========================  ===============
way                                                 getLatestBlockhash  getSignatureStatuses(256)  sendTransaction
==================================================  ==================  ========================  ===============
this client: httpx2.Client + solders requests/resp  BENCH_DIRECT_BH     BENCH_DIRECT_SS           BENCH_DIRECT_TX
solana-py AsyncClient behind a sync facade          BENCH_FACADE_BH     BENCH_FACADE_SS           BENCH_FACADE_TX
==================================================  ==================  ========================  ===============

The direct client is chosen: BENCH_REASON It is also simpler to
keep correct in our processes: Django views and Celery tasks are synchronous, and a facade needs an
event loop thread per process (re-created after a fork in prefork workers) and a hop to it on every
call. It answers with the validator's own error JSON (solana-py raises ``RPCException`` around solders'
typed errors, whose ``TransactionError`` serializes without its variant name).

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
