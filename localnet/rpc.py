"""JSON-RPC 2.0 dispatch of the Solana RPC methods (https://solana.com/docs/rpc/http).

:class:`Rpc` turns a request body (bytes) into a response body.  Every method is a function of
``(params list) -> result`` that raises :class:`~localnet.chain.RpcError` for JSON-RPC errors;
result shapes follow the Solana docs, including the ``{"context": {"slot", "apiVersion"},
"value"}`` wrapper where the docs have one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson
from solders.hash import Hash
from solders.message import MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from localnet import API_VERSION, FEATURE_SET, SOLANA_CORE_VERSION
from localnet.chain import (
    COMMITMENTS,
    CONFIRMED,
    FINALIZED,
    MAX_PROCESSING_AGE,
    PROCESSED,
    SLOTS_PER_EPOCH,
    Chain,
    RpcError,
    TransactionRejected,
    message_account_keys,
    simulation_data,
    stored_inner_instructions,
    transaction_fee,
)
from localnet.codec import (
    MAX_BASE58_SIZE,
    MAX_BASE64_SIZE,
    PACKET_DATA_SIZE,
    TOKEN_PROGRAM_IDS,
    b58decode,
    b58encode,
    encode_account,
    parse_mint,
    parse_token_account,
    ui_amount,
)
from localnet.instructions import parse_instruction

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
BLOCK_NOT_AVAILABLE = -32004
MIN_CONTEXT_SLOT_NOT_REACHED = -32016
UNSUPPORTED_TRANSACTION_VERSION = -32015
#: Largest slot range of ``getBlocks`` / limit of ``getBlocksWithLimit`` (``MAX_GET_CONFIRMED_BLOCKS_RANGE``).
MAX_GET_BLOCKS_RANGE = 500_000
#: The stake of localnet's single validator (lamports), reported by ``getBlockCommitment``.
TOTAL_STAKE = 1_000_000_000_000

_COMMITMENT_ALIASES = {
    "processed": PROCESSED,
    "recent": PROCESSED,
    "single": CONFIRMED,
    "singleGossip": CONFIRMED,
    "confirmed": CONFIRMED,
    "finalized": FINALIZED,
    "max": FINALIZED,
    "root": FINALIZED,
}
_TRANSACTION_TYPE = "solana_transaction::versioned::VersionedTransaction"
_ACCOUNT_ENCODINGS = ("base58", "base64", "jsonParsed", "binary")


def invalid_params(detail: str) -> RpcError:
    """-32602 ``Invalid params: <detail>``."""
    return RpcError(INVALID_PARAMS, f"Invalid params: {detail}")


def invalid_param(detail: str) -> RpcError:
    """-32602 ``Invalid param: <detail>`` (a validator's wording for a bad value)."""
    return RpcError(INVALID_PARAMS, f"Invalid param: {detail}")


def _param(params: list[Any], index: int, name: str) -> Any:
    if len(params) <= index:
        raise invalid_params(f"missing field `{name}`")
    return params[index]


def _config(params: list[Any], index: int) -> dict[str, Any]:
    if len(params) <= index or params[index] is None:
        return {}
    config = params[index]
    if not isinstance(config, dict):
        raise invalid_params(f"invalid type: expected a config object, got {type(config).__name__}")
    return config


def _pubkey(value: Any) -> Pubkey:
    if not isinstance(value, str):
        raise invalid_params(f"invalid type: {type(value).__name__}, expected a string")
    try:
        raw = b58decode(value)
    except ValueError:
        raise invalid_param("Invalid") from None
    if len(raw) != 32:
        raise invalid_param("WrongSize")
    return Pubkey.from_bytes(raw)


def _signature(value: Any) -> Signature:
    if not isinstance(value, str):
        raise invalid_params(f"invalid type: {type(value).__name__}, expected a string")
    try:
        raw = b58decode(value)
    except ValueError:
        raise invalid_param("Invalid") from None
    if len(raw) != 64:
        raise invalid_param("Invalid")
    return Signature.from_bytes(raw)


def _commitment(config: dict[str, Any], default: str = FINALIZED) -> str:
    value = config.get("commitment")
    if value is None:
        return default
    try:
        return _COMMITMENT_ALIASES[value]
    except (KeyError, TypeError):
        raise invalid_params(f"unknown variant `{value}`, expected one of `processed`, `confirmed`, `finalized`") from None


def _int(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid_params(f"invalid value for `{name}`: expected an integer >= {minimum}")
    return value


def _bool(config: dict[str, Any], name: str, default: bool = False) -> bool:
    value = config.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_params(f"invalid type for `{name}`: expected a boolean")
    return value


def _account_encoding(config: dict[str, Any], default: str = "binary") -> str:
    encoding = config.get("encoding") or default
    if encoding == "base64+zstd":
        raise invalid_params("base64+zstd encoding is not supported by localnet")
    if encoding not in _ACCOUNT_ENCODINGS:
        raise invalid_params(
            f"unknown variant `{encoding}`, expected one of `binary`, `base58`, `base64`, `jsonParsed`, `base64+zstd`"
        )
    return encoding


def decode_transaction(text: Any, encoding: str) -> tuple[bytes, VersionedTransaction]:
    """Decode a wire transaction as ``sendTransaction`` / ``simulateTransaction`` receive it.

    :param text: base58 or base64 text.
    :param encoding: ``base58`` or ``base64``.
    :returns: ``(raw bytes, transaction)``.
    :raises RpcError: -32602 with a validator's wording on bad encoding, size, bytes or layout.
    """
    if not isinstance(text, str):
        raise invalid_params("invalid type: expected a string transaction")
    if encoding == "base58":
        if len(text) > MAX_BASE58_SIZE:
            raise invalid_params(
                f"base58 encoded {_TRANSACTION_TYPE} too large: {len(text)} bytes "
                f"(max: encoded/raw {MAX_BASE58_SIZE}/{PACKET_DATA_SIZE})"
            )
        try:
            raw = b58decode(text)
        except ValueError as error:
            raise invalid_params(f"invalid base58 encoding: {error}") from None
    elif encoding == "base64":
        if len(text) > MAX_BASE64_SIZE:
            raise invalid_params(
                f"base64 encoded {_TRANSACTION_TYPE} too large: {len(text)} bytes "
                f"(max: encoded/raw {MAX_BASE64_SIZE}/{PACKET_DATA_SIZE})"
            )
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise invalid_params(f"invalid base64 encoding: {error}") from None
    else:
        raise invalid_params(f"unknown variant `{encoding}`, expected `base58` or `base64`")
    if len(raw) > PACKET_DATA_SIZE:
        raise invalid_params(f"decoded {_TRANSACTION_TYPE} too large: {len(raw)} bytes (max: {PACKET_DATA_SIZE} bytes)")
    try:
        transaction = VersionedTransaction.from_bytes(raw)
    except Exception as error:  # noqa: BLE001 - solders raises its own error types
        raise invalid_params(f"failed to deserialize {_TRANSACTION_TYPE}: {error}") from None
    try:
        transaction.sanitize()
    except Exception as error:  # noqa: BLE001
        raise invalid_params(f"invalid transaction: {error}") from None
    if len(transaction.signatures) != transaction.message.header.num_required_signatures:
        raise invalid_params("invalid transaction: Transaction failed to sanitize accounts offsets correctly")
    return raw, transaction


def parse_send_params(params: list[Any]) -> tuple[bytes, VersionedTransaction, bool]:
    """Validate ``sendTransaction`` params (needs no chain, so the HTTP front process can do it).

    :returns: ``(raw, transaction, skip_preflight)``.
    :raises RpcError: -32602 on bad params / encoding / bytes.
    """
    config = _config(params, 1)
    encoding = config.get("encoding") or "base58"
    raw, transaction = decode_transaction(_param(params, 0, "transaction"), encoding)
    _commitment({"commitment": config.get("preflightCommitment")})
    return raw, transaction, _bool(config, "skipPreflight")


def check_envelope(request: Any) -> tuple[Any, str, list[Any]]:
    """Validate a JSON-RPC request object's envelope (method existence is not checked).

    :returns: ``(id, method, params list)``.
    :raises RpcError: -32600 on a malformed envelope, -32602 when ``params`` is not an array.
    """
    if not isinstance(request, dict):
        raise RpcError(INVALID_REQUEST, "Invalid request")
    method = request.get("method")
    if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, "Invalid request")
    params = request.get("params")
    if params is None:
        params = []
    elif not isinstance(params, list):
        raise invalid_params("invalid type: map, expected a sequence")
    return request.get("id"), method, params


class Rpc:
    """The JSON-RPC front of a :class:`~localnet.chain.Chain`.

    :param chain: the chain to serve.
    """

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "getHealth": self.get_health,
            "getVersion": self.get_version,
            "getGenesisHash": self.get_genesis_hash,
            "getIdentity": self.get_identity,
            "getSlot": self.get_slot,
            "getBlockHeight": self.get_block_height,
            "getEpochInfo": self.get_epoch_info,
            "getEpochSchedule": self.get_epoch_schedule,
            "getTransactionCount": self.get_transaction_count,
            "getFirstAvailableBlock": self.get_first_available_block,
            "minimumLedgerSlot": self.get_first_available_block,
            "getLatestBlockhash": self.get_latest_blockhash,
            "isBlockhashValid": self.is_blockhash_valid,
            "getFeeForMessage": self.get_fee_for_message,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance_for_rent_exemption,
            "getBalance": self.get_balance,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getProgramAccounts": self.get_program_accounts,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getTokenSupply": self.get_token_supply,
            "requestAirdrop": self.request_airdrop,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getRecentPrioritizationFees": self.get_recent_prioritization_fees,
            "getBlockTime": self.get_block_time,
            "getBlock": self.get_block,
            "getBlocks": self.get_blocks,
            "getBlocksWithLimit": self.get_blocks_with_limit,
            "getBlockCommitment": self.get_block_commitment,
            "localnet_setFaults": self.set_faults,
            "localnet_getFaults": self.get_faults,
        }

    # --- envelope ---------------------------------------------------------------------------------
    def handle(self, body: bytes) -> bytes:
        """Answer one HTTP request body (a request object or a batch array).

        :returns: the response body: a response object or array; ``-32700`` on unparsable JSON,
            ``-32600`` on an empty batch or a malformed request object.
        """
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return orjson.dumps(error_response(None, RpcError(PARSE_ERROR, "Parse error")))
        return self.handle_parsed(request)

    def handle_parsed(self, request: Any) -> bytes:
        """:meth:`handle` for an already decoded JSON value."""
        if isinstance(request, list):
            if not request:
                return orjson.dumps(error_response(None, RpcError(INVALID_REQUEST, "Invalid request")))
            return orjson.dumps([self.handle_object(item) for item in request])
        return orjson.dumps(self.handle_object(request))

    def check_request(self, request: Any) -> tuple[Any, str, list[Any]]:
        """Validate the JSON-RPC envelope.

        :returns: ``(id, method, params list)``.
        :raises RpcError: -32600 on a malformed envelope, -32601 on an unknown method, -32602 when
            ``params`` is not an array.
        """
        if (
            isinstance(request, dict)
            and request.get("jsonrpc") == "2.0"
            and isinstance(request.get("method"), str)
            and request["method"] not in self.methods
        ):
            raise RpcError(METHOD_NOT_FOUND, "Method not found")
        return check_envelope(request)

    def handle_object(self, request: Any) -> dict[str, Any]:
        """Answer one request object (``{"jsonrpc": "2.0", "id", "method", "params"}``)."""
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            request_id, method, params = self.check_request(request)
            result = self.methods[method](params)
        except RpcError as error:
            return error_response(request_id, error)
        except Exception as error:  # noqa: BLE001 - a server must answer every request
            return error_response(request_id, RpcError(INTERNAL_ERROR, f"Internal error: {error}"))
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def context(self, slot: int) -> dict[str, Any]:
        """The ``context`` member: ``{"slot", "apiVersion"}``."""
        return {"apiVersion": API_VERSION, "slot": slot}

    def _check_min_context_slot(self, config: dict[str, Any], slot: int) -> None:
        minimum = config.get("minContextSlot")
        if minimum is not None and _int(minimum, "minContextSlot") > slot:
            raise RpcError(MIN_CONTEXT_SLOT_NOT_REACHED, "Minimum context slot has not been reached", {"contextSlot": slot})

    # --- cluster ----------------------------------------------------------------------------------
    def get_health(self, params: list[Any]) -> str:
        """``getHealth`` -> ``"ok"``."""
        return "ok"

    def get_version(self, params: list[Any]) -> dict[str, Any]:
        """``getVersion`` -> ``{"solana-core": str, "feature-set": u32}``."""
        return {"feature-set": FEATURE_SET, "solana-core": SOLANA_CORE_VERSION}

    def get_genesis_hash(self, params: list[Any]) -> str:
        """``getGenesisHash`` -> base58 hash, stable for the life of the ledger."""
        return str(self.chain.genesis_hash)

    def get_identity(self, params: list[Any]) -> dict[str, str]:
        """``getIdentity`` -> ``{"identity": base58}`` (the faucet key stands in for the node)."""
        return {"identity": str(self.chain.faucet.pubkey())}

    def get_slot(self, params: list[Any]) -> int:
        """``getSlot([{commitment, minContextSlot}])`` -> slot."""
        config = _config(params, 0)
        slot = self.chain.slot_at(_commitment(config))
        self._check_min_context_slot(config, slot)
        return slot

    def get_block_height(self, params: list[Any]) -> int:
        """``getBlockHeight([{commitment}])`` -> block height (== slot on localnet)."""
        return self.get_slot(params)

    def get_epoch_info(self, params: list[Any]) -> dict[str, int]:
        """``getEpochInfo([{commitment}])`` -> ``{absoluteSlot, blockHeight, epoch, slotIndex,
        slotsInEpoch, transactionCount}``."""
        slot = self.chain.slot_at(_commitment(_config(params, 0)))
        return {
            "absoluteSlot": slot,
            "blockHeight": slot,
            "epoch": slot // SLOTS_PER_EPOCH,
            "slotIndex": slot % SLOTS_PER_EPOCH,
            "slotsInEpoch": SLOTS_PER_EPOCH,
            "transactionCount": self.chain.transaction_count,
        }

    def get_epoch_schedule(self, params: list[Any]) -> dict[str, Any]:
        """``getEpochSchedule`` (no warmup, 432,000 slots per epoch)."""
        return {
            "firstNormalEpoch": 0,
            "firstNormalSlot": 0,
            "leaderScheduleSlotOffset": SLOTS_PER_EPOCH,
            "slotsPerEpoch": SLOTS_PER_EPOCH,
            "warmup": False,
        }

    def get_transaction_count(self, params: list[Any]) -> int:
        """``getTransactionCount`` -> landed transactions (all commitments alike)."""
        return self.chain.transaction_count

    def get_first_available_block(self, params: list[Any]) -> int:
        """``getFirstAvailableBlock`` / ``minimumLedgerSlot`` -> 0: the ledger keeps everything."""
        return 0

    def get_latest_blockhash(self, params: list[Any]) -> dict[str, Any]:
        """``getLatestBlockhash([{commitment}])`` -> ``{context, value: {blockhash,
        lastValidBlockHeight}}`` with ``lastValidBlockHeight`` = height + 150."""
        config = _config(params, 0)
        slot, blockhash, last_valid = self.chain.latest_blockhash(_commitment(config))
        self._check_min_context_slot(config, slot)
        return {"context": self.context(slot), "value": {"blockhash": str(blockhash), "lastValidBlockHeight": last_valid}}

    def is_blockhash_valid(self, params: list[Any]) -> dict[str, Any]:
        """``isBlockhashValid(blockhash, [{commitment}])`` -> ``{context, value: bool}``."""
        text = _param(params, 0, "blockhash")
        config = _config(params, 1)
        try:
            blockhash = Hash.from_string(text)
        except Exception:  # noqa: BLE001
            raise invalid_param("Invalid") from None
        with self.chain.lock:
            slot = self.chain.slot_at(_commitment(config))
            valid = self.chain.blockhash_valid_until(blockhash) is not None
        return {"context": self.context(slot), "value": valid}

    def get_fee_for_message(self, params: list[Any]) -> dict[str, Any]:
        """``getFeeForMessage(base64 message, [{commitment}])`` -> ``{context, value: lamports |
        null}`` (null when the message's blockhash is no longer valid)."""
        text = _param(params, 0, "message")
        config = _config(params, 1)
        try:
            message = from_bytes_versioned(base64.b64decode(text, validate=True))
        except Exception as error:  # noqa: BLE001
            raise invalid_params(f"invalid message: {error}") from None
        with self.chain.lock:
            slot = self.chain.slot_at(_commitment(config))
            if self.chain.blockhash_valid_until(message.recent_blockhash) is None:
                return {"context": self.context(slot), "value": None}
            try:
                keys = message_account_keys(message, self.chain.svm)[0]
            except TransactionRejected:
                return {"context": self.context(slot), "value": None}
        return {"context": self.context(slot), "value": transaction_fee(message, keys)[0]}

    def get_minimum_balance_for_rent_exemption(self, params: list[Any]) -> int:
        """``getMinimumBalanceForRentExemption(size bytes)`` -> lamports."""
        size = _int(_param(params, 0, "usize"), "usize")
        with self.chain.lock:
            return self.chain.svm.minimum_balance_for_rent_exemption(size)

    def get_block_time(self, params: list[Any]) -> int:
        """``getBlockTime(slot)`` -> unix seconds; -32004 for a slot not produced yet."""
        slot = _int(_param(params, 0, "slot"), "slot")
        with self.chain.lock:
            if slot > self.chain.slot:
                raise RpcError(BLOCK_NOT_AVAILABLE, f"Block not available for slot {slot}")
            return self.chain.block_time(slot)

    # --- accounts ---------------------------------------------------------------------------------
    def _encode(self, account: Any, encoding: str, config: dict[str, Any], slot: int) -> dict[str, Any] | None:
        if account is None:
            return None
        if encoding == "binary":
            ui = encode_account(account, "base58", config.get("dataSlice"))
            ui["data"] = ui["data"][0]
            return ui
        decimals = None
        if encoding == "jsonParsed" and account.owner in TOKEN_PROGRAM_IDS:
            parsed = parse_token_account(bytes(account.data))
            if parsed is not None:
                with self.chain.lock:
                    decimals = self.chain.mint_decimals(Pubkey.from_string(parsed["mint"]), slot)
        return encode_account(account, encoding, config.get("dataSlice"), decimals)

    def get_balance(self, params: list[Any]) -> dict[str, Any]:
        """``getBalance(pubkey, [{commitment, minContextSlot}])`` -> ``{context, value: lamports}``."""
        pubkey = _pubkey(_param(params, 0, "pubkey"))
        config = _config(params, 1)
        slot, (account,) = self.chain.accounts([pubkey], _commitment(config))
        self._check_min_context_slot(config, slot)
        return {"context": self.context(slot), "value": account.lamports if account is not None else 0}

    def get_account_info(self, params: list[Any]) -> dict[str, Any]:
        """``getAccountInfo(pubkey, [{commitment, encoding, dataSlice}])`` -> ``{context, value:
        UiAccount | null}``."""
        pubkey = _pubkey(_param(params, 0, "pubkey"))
        config = _config(params, 1)
        encoding = _account_encoding(config)
        slot, (account,) = self.chain.accounts([pubkey], _commitment(config))
        self._check_min_context_slot(config, slot)
        return {"context": self.context(slot), "value": self._encode(account, encoding, config, slot)}

    def get_multiple_accounts(self, params: list[Any]) -> dict[str, Any]:
        """``getMultipleAccounts([pubkey, ...] (max 100), [{commitment, encoding, dataSlice}])``
        -> ``{context, value: [UiAccount | null]}``."""
        keys = _param(params, 0, "pubkeys")
        if not isinstance(keys, list):
            raise invalid_params("invalid type: expected an array of pubkeys")
        if len(keys) > 100:
            raise invalid_params("Too many inputs provided; max 100")
        pubkeys = [_pubkey(key) for key in keys]
        config = _config(params, 1)
        encoding = _account_encoding(config, "base64")
        slot, accounts = self.chain.accounts(pubkeys, _commitment(config))
        self._check_min_context_slot(config, slot)
        return {
            "context": self.context(slot),
            "value": [self._encode(account, encoding, config, slot) for account in accounts],
        }

    def get_program_accounts(self, params: list[Any]) -> Any:
        """``getProgramAccounts(program, [{commitment, encoding, dataSlice, filters, withContext}])``
        -> ``[{pubkey, account}]`` (or ``{context, value}`` with ``withContext``).

        Filters: ``{"dataSize": n}``, ``{"memcmp": {"offset", "bytes", "encoding"?}}``,
        ``{"tokenAccountState": {}}``; at most 4.
        """
        program = _pubkey(_param(params, 0, "program_id"))
        config = _config(params, 1)
        encoding = _account_encoding(config, "binary")
        matchers = _filters(config.get("filters") or [])
        slot, found = self.chain.program_accounts(program, _commitment(config))
        self._check_min_context_slot(config, slot)
        value = [
            {"account": self._encode(account, encoding, config, slot), "pubkey": str(pubkey)}
            for pubkey, account in found
            if all(matcher(bytes(account.data)) for matcher in matchers)
        ]
        if _bool(config, "withContext"):
            return {"context": self.context(slot), "value": value}
        return value

    def _token_account(self, pubkey: Pubkey, config: dict[str, Any]) -> tuple[int, dict[str, Any], Any]:
        with self.chain.lock:
            slot = self.chain.slot_at(_commitment(config))
            account = self.chain.account(pubkey, slot)
            parsed = (
                parse_token_account(bytes(account.data))
                if account is not None and account.owner in TOKEN_PROGRAM_IDS
                else None
            )
            if parsed is None:
                raise invalid_param("not a Token account")
            decimals = self.chain.mint_decimals(Pubkey.from_string(parsed["mint"]), slot)
        if decimals is None:
            raise invalid_param("could not find mint")
        return slot, parsed, decimals

    def get_token_account_balance(self, params: list[Any]) -> dict[str, Any]:
        """``getTokenAccountBalance(account, [{commitment}])`` -> ``{context, value: UiTokenAmount}``."""
        pubkey = _pubkey(_param(params, 0, "pubkey"))
        slot, parsed, decimals = self._token_account(pubkey, _config(params, 1))
        return {"context": self.context(slot), "value": ui_amount(parsed["amount"], decimals)}

    def get_token_supply(self, params: list[Any]) -> dict[str, Any]:
        """``getTokenSupply(mint, [{commitment}])`` -> ``{context, value: UiTokenAmount}``."""
        pubkey = _pubkey(_param(params, 0, "pubkey"))
        config = _config(params, 1)
        with self.chain.lock:
            slot = self.chain.slot_at(_commitment(config))
            account = self.chain.account(pubkey, slot)
        mint = parse_mint(bytes(account.data)) if account is not None and account.owner in TOKEN_PROGRAM_IDS else None
        if mint is None:
            raise invalid_param("not a Token mint")
        return {"context": self.context(slot), "value": ui_amount(mint["supply"], mint["decimals"])}

    def get_token_accounts_by_owner(self, params: list[Any]) -> dict[str, Any]:
        """``getTokenAccountsByOwner(owner, {mint} | {programId}, [{commitment, encoding,
        dataSlice}])`` -> ``{context, value: [{pubkey, account}]}``."""
        owner = _pubkey(_param(params, 0, "owner"))
        selector = _param(params, 1, "filter")
        config = _config(params, 2)
        encoding = _account_encoding(config, "binary")
        if not isinstance(selector, dict) or len(selector) != 1 or not ({"mint", "programId"} & selector.keys()):
            raise invalid_params("expected a `mint` or `programId` filter")
        mint: Pubkey | None = None
        if "mint" in selector:
            mint = _pubkey(selector["mint"])
            with self.chain.lock:
                slot = self.chain.slot_at(_commitment(config))
                mint_account = self.chain.account(mint, slot)
            if mint_account is None or mint_account.owner not in TOKEN_PROGRAM_IDS:
                raise invalid_param("could not find mint")
            programs = [mint_account.owner]
        else:
            program = _pubkey(selector["programId"])
            if program not in TOKEN_PROGRAM_IDS:
                raise invalid_param("unrecognized Token program id")
            programs = [program]
        mint_bytes = bytes(mint) if mint is not None else None
        slot, found = self.chain.token_accounts_of(owner, _commitment(config))
        value = [
            {"account": self._encode(account, encoding, config, slot), "pubkey": str(pubkey)}
            for pubkey, account in found
            if account.owner in programs and (mint_bytes is None or bytes(account.data)[0:32] == mint_bytes)
        ]
        return {"context": self.context(slot), "value": value}

    # --- transactions -----------------------------------------------------------------------------
    def request_airdrop(self, params: list[Any]) -> str:
        """``requestAirdrop(pubkey, lamports, [{commitment}])`` -> signature of the faucet transfer."""
        pubkey = _pubkey(_param(params, 0, "pubkey"))
        lamports = _int(_param(params, 1, "lamports"), "lamports", 1)
        return str(self.chain.airdrop(pubkey, lamports))

    def parse_send(self, params: list[Any]) -> tuple[bytes, VersionedTransaction, bool]:
        """:func:`parse_send_params` (kept as a method for callers holding an :class:`Rpc`)."""
        return parse_send_params(params)

    def send_transaction(self, params: list[Any]) -> str:
        """``sendTransaction(tx base58|base64, [{encoding, skipPreflight, preflightCommitment,
        maxRetries, minContextSlot}])`` -> first signature (base58).

        :raises RpcError: -32602 bad input, -32003 bad signature, -32002 preflight failure.
        """
        raw, transaction, skip_preflight = self.parse_send(params)
        return str(self.chain.send(raw, transaction, skip_preflight=skip_preflight))

    def simulate_transaction(self, params: list[Any]) -> dict[str, Any]:
        """``simulateTransaction(tx, [{sigVerify, replaceRecentBlockhash, commitment, encoding,
        accounts: {addresses, encoding}, innerInstructions}])`` -> ``{context, value:
        RpcSimulateTransactionResult}``."""
        config = _config(params, 1)
        encoding = config.get("encoding") or "base58"
        _raw, transaction = decode_transaction(_param(params, 0, "transaction"), encoding)
        sig_verify = _bool(config, "sigVerify")
        replace = _bool(config, "replaceRecentBlockhash")
        if sig_verify and replace:
            raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
        accounts_config = config.get("accounts")
        addresses = None
        accounts_encoding = "base64"
        if accounts_config is not None:
            if not isinstance(accounts_config, dict) or not isinstance(accounts_config.get("addresses", []), list):
                raise invalid_params("invalid `accounts` config")
            addresses = [_pubkey(address) for address in accounts_config.get("addresses", [])]
            accounts_encoding = _account_encoding(accounts_config, "base64")
            if accounts_encoding == "binary":
                raise invalid_params("base58 encoding not supported for simulation accounts")
        slot, err, result, post_accounts, replacement = self.chain.simulate(
            transaction,
            sig_verify=sig_verify,
            replace_blockhash=replace,
            commitment=_commitment(config),
            account_addresses=addresses,
        )
        self._check_min_context_slot(config, slot)
        if result is None:
            return {"context": self.context(slot), "value": simulation_data(err)}
        meta = result.meta()
        inner = None
        if _bool(config, "innerInstructions"):
            inner = _ui_inner_instructions(stored_inner_instructions(meta.inner_instructions()))
        accounts = None
        if post_accounts is not None:
            accounts = [self._encode(account, accounts_encoding, {}, slot) for _address, account in post_accounts]
        return_data = meta.return_data()
        ui_return = None
        if bytes(return_data.data):
            ui_return = {
                "programId": str(return_data.program_id),
                "data": [base64.b64encode(bytes(return_data.data)).decode(), "base64"],
            }
        return {
            "context": self.context(slot),
            "value": simulation_data(
                err,
                meta.logs(),
                meta.compute_units_consumed(),
                inner,
                accounts,
                replacement,
                ui_return,
                self.chain.fee_for_message(transaction.message),
            ),
        }

    def get_signature_statuses(self, params: list[Any]) -> dict[str, Any]:
        """``getSignatureStatuses([sig, ...] (max 256), [{searchTransactionHistory}])`` ->
        ``{context, value: [TransactionStatus | null]}``."""
        signatures = _param(params, 0, "signatures")
        if not isinstance(signatures, list):
            raise invalid_params("invalid type: expected an array of signatures")
        if len(signatures) > 256:
            raise invalid_params("Too many inputs provided; max 256")
        _bool(_config(params, 1), "searchTransactionHistory")
        slot, statuses = self.chain.signature_statuses([_signature(text) for text in signatures])
        return {"context": self.context(slot), "value": statuses}

    def get_transaction(self, params: list[Any]) -> dict[str, Any] | None:
        """``getTransaction(sig, [{encoding, commitment, maxSupportedTransactionVersion}])`` ->
        ``{slot, blockTime, transaction, meta, version?}`` or null.

        Encodings: ``json`` (default), ``jsonParsed``, ``base64``, ``base58``.  ``processed``
        commitment is refused like a validator does; a v0 transaction needs
        ``maxSupportedTransactionVersion`` >= 0 (else -32015).
        """
        signature = _signature(_param(params, 0, "signature"))
        config = params[1] if len(params) > 1 and isinstance(params[1], str) else _config(params, 1)
        if isinstance(config, str):
            config = {"encoding": config}
        encoding = config.get("encoding") or "json"
        if encoding not in ("json", "jsonParsed", "base64", "base58"):
            raise invalid_params(
                f"unknown variant `{encoding}`, expected one of `binary`, `base64`, `base58`, `json`, `jsonParsed`"
            )
        commitment = _commitment(config)
        if commitment == PROCESSED:
            raise invalid_params("Method does not support commitment below `confirmed`")
        max_version = config.get("maxSupportedTransactionVersion")
        if max_version is not None:
            max_version = _int(max_version, "maxSupportedTransactionVersion")
        record = self.chain.transaction_record(signature, commitment)
        if record is None:
            return None
        slot, block_time, raw, meta, err = record
        result: dict[str, Any] = {"blockTime": block_time, "slot": slot}
        result.update(_encoded_transaction(raw, meta, err, encoding, max_version))
        return result

    # --- blocks -----------------------------------------------------------------------------------
    def _block_config(self, params: list[Any]) -> tuple[int, dict[str, Any], str]:
        """``(slot, config, commitment)`` of a block request; -32602 for ``processed``; -32004
        when the block is not visible at the commitment yet."""
        slot = _int(_param(params, 0, "slot"), "slot")
        config = params[1] if len(params) > 1 and isinstance(params[1], str) else _config(params, 1)
        if isinstance(config, str):
            config = {"encoding": config}
        commitment = _commitment(config)
        if commitment == PROCESSED:
            raise invalid_params("Method does not support commitment below `confirmed`")
        if slot > self.chain.slot_at(commitment):
            raise RpcError(BLOCK_NOT_AVAILABLE, f"Block not available for slot {slot}")
        return slot, config, commitment

    def get_block(self, params: list[Any]) -> dict[str, Any]:
        """``getBlock(slot, [{encoding, transactionDetails, rewards, commitment,
        maxSupportedTransactionVersion}])`` -> ``{blockHeight, blockTime, blockhash, parentSlot,
        previousBlockhash, transactions | signatures, rewards?}``.

        Every slot is a block (no skipped slots); block height == slot; the blockhash is the one
        ``getLatestBlockhash`` gave for that slot; the parent of slot 0 is the genesis hash.
        ``transactionDetails``: ``full`` (default), ``signatures``, ``none`` (``accounts`` is not
        implemented: -32602).  Encodings as ``getTransaction``.  ``rewards`` (default true) is
        always an empty list: localnet has no staking.  A v0 transaction in the block needs
        ``maxSupportedTransactionVersion`` (else -32015), as on a cluster.
        """
        slot, config, _commitment_level = self._block_config(params)
        encoding = config.get("encoding") or "json"
        if encoding not in ("json", "jsonParsed", "base64", "base58"):
            raise invalid_params(
                f"unknown variant `{encoding}`, expected one of `binary`, `base64`, `base58`, `json`, `jsonParsed`"
            )
        details = config.get("transactionDetails") or "full"
        if details not in ("full", "signatures", "none", "accounts"):
            raise invalid_params(f"unknown variant `{details}`, expected one of `full`, `signatures`, `none`, `accounts`")
        if details == "accounts":
            raise invalid_params("transactionDetails `accounts` is not supported by localnet")
        max_version = config.get("maxSupportedTransactionVersion")
        if max_version is not None:
            max_version = _int(max_version, "maxSupportedTransactionVersion")
        chain = self.chain
        previous = chain.genesis_hash if slot == 0 else chain.blockhash_for_slot(slot - 1)
        with chain.lock:
            block_time = chain.block_time(slot)
        block: dict[str, Any] = {
            "blockHeight": slot,
            "blockTime": block_time,
            "blockhash": str(chain.blockhash_for_slot(slot)),
            "parentSlot": max(0, slot - 1),
            "previousBlockhash": str(previous),
        }
        if details != "none":
            records = chain.block_records(slot)
            if details == "signatures":
                block["signatures"] = [str(VersionedTransaction.from_bytes(raw).signatures[0]) for raw, _m, _e in records]
            else:
                block["transactions"] = [
                    _encoded_transaction(raw, meta, err, encoding, max_version) for raw, meta, err in records
                ]
        if _bool(config, "rewards", True):
            block["rewards"] = []
        return block

    def get_blocks(self, params: list[Any]) -> list[int]:
        """``getBlocks(start_slot, [end_slot], [{commitment}])`` -> the slots of the blocks in
        ``[start, min(end, latest at commitment)]`` (every slot on localnet); at most 500,000."""
        start = _int(_param(params, 0, "start_slot"), "start_slot")
        end: int | None = None
        config_index = 1
        if len(params) > 1 and not isinstance(params[1], dict) and params[1] is not None:
            end = _int(params[1], "end_slot")
            config_index = 2
        commitment = _commitment(_config(params, config_index))
        if commitment == PROCESSED:
            raise invalid_params("Method does not support commitment below `confirmed`")
        latest = self.chain.slot_at(commitment)
        last = latest if end is None else min(end, latest)
        if end is not None and end - start > MAX_GET_BLOCKS_RANGE:
            raise invalid_params(f"Slot range too large; max {MAX_GET_BLOCKS_RANGE}")
        if end is None and last - start > MAX_GET_BLOCKS_RANGE:
            last = start + MAX_GET_BLOCKS_RANGE
        return list(range(start, last + 1))

    def get_blocks_with_limit(self, params: list[Any]) -> list[int]:
        """``getBlocksWithLimit(start_slot, limit (<= 500,000), [{commitment}])`` -> up to
        ``limit`` block slots from ``start_slot``."""
        start = _int(_param(params, 0, "start_slot"), "start_slot")
        limit = _int(_param(params, 1, "limit"), "limit")
        if limit > MAX_GET_BLOCKS_RANGE:
            raise invalid_params(f"Limit too large; max {MAX_GET_BLOCKS_RANGE}")
        commitment = _commitment(_config(params, 2))
        if commitment == PROCESSED:
            raise invalid_params("Method does not support commitment below `confirmed`")
        latest = self.chain.slot_at(commitment)
        return list(range(start, min(start + limit - 1, latest) + 1))

    def get_block_commitment(self, params: list[Any]) -> dict[str, Any]:
        """``getBlockCommitment(slot)`` -> ``{commitment: [u64; 32] | null, totalStake}``.

        localnet has one validator holding :data:`TOTAL_STAKE`: a produced block has that stake at
        the index of its confirmation depth (capped at 31, the finalization depth - 1); a slot
        not produced yet has ``null``, as a cluster answers for an unknown block.
        """
        slot = _int(_param(params, 0, "slot"), "slot")
        with self.chain.lock:
            current = self.chain.slot
        if slot > current:
            return {"commitment": None, "totalStake": TOTAL_STAKE}
        commitment = [0] * 32
        commitment[min(current - slot, 31)] = TOTAL_STAKE
        return {"commitment": commitment, "totalStake": TOTAL_STAKE}

    def get_signatures_for_address(self, params: list[Any]) -> list[dict[str, Any]]:
        """``getSignaturesForAddress(address, [{limit (1..1000), before, until, commitment}])`` ->
        newest-first ``[{signature, slot, err, memo, blockTime, confirmationStatus}]``."""
        address = _pubkey(_param(params, 0, "address"))
        config = _config(params, 1)
        limit = config.get("limit")
        limit = 1000 if limit is None else _int(limit, "limit", 1)
        if limit > 1000:
            raise invalid_params("Invalid limit; max 1000")
        before = _signature(config["before"]) if config.get("before") else None
        until = _signature(config["until"]) if config.get("until") else None
        commitment = _commitment(config)
        if commitment == PROCESSED:
            raise invalid_params("Method does not support commitment below `confirmed`")
        return self.chain.signatures_for_address(address, before=before, until=until, limit=limit, commitment=commitment)

    def get_recent_prioritization_fees(self, params: list[Any]) -> list[dict[str, int]]:
        """``getRecentPrioritizationFees([[address, ...]])`` -> ``[{slot, prioritizationFee}]``
        (micro-lamports per compute unit) for the last 150 slots."""
        if params and params[0] is not None:
            if not isinstance(params[0], list) or len(params[0]) > 128:
                raise invalid_params("expected at most 128 account addresses")
            for address in params[0]:
                _pubkey(address)
        return self.chain.recent_prioritization_fees()

    # --- faults -----------------------------------------------------------------------------------
    def set_faults(self, params: list[Any]) -> dict[str, Any]:
        """``localnet_setFaults({dropRate?, delaySlots?, http429Rate?, http503Rate?, seed?})`` ->
        the faults now in force (same shape as :meth:`get_faults`)."""
        changes = _param(params, 0, "faults")
        if not isinstance(changes, dict):
            raise invalid_params("expected a faults object")
        try:
            self.chain.faults.update(changes)
        except (TypeError, ValueError) as error:
            raise invalid_params(str(error)) from None
        return self.chain.faults.to_json()

    def get_faults(self, params: list[Any]) -> dict[str, Any]:
        """``localnet_getFaults`` -> ``{dropRate, delaySlots, http429Rate, http503Rate, seed}``."""
        return self.chain.faults.to_json()


