"""The synchronous chain client: JSON-RPC over one keep-alive ``httpx2.Client`` with solders' own
request and response types (see the package docstring for why this and not solana-py).

Method semantics follow the Solana RPC docs: https://solana.com/docs/rpc/http
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
import orjson
from django.conf import settings
from solders.account_decoder import UiAccountEncoding
from solders.commitment_config import CommitmentLevel
from solders.errors import SerdeJSONError
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.rpc.config import (
    RpcAccountInfoConfig,
    RpcContextConfig,
    RpcSendTransactionConfig,
    RpcSignaturesForAddressConfig,
    RpcSignatureStatusConfig,
    RpcTokenAccountsFilterMint,
    RpcTransactionConfig,
)
from solders.rpc.requests import (
    GetAccountInfo,
    GetBalance,
    GetBlockHeight,
    GetBlockTime,
    GetLatestBlockhash,
    GetMinimumBalanceForRentExemption,
    GetSignaturesForAddress,
    GetSignatureStatuses,
    GetTokenAccountsByOwner,
    GetTransaction,
    RequestAirdrop,
    SendRawTransaction,
)
from solders.rpc.responses import (
    GetAccountInfoResp,
    GetBalanceResp,
    GetBlockHeightResp,
    GetLatestBlockhashResp,
    GetMinimumBalanceForRentExemptionResp,
    GetTokenAccountsByOwnerResp,
    RequestAirdropResp,
    SendTransactionResp,
)
from solders.signature import Signature
from solders.transaction_status import UiTransactionEncoding

from numpay.core.errors import ChainRequestError, ChainUnavailableError

from .errors import chain_request_error
from .programs import TOKEN_ACCOUNT_AMOUNT_OFFSET
from .subscriptions import SignatureWatcher, websocket_url

logger = logging.getLogger(__name__)
R = TypeVar("R")

_COMMITMENTS = {
    "processed": CommitmentLevel.Processed,
    "confirmed": CommitmentLevel.Confirmed,
    "finalized": CommitmentLevel.Finalized,
}
_LEVELS = ("processed", "confirmed", "finalized")
#: HTTP statuses worth retrying: rate limited, and server-side failures (RFC 9110 section 15.6).
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
#: ``getBlockTime`` answers for a slot without a time: block not available, skipped, long-term storage miss.
_NO_BLOCK_TIME_CODES = frozenset({-32004, -32007, -32009})
#: Most ``getBlockTime`` requests sent in one JSON-RPC batch (:meth:`ChainClient.get_block_times`).
BLOCK_TIME_BATCH = 100


@dataclass(frozen=True)
class Blockhash:
    """A recent blockhash and the last block height at which a transaction using it can land."""

    blockhash: Hash
    last_valid_block_height: int


@dataclass(frozen=True)
class AccountInfo:
    """One account as ``getAccountInfo`` returns it: ``lamports``, ``owner`` (the owning program),
    ``executable`` (a program), ``data`` (raw bytes)."""

    lamports: int
    owner: Pubkey
    executable: bool
    data: bytes


@dataclass(frozen=True)
class SignatureStatus:
    """One ``getSignatureStatuses`` entry.

    :ivar slot: the slot the transaction was processed in.
    :ivar confirmation_status: ``"processed" | "confirmed" | "finalized"``.
    :ivar err: the transaction error as JSON (``None`` when it succeeded).
    """

    slot: int
    confirmation_status: str | None
    err: Any


class ChainClient:
    """A Solana JSON-RPC client with timeouts, bounded retries and typed send outcomes.

    Thread-safe (one ``httpx2.Client`` connection pool per process; a forked child, e.g. a Celery
    prefork worker, opens its own on first use).

    :param url: the RPC endpoint (``SOLANA_RPC_URL``): localnet, devnet, mainnet or a validator.
    :param commitment: default commitment for reads and preflight (``processed | confirmed | finalized``).
    :param timeout: seconds per HTTP request (connect, read, write and pool wait each).
    :param max_retries: retries of a transient failure (HTTP 429/5xx, timeout, connection error)
        before :class:`~numpay.core.errors.ChainUnavailableError`; backoff 50 ms doubling to 1 s.
    :param ws_url: the endpoint's websocket (PubSub) URL for :meth:`watch_signature`; ``None``: none
        (signatures are only polled).
    """

    def __init__(
        self,
        url: str,
        *,
        commitment: str = "confirmed",
        timeout: float = 10.0,
        max_retries: int = 4,
        ws_url: str | None = None,
    ):
        if commitment not in _COMMITMENTS:
            raise ValueError(f"unknown commitment {commitment!r}")
        self.url = url
        self.commitment = commitment
        self.timeout = timeout
        self.max_retries = max_retries
        self._level = _COMMITMENTS[commitment]
        self._context = RpcContextConfig(commitment=self._level)
        self._base64 = RpcAccountInfoConfig(encoding=UiAccountEncoding.Base64, commitment=self._level)
        self._lock = threading.Lock()
        self._http: httpx2.Client | None = None
        self._pid = 0
        self.ws_url = ws_url
        self._watcher = SignatureWatcher(ws_url, commitment) if ws_url else None
        self._rent: dict[int, int] = {}
        self._blockhash: tuple[float, Blockhash] | None = None

    # --- transport -----------------------------------------------------------------------------------
    def _client(self) -> httpx2.Client:
        pid = os.getpid()
        if self._http is None or self._pid != pid:
            with self._lock:
                if self._http is None or self._pid != pid:
                    self._http = httpx2.Client(
                        timeout=httpx2.Timeout(self.timeout),
                        headers={"Content-Type": "application/json"},
                        limits=httpx2.Limits(max_connections=32, max_keepalive_connections=32),
                    )
                    self._pid = pid
        return self._http

    def close(self) -> None:
        """Close this process's connections (a later call opens new ones)."""
        with self._lock:
            if self._http is not None and self._pid == os.getpid():
                self._http.close()
            self._http = None

    def _post(self, body: str, method: str) -> bytes:
        """POST one JSON-RPC body; retry transient failures; return the response body.

        :raises ChainUnavailableError: still failing after ``max_retries`` retries, or a non-transient
            HTTP status (the endpoint is misconfigured or refuses us).
        """
        delay = 0.05
        for attempt in range(self.max_retries + 1):
            try:
                response = self._client().post(self.url, content=body)
            except httpx2.TransportError as exc:  # connect/read/write/pool timeouts, refused connections
                failure: str = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return response.content
                failure = f"HTTP {response.status_code}"
                if response.status_code not in _TRANSIENT_STATUS:
                    logger.warning("RPC %s failed: %s", method, failure)
                    raise ChainUnavailableError()
            if attempt == self.max_retries:
                logger.warning("RPC %s failed after %s attempts: %s", method, attempt + 1, failure)
                raise ChainUnavailableError()
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        raise ChainUnavailableError()  # pragma: no cover - the loop always returns or raises

    def _call(self, request: Any, response_type: type[R]) -> R:
        """Send a solders request, parse the answer into ``response_type``.

        :raises ChainRequestError: the endpoint answered with a JSON-RPC error (or a typed subclass,
            see :mod:`numpay.core.solana.errors`); terminal, never retried.
        """
        method = type(request).__name__
        raw = self._post(request.to_json(), method)
        try:
            parsed = response_type.from_json(raw.decode())  # type: ignore[attr-defined]
        except (SerdeJSONError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, response_type):
            return parsed
        # A JSON-RPC error (or an answer solders cannot read): code, message and data come from the
        # answer itself (solders' typed errors drop or rename parts of ``data``).
        raise _answer_error(raw, method)

    def _call_json(self, request: Any) -> Any:
        """Send a solders request and return the answer's ``result`` as plain JSON.

        Used where the validator's JSON is the product: transaction errors (solders' typed
        ``TransactionError`` serializes without its variant name, e.g. ``[0, 1]`` for
        ``{"InstructionError": [0, {"Custom": 1}]}``).

        :raises ChainRequestError: as :meth:`_call`.
        """
        method = type(request).__name__
        raw = self._post(request.to_json(), method)
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict) or "error" in answer or "result" not in answer:
            raise _answer_error(raw, method)
        return answer["result"]

    def is_at_commitment(self, status: SignatureStatus) -> bool:
        """Whether a landed transaction has reached this client's commitment level."""
        if status.confirmation_status not in _LEVELS:
            return False
        return _LEVELS.index(status.confirmation_status) >= _LEVELS.index(self.commitment)

    # --- reads -------------------------------------------------------------------------------------
    def get_balance(self, address: Pubkey) -> int:
        """SOL balance in lamports at the client's commitment (``getBalance``)."""
        return self._call(GetBalance(address, self._context), GetBalanceResp).value

    def get_balance_at(self, address: Pubkey) -> tuple[int, int]:
        """``(lamports, context slot)``: the balance includes every transaction of a slot <= the context
        slot (``getBalance`` ``context.slot``)."""
        response = self._call(GetBalance(address, self._context), GetBalanceResp)
        return response.value, response.context.slot

    def get_token_balance(self, owner: Pubkey, mint: Pubkey) -> int:
        """Sum of the owner's token accounts for ``mint``, in base units (``getTokenAccountsByOwner``)."""
        request = GetTokenAccountsByOwner(owner, RpcTokenAccountsFilterMint(mint), self._base64)
        total = 0
        for keyed in self._call(request, GetTokenAccountsByOwnerResp).value:
            total += _token_amount(bytes(keyed.account.data))
        return total

    def get_token_account_amount_at(self, token_account: Pubkey) -> tuple[int, int]:
        """``(base units, context slot)`` held by one SPL token account; 0 when it does not exist
        (``getAccountInfo``)."""
        response = self._call(GetAccountInfo(token_account, self._base64), GetAccountInfoResp)
        data = None if response.value is None else bytes(response.value.data)
        return (0 if data is None else _token_amount(data)), response.context.slot

    def get_account_info(self, address: Pubkey) -> AccountInfo | None:
        """The account at ``address`` (``getAccountInfo``, base64), or ``None`` if it does not exist."""
        value = self._call(GetAccountInfo(address, self._base64), GetAccountInfoResp).value
        if value is None:
            return None
        return AccountInfo(lamports=value.lamports, owner=value.owner, executable=value.executable,
                           data=bytes(value.data))

    def account_exists(self, address: Pubkey) -> bool:
        """Whether an account exists at ``address`` (``getAccountInfo`` is not null)."""
        return self._call(GetAccountInfo(address, self._base64), GetAccountInfoResp).value is not None

    def get_account_data(self, address: Pubkey) -> bytes | None:
        """The account's data bytes, or ``None`` if it does not exist."""
        value = self._call(GetAccountInfo(address, self._base64), GetAccountInfoResp).value
        return None if value is None else bytes(value.data)

    def minimum_balance_for_rent_exemption(self, size: int) -> int:
        """Lamports an account of ``size`` bytes needs to be rent exempt (``getMinimumBalanceForRentExemption``,
        asked once per size: the cluster's rent parameters do not change while it runs)."""
        cached = self._rent.get(size)
        if cached is not None:
            return cached
        request = GetMinimumBalanceForRentExemption(size, self._level)
        value = self._call(request, GetMinimumBalanceForRentExemptionResp).value
        self._rent[size] = value
        return value

    def latest_blockhash(self) -> Blockhash:
        """A recent blockhash with its ``lastValidBlockHeight`` (``getLatestBlockhash``)."""
        value = self._call(GetLatestBlockhash(self._context), GetLatestBlockhashResp).value
        blockhash = Blockhash(blockhash=value.blockhash, last_valid_block_height=value.last_valid_block_height)
        self._blockhash = (time.monotonic(), blockhash)
        return blockhash

    def recent_blockhash(self, *, max_age: float) -> Blockhash:
        """The blockhash this process fetched last if that was at most ``max_age`` seconds ago, else a new one
        (:meth:`latest_blockhash`). A blockhash lives about 150 blocks (60-90 s); re-using one for a second
        costs a second of that life and saves a round trip per payment.

        :param max_age: seconds; ``0`` always fetches.
        """
        fetched = self._blockhash
        if fetched is not None and max_age > 0 and time.monotonic() - fetched[0] <= max_age:
            return fetched[1]
        return self.latest_blockhash()

    def block_height(self) -> int:
        """The current block height at the client's commitment (``getBlockHeight``)."""
        return self._call(GetBlockHeight(self._context), GetBlockHeightResp).value

    def get_block_time(self, slot: int) -> int | None:
        """Unix time (seconds) the leader recorded for ``slot`` (``getBlockTime``); ``None`` when the node has no
        time for it (a skipped slot, a block it no longer keeps, or one not produced yet: codes -32004, -32007,
        -32009 of solana-rpc-client-api ``custom_error.rs``).

        Cached per slot across processes by :func:`numpay.core.solana.block_times.block_time_at`; call that.
        """
        try:
            return self._call_json(GetBlockTime(slot))
        except ChainRequestError as exc:
            if exc.rpc_code in _NO_BLOCK_TIME_CODES:
                return None
            raise

    def get_block_times(self, slots: Sequence[int]) -> dict[int, int | None]:
        """:meth:`get_block_time` of every slot in one JSON-RPC batch request (one HTTP round trip).

        :param slots: at most :data:`BLOCK_TIME_BATCH` distinct slots (callers cut longer lists).
        :returns: ``{slot: unix seconds, or None when the node has no time for it}`` for every slot asked.
        :raises ChainRequestError: an answer that is not a batch answer (e.g. an endpoint refusing batches), or
            any other JSON-RPC error for one of the slots (terminal, as :meth:`_call`).
        :raises ChainUnavailableError: the endpoint cannot be reached (transient).
        """
        slots = list(dict.fromkeys(slots))
        if not slots:
            return {}
        if len(slots) > BLOCK_TIME_BATCH:
            raise ValueError(f"at most {BLOCK_TIME_BATCH} slots per batch, got {len(slots)}")
        body = orjson.dumps([{"jsonrpc": "2.0", "id": number, "method": "getBlockTime", "params": [slot]}
                             for number, slot in enumerate(slots)])
        raw = self._post(body.decode(), "getBlockTime batch")
        try:
            answers = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answers = None
        if not isinstance(answers, list):
            raise _answer_error(raw, "getBlockTime batch")
        times: dict[int, int | None] = {}
        for answer in answers:
            number = answer.get("id") if isinstance(answer, dict) else None
            if not isinstance(number, int) or not 0 <= number < len(slots):
                raise _answer_error(orjson.dumps(answer), "getBlockTime batch")
            if isinstance(answer.get("error"), dict):
                error = chain_request_error(answer["error"])
                if error.rpc_code not in _NO_BLOCK_TIME_CODES:
                    raise error
                times[slots[number]] = None
            else:
                times[slots[number]] = answer.get("result")
        missing = [slot for slot in slots if slot not in times]
        if missing:
            raise ChainRequestError(f"The Solana RPC endpoint did not answer getBlockTime for slots {missing[:5]}")
        return times

    def signature_statuses(self, signatures: Sequence[Signature]) -> list[SignatureStatus | None]:
        """Statuses for up to 256 signatures, searching transaction history (``getSignatureStatuses``).

        :returns: one entry per signature, ``None`` when the cluster does not know it.
        """
        request = GetSignatureStatuses(list(signatures), RpcSignatureStatusConfig(search_transaction_history=True))
        return [
            None
            if status is None
            else SignatureStatus(slot=status["slot"], confirmation_status=status.get("confirmationStatus"),
                                 err=status.get("err"))
            for status in self._call_json(request)["value"]
        ]

    def signatures_for_address(
        self, address: Pubkey, *, until: Signature | None = None, before: Signature | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Newest-first signatures touching ``address`` (``getSignaturesForAddress``).

        :returns: dicts ``{signature: str, slot: int, err: JSON | None, block_time: int | None}``.
        """
        config = RpcSignaturesForAddressConfig(before=before, until=until, limit=limit, commitment=self._level)
        return [
            {
                "signature": item["signature"],
                "slot": item["slot"],
                "err": item.get("err"),
                "block_time": item.get("blockTime"),
            }
            for item in self._call_json(GetSignaturesForAddress(address, config))
        ]

    def get_transaction_json(self, signature: Signature) -> dict[str, Any] | None:
        """The transaction with meta as the validator's jsonParsed JSON (``getTransaction``), or ``None`` if
        unknown at the client's commitment."""
        config = RpcTransactionConfig(
            encoding=UiTransactionEncoding.JsonParsed, commitment=self._level, max_supported_transaction_version=0
        )
        return self._call_json(GetTransaction(signature, config))

    # --- writes ------------------------------------------------------------------------------------
    def send_raw_transaction(self, wire: bytes, *, skip_preflight: bool = False) -> Signature:
        """Send a signed transaction's wire bytes (``sendTransaction``, base64).

        Re-sending the same bytes is safe: the signature is the same and the cluster deduplicates.

        :raises AlreadyProcessed: the cluster already has this signature (a re-send of landed bytes).
        :raises BlockhashNotFound: the transaction's blockhash is unknown to the node; nothing ran.
        :raises PreflightFailure: the simulation failed; ``.err`` is the transaction error JSON.
        :raises ChainRequestError: any other JSON-RPC error (bad signature -32003, invalid params ...).
        :raises ChainUnavailableError: the endpoint stayed unreachable.
        """
        config = RpcSendTransactionConfig(skip_preflight=skip_preflight, preflight_commitment=self._level)
        return self._call(SendRawTransaction(wire, config), SendTransactionResp).value

    def request_airdrop(self, address: Pubkey, lamports: int) -> Signature:
        """Ask the cluster's faucet for lamports (``requestAirdrop``; localnet/devnet only)."""
        return self._call(RequestAirdrop(address, lamports), RequestAirdropResp).value

    def watch_signature(self, signature: Signature, on_landed: Callable[[Any, int], None]) -> bool:
        """Have the endpoint push ``signature``'s outcome (``signatureSubscribe`` at the client's
        commitment): ``on_landed(err, slot)`` is called on another thread once it is reached (``err``:
        the transaction error JSON or ``None``). Never blocks, never raises; see
        :mod:`.subscriptions` — a push that never comes is the caller's polling's business.

        :returns: whether it was asked (``False``: no websocket configured, or found unreachable
            recently).
        """
        if self._watcher is None:
            return False
        return self._watcher.watch(signature, on_landed)

    def wait_for_confirmation(self, signature: Signature, *, timeout: float = 30.0) -> SignatureStatus:
        """Poll ``getSignatureStatuses`` until the signature is at least ``confirmed``.

        For short administrative flows (bootstrap, faucet); payments use the Celery confirmation job.

        :raises ChainRequestError: the transaction failed on chain.
        :raises ChainUnavailableError: not confirmed within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            status = self.signature_statuses([signature])[0]
            if status is not None:
                if status.err is not None:
                    raise ChainRequestError(f"Transaction failed on chain: {status.err}", data=status.err)
                if status.confirmation_status in ("confirmed", "finalized"):
                    return status
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        raise ChainUnavailableError("The transaction was not confirmed in time.")


def _answer_error(raw: bytes, method: str) -> ChainRequestError:
    """The exception for an answer that is not a result: its JSON-RPC ``error`` object mapped by
    :func:`~numpay.core.solana.errors.chain_request_error`, or "unreadable" when it has none."""
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return chain_request_error(answer["error"])
    return ChainRequestError(f"Unreadable {method} answer from the Solana RPC endpoint: {raw[:200]!r}")


def _token_amount(data: bytes) -> int:
    """The ``amount`` of an SPL token account's data; 0 if the data is too short to be one."""
    end = TOKEN_ACCOUNT_AMOUNT_OFFSET + 8
    return int.from_bytes(data[TOKEN_ACCOUNT_AMOUNT_OFFSET:end], "little") if len(data) >= end else 0


@functools.lru_cache(maxsize=8)
def _client_for(url: str, commitment: str, timeout: float, max_retries: int, ws_url: str | None) -> ChainClient:
    return ChainClient(url, commitment=commitment, timeout=timeout, max_retries=max_retries, ws_url=ws_url)


def configured_websocket_url(rpc_url: str, setting: str) -> str | None:
    """``SOLANA_WS_URL`` resolved: empty = derived from the RPC URL (:func:`.subscriptions.websocket_url`),
    ``none`` = no websocket (poll only), else the URL as given."""
    if not setting:
        return websocket_url(rpc_url)
    if setting.lower() == "none":
        return None
    return setting


def get_chain_client() -> ChainClient:
    """The process-wide chain client for ``settings.SOLANA_RPC_URL`` (built once per URL)."""
    return _client_for(
        settings.SOLANA_RPC_URL,
        settings.SOLANA_COMMITMENT,
        settings.SOLANA_RPC_TIMEOUT_SECONDS,
        settings.SOLANA_RPC_MAX_RETRIES,
        configured_websocket_url(settings.SOLANA_RPC_URL, settings.SOLANA_WS_URL),
    )
