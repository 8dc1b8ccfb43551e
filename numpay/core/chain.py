"""The one chain client (DESIGN.md "The chain client"). Nothing else imports solana-py's RPC client.

It owns commitment levels, the HTTP timeout, retry of transient RPC failures (HTTP 429 / 5xx, timeouts,
connection errors) with exponential backoff, blockhash fetches with ``last_valid_block_height``,
``getSignatureStatuses``, balances and token accounts. JSON-RPC errors (the endpoint answered, and said
no) are terminal and raised as :class:`~numpay.core.errors.ChainRequestError`; an endpoint that stays
unreachable raises :class:`~numpay.core.errors.ChainUnavailableError`.

Method semantics follow the Solana RPC docs: https://solana.com/docs/rpc/http
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
from django.conf import settings
from solana.exceptions import SolanaRpcException
from solana.rpc.api import Client
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException
from solana.rpc.models import TokenAccountOpts, TxOpts
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature

from .errors import ChainRequestError, ChainUnavailableError

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: JSON-RPC server error "Transaction simulation failed" (solana-rpc-client-api custom_error.rs).
PREFLIGHT_FAILURE_CODE = -32002

#: JSON-RPC codes of solders' typed errors that carry no ``code`` attribute (JSON-RPC 2.0 spec, and
#: solana-rpc-client-api custom_error.rs for the server errors).
_RPC_ERROR_CODES = {
    "InvalidParamsMessage": -32602,
    "MethodNotFoundMessage": -32601,
    "InvalidRequestMessage": -32600,
    "ParseErrorMessage": -32700,
    "InternalErrorMessage": -32603,
    "SendTransactionPreflightFailureMessage": PREFLIGHT_FAILURE_CODE,
}

#: SPL Token account layout: mint (32) | owner (32) | amount (u64 LE) ... (https://spl.solana.com/token)
TOKEN_ACCOUNT_AMOUNT_OFFSET = 64


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


def _is_transient(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    if isinstance(cause, httpx2.HTTPStatusError):
        code = cause.response.status_code
        return code == 429 or code >= 500
    return isinstance(cause, httpx2.TransportError | TimeoutError | ConnectionError)


class ChainClient:
    """A Solana JSON-RPC client with timeouts and bounded retries.

    :param url: the RPC endpoint (``SOLANA_RPC_URL``): localnet, devnet, mainnet or a validator.
    :param commitment: default commitment for reads (``processed | confirmed | finalized``).
    :param timeout: seconds per HTTP request.
    :param max_retries: retries of a transient failure before :class:`ChainUnavailableError`.
    """

    def __init__(self, url: str, *, commitment: str = "confirmed", timeout: float = 10.0, max_retries: int = 4):
        self.url = url
        self.commitment = Commitment(commitment)
        self.max_retries = max_retries
        self._client = Client(url, commitment=self.commitment, timeout=timeout)

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        delay = 0.05
        for attempt in range(self.max_retries + 1):
            try:
                return fn(*args, **kwargs)
            except SolanaRpcException as exc:
                if not _is_transient(exc) or attempt == self.max_retries:
                    logger.warning("RPC %s failed: %s", getattr(fn, "__name__", fn), exc.__cause__ or exc)
                    raise ChainUnavailableError() from exc
            except RPCException as exc:
                error = exc.args[0] if exc.args else exc
                message = getattr(error, "message", str(error))
                data = getattr(error, "data", None)
                code = getattr(error, "code", None)
                if code is None:
                    code = _RPC_ERROR_CODES.get(type(error).__name__)
                raise ChainRequestError(str(message), rpc_code=code,
                                        data=_error_json(data) if data is not None else None) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        raise ChainUnavailableError()  # pragma: no cover - the loop always returns or raises

    def is_at_commitment(self, status: SignatureStatus) -> bool:
        """Whether a landed transaction has reached this client's commitment level."""
        levels = ("processed", "confirmed", "finalized")
        if status.confirmation_status not in levels:
            return False
        return levels.index(status.confirmation_status) >= levels.index(str(self.commitment))

    # --- reads -------------------------------------------------------------------------------------
    def get_balance(self, address: Pubkey) -> int:
        """SOL balance in lamports at the client's commitment (``getBalance``)."""
        return self._call(self._client.get_balance, address).value

    def get_token_balance(self, owner: Pubkey, mint: Pubkey) -> int:
        """Sum of the owner's token accounts for ``mint``, in base units (``getTokenAccountsByOwner``)."""
        response = self._call(
            self._client.get_token_accounts_by_owner, owner, TokenAccountOpts(mint=mint, encoding="base64")
        )
        total = 0
        for keyed in response.value:
            data = bytes(keyed.account.data)
            total += int.from_bytes(data[TOKEN_ACCOUNT_AMOUNT_OFFSET : TOKEN_ACCOUNT_AMOUNT_OFFSET + 8], "little")
        return total

    def get_balance_at(self, address: Pubkey) -> tuple[int, int]:
        """``(lamports, context slot)``: the balance includes every transaction of a slot <= the context
        slot (``getBalance`` ``context.slot``)."""
        response = self._call(self._client.get_balance, address)
        return response.value, response.context.slot

    def get_token_account_amount_at(self, token_account: Pubkey) -> tuple[int, int]:
        """``(base units, context slot)`` held by one SPL token account; 0 when it does not exist
        (``getAccountInfo``)."""
        response = self._call(self._client.get_account_info, token_account)
        data = None if response.value is None else bytes(response.value.data)
        if data is None or len(data) < TOKEN_ACCOUNT_AMOUNT_OFFSET + 8:
            return 0, response.context.slot
        amount = int.from_bytes(data[TOKEN_ACCOUNT_AMOUNT_OFFSET : TOKEN_ACCOUNT_AMOUNT_OFFSET + 8], "little")
        return amount, response.context.slot

    def get_account_info(self, address: Pubkey) -> AccountInfo | None:
        """The account at ``address`` (``getAccountInfo``, base64), or ``None`` if it does not exist."""
        value = self._call(self._client.get_account_info, address).value
        if value is None:
            return None
        return AccountInfo(lamports=value.lamports, owner=value.owner, executable=value.executable,
                           data=bytes(value.data))

    def account_exists(self, address: Pubkey) -> bool:
        """Whether an account exists at ``address`` (``getAccountInfo`` is not null)."""
        return self._call(self._client.get_account_info, address).value is not None

    def get_account_data(self, address: Pubkey) -> bytes | None:
        """The account's data bytes, or ``None`` if it does not exist."""
        value = self._call(self._client.get_account_info, address).value
        return None if value is None else bytes(value.data)

    def minimum_balance_for_rent_exemption(self, size: int) -> int:
        """Lamports an account of ``size`` bytes needs to be rent exempt."""
        return self._call(self._client.get_minimum_balance_for_rent_exemption, size).value

    def latest_blockhash(self) -> Blockhash:
        """A recent blockhash with its ``lastValidBlockHeight`` (``getLatestBlockhash``)."""
        value = self._call(self._client.get_latest_blockhash).value
        return Blockhash(blockhash=value.blockhash, last_valid_block_height=value.last_valid_block_height)

    def block_height(self) -> int:
        """The current block height at the client's commitment (``getBlockHeight``)."""
        return self._call(self._client.get_block_height).value

    def signature_statuses(self, signatures: Sequence[Signature]) -> list[SignatureStatus | None]:
        """Statuses for up to 256 signatures, searching transaction history (``getSignatureStatuses``).

        :returns: one entry per signature, ``None`` when the cluster does not know it.
        """
        response = self._call(self._client.get_signature_statuses, list(signatures), True)
        result: list[SignatureStatus | None] = []
        for status in response.value:
            if status is None:
                result.append(None)
                continue
            confirmation = str(status.confirmation_status).rsplit(".", 1)[-1].lower() if status.confirmation_status else None
            err = None
            if status.err is not None:
                err = _error_json(status.err)
            result.append(SignatureStatus(slot=status.slot, confirmation_status=confirmation, err=err))
        return result

    def signatures_for_address(
        self, address: Pubkey, *, until: Signature | None = None, before: Signature | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Newest-first signatures touching ``address`` (``getSignaturesForAddress``).

        :returns: dicts ``{signature: str, slot: int, err: Any, block_time: int | None}``.
        """
        response = self._call(
            self._client.get_signatures_for_address, address, before=before, until=until, limit=limit
        )
        return [
            {"signature": str(item.signature), "slot": item.slot, "err": item.err, "block_time": item.block_time}
            for item in response.value
        ]

    def get_transaction_json(self, signature: Signature) -> dict[str, Any] | None:
        """The transaction with meta as jsonParsed JSON (``getTransaction``), or ``None`` if unknown."""
        response = self._call(
            self._client.get_transaction, signature, "jsonParsed", max_supported_transaction_version=0
        )
        if response.value is None:
            return None
        import json

        return json.loads(response.value.to_json())

    # --- writes ------------------------------------------------------------------------------------
    def send_raw_transaction(self, wire: bytes, *, skip_preflight: bool = False) -> Signature:
        """Send a signed transaction's wire bytes (``sendTransaction``, base64).

        Re-sending the same bytes is safe: the signature is the same and the cluster deduplicates.

        :raises ChainRequestError: preflight failure, bad signature, "Blockhash not found", ...
        """
        opts = TxOpts(skip_preflight=skip_preflight, preflight_commitment=self.commitment, skip_confirmation=True)
        return self._call(self._client.send_raw_transaction, wire, opts).value

    def request_airdrop(self, address: Pubkey, lamports: int) -> Signature:
        """Ask the cluster's faucet for lamports (``requestAirdrop``; localnet/devnet only)."""
        return self._call(self._client.request_airdrop, address, lamports).value

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


def _error_json(err: Any) -> Any:
    import json

    try:
        return json.loads(err.to_json())
    except AttributeError:
        return str(err)


@functools.lru_cache(maxsize=8)
def _client_for(url: str, commitment: str, timeout: float, max_retries: int) -> ChainClient:
    return ChainClient(url, commitment=commitment, timeout=timeout, max_retries=max_retries)


def get_chain_client() -> ChainClient:
    """The process-wide chain client for ``settings.SOLANA_RPC_URL`` (built once per URL)."""
    return _client_for(
        settings.SOLANA_RPC_URL,
        settings.SOLANA_COMMITMENT,
        settings.SOLANA_RPC_TIMEOUT_SECONDS,
        settings.SOLANA_RPC_MAX_RETRIES,
    )