def error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    """A JSON-RPC 2.0 error response object."""
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _filters(filters: Any) -> list[Callable[[bytes], bool]]:
    if not isinstance(filters, list) or len(filters) > 4:
        raise invalid_params("Too many filters provided; max 4" if isinstance(filters, list) else "filters must be an array")
    matchers: list[Callable[[bytes], bool]] = []
    for item in filters:
        if not isinstance(item, dict) or len(item) != 1:
            raise invalid_params("invalid filter")
        if "dataSize" in item:
            size = _int(item["dataSize"], "dataSize")
            matchers.append(lambda data, size=size: len(data) == size)
        elif "memcmp" in item:
            memcmp = item["memcmp"]
            if not isinstance(memcmp, dict) or "bytes" not in memcmp:
                raise invalid_params("invalid memcmp filter")
            offset = _int(memcmp.get("offset", 0), "offset")
            encoding = memcmp.get("encoding") or "base58"
            try:
                expected = (
                    base64.b64decode(memcmp["bytes"], validate=True) if encoding == "base64" else b58decode(memcmp["bytes"])
                )
            except (ValueError, binascii.Error, TypeError, AttributeError):
                raise invalid_param(f"Invalid {encoding} memcmp bytes") from None
            matchers.append(lambda data, offset=offset, expected=expected: data[offset : offset + len(expected)] == expected)
        elif "tokenAccountState" in item:
            matchers.append(lambda data: parse_token_account(data) is not None)
        else:
            raise invalid_params("unknown filter")
    return matchers


def _encoded_transaction(
    raw: bytes, meta: dict[str, Any], err: Any, encoding: str, max_version: int | None
) -> dict[str, Any]:
    """``{transaction, meta, version?}`` of a stored transaction, as ``getTransaction`` and
    ``getBlock`` show it (``version`` only when ``maxSupportedTransactionVersion`` is given).

    :raises RpcError: -32015 for a v0 transaction without ``maxSupportedTransactionVersion`` >= 0.
    """
    transaction = VersionedTransaction.from_bytes(raw)
    is_v0 = isinstance(transaction.message, MessageV0)
    if is_v0 and (max_version is None or max_version < 0):
        raise RpcError(
            UNSUPPORTED_TRANSACTION_VERSION,
            "Transaction version (0) is not supported by the requesting client. Please try the request again "
            'with the following configuration parameter: "maxSupportedTransactionVersion": 0',
        )
    if encoding == "base64":
        ui_transaction: Any = [base64.b64encode(raw).decode(), "base64"]
    elif encoding == "base58":
        ui_transaction = [b58encode(raw), "base58"]
    else:
        ui_transaction = _ui_transaction(transaction, meta, parsed=encoding == "jsonParsed")
    result: dict[str, Any] = {
        "meta": _ui_meta(meta, err, parsed=encoding == "jsonParsed", transaction=transaction),
        "transaction": ui_transaction,
    }
    if max_version is not None:
        result["version"] = 0 if is_v0 else "legacy"
    return result


def _ui_inner_instructions(stored: list[Any], keys: list[Pubkey] | None = None) -> list[dict[str, Any]]:
    result = []
    for index, instructions in stored:
        ui = []
        for program_index, accounts, data_b64, stack_height in instructions:
            data = base64.b64decode(data_b64)
            if keys is not None:
                ui.append(parse_instruction(keys, program_index, accounts, data, stack_height))
            else:
                ui.append(
                    {
                        "accounts": accounts,
                        "data": b58encode(data),
                        "programIdIndex": program_index,
                        "stackHeight": stack_height,
                    }
                )
        result.append({"index": index, "instructions": ui})
    return result


def _ui_meta(meta: dict[str, Any], err: Any, *, parsed: bool, transaction: VersionedTransaction) -> dict[str, Any]:
    keys = None
    if parsed:
        keys = list(transaction.message.account_keys) + [
            Pubkey.from_string(text) for text in meta["loaded"][0] + meta["loaded"][1]
        ]
    ui: dict[str, Any] = {
        "computeUnitsConsumed": meta["units"],
        "err": err,
        "fee": meta["fee"],
        "innerInstructions": _ui_inner_instructions(meta["inner"], keys),
        "logMessages": meta["logs"],
        "postBalances": meta["post"],
        "postTokenBalances": meta["postToken"],
        "preBalances": meta["pre"],
        "preTokenBalances": meta["preToken"],
        "rewards": [],
        "status": {"Ok": None} if err is None else {"Err": err},
    }
    if not parsed:
        ui["loadedAddresses"] = {"readonly": meta["loaded"][1], "writable": meta["loaded"][0]}
    if meta.get("returnData"):
        program_id, data = meta["returnData"]
        ui["returnData"] = {"data": [data, "base64"], "programId": program_id}
    return ui


def _ui_transaction(transaction: VersionedTransaction, meta: dict[str, Any], *, parsed: bool) -> dict[str, Any]:
    message = transaction.message
    header = message.header
    static_keys = list(message.account_keys)
    message_json: dict[str, Any] = {"recentBlockhash": str(message.recent_blockhash)}
    if parsed:
        all_keys = static_keys + [Pubkey.from_string(text) for text in meta["loaded"][0] + meta["loaded"][1]]
        writable = meta.get("writable") or [False] * len(all_keys)
        sources = ["transaction"] * len(static_keys) + ["lookupTable"] * (len(all_keys) - len(static_keys))
        message_json["accountKeys"] = [
            {
                "pubkey": str(key),
                "signer": index < header.num_required_signatures,
                "source": sources[index],
                "writable": bool(writable[index]) if index < len(writable) else False,
            }
            for index, key in enumerate(all_keys)
        ]
        message_json["instructions"] = [
            parse_instruction(
                all_keys, instruction.program_id_index, list(bytes(instruction.accounts)), bytes(instruction.data), None
            )
            for instruction in message.instructions
        ]
    else:
        message_json["accountKeys"] = [str(key) for key in static_keys]
        message_json["header"] = {
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
            "numRequiredSignatures": header.num_required_signatures,
        }
        message_json["instructions"] = [
            {
                "accounts": list(bytes(instruction.accounts)),
                "data": b58encode(bytes(instruction.data)),
                "programIdIndex": instruction.program_id_index,
                "stackHeight": None,
            }
            for instruction in message.instructions
        ]
    if isinstance(message, MessageV0):
        message_json["addressTableLookups"] = [
            {
                "accountKey": str(lookup.account_key),
                "readonlyIndexes": list(bytes(lookup.readonly_indexes)),
                "writableIndexes": list(bytes(lookup.writable_indexes)),
            }
            for lookup in message.address_table_lookups
        ]
    return {"message": message_json, "signatures": [str(signature) for signature in transaction.signatures]}


__all__ = ["COMMITMENTS", "MAX_PROCESSING_AGE", "Rpc", "decode_transaction"]
