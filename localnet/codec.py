"""Encodings shared by the RPC layer: base58, account encodings, SPL token ``jsonParsed``.

Nothing here is cryptographic: base58 is a plain positional encoding (the Bitcoin alphabet the
Solana RPC uses); hashing and signatures are always done by :mod:`solders`.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
from solders.account import Account
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult

_ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: position for position, char in enumerate(_ALPHABET)}

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
TOKEN_PROGRAM_IDS = (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID)
TOKEN_PROGRAM_NAMES = {TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}
NATIVE_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")
MINT_SIZE = 82
TOKEN_ACCOUNT_SIZE = 165
#: Offset of the ``AccountType`` byte that Token-2022 puts after the base state.
TOKEN_2022_ACCOUNT_TYPE_OFFSET = 165
_ACCOUNT_TYPE_MINT = 1
_ACCOUNT_TYPE_ACCOUNT = 2

#: Encoded-size limits of ``sendTransaction`` (``solana-rpc`` ``MAX_BASE58_SIZE`` / ``MAX_BASE64_SIZE``).
PACKET_DATA_SIZE = 1232
MAX_BASE58_SIZE = 1683
MAX_BASE64_SIZE = 1644


def b58encode(data: bytes) -> str:
    """Encode bytes as base58 (Bitcoin alphabet), as the Solana RPC does.

    :param data: any bytes.
    :returns: the base58 text; leading zero bytes become leading ``1`` characters.
    """
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    out = bytearray()
    while number:
        number, remainder = divmod(number, 58)
        out.append(_ALPHABET[remainder])
    out.extend(b"1" * zeros)
    out.reverse()
    return out.decode("ascii")


def b58decode(text: str) -> bytes:
    """Decode base58 text (Bitcoin alphabet).

    :param text: base58 text.
    :returns: the decoded bytes.
    :raises ValueError: on a character outside the alphabet.
    """
    raw = text.encode("ascii") if text.isascii() else None
    if raw is None:
        raise ValueError("non-ascii character in base58 text")
    number = 0
    for char in raw:
        try:
            number = number * 58 + _INDEX[char]
        except KeyError:
            raise ValueError(f"invalid base58 character {chr(char)!r}") from None
    zeros = len(raw) - len(raw.lstrip(b"1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def transaction_error_json(err: Any) -> Any:
    """Render a solders ``TransactionErrorType`` in the RPC's JSON shape.

    Uses solders' own serialisation, e.g. ``{"InstructionError": [0, {"Custom": 1}]}`` or
    ``"BlockhashNotFound"``.

    :param err: a solders transaction error, or ``None``.
    :returns: the JSON value (``None`` for success).
    """
    if err is None:
        return None
    return orjson.loads(RpcSimulateTransactionResult(err=err).to_json())["err"]


_INSTRUCTION_ERROR_TEXT = {
    "GenericError": "generic instruction error",
    "InvalidArgument": "invalid program argument",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidAccountData": "invalid account data for instruction",
    "AccountDataTooSmall": "account data too small for instruction",
    "InsufficientFunds": "insufficient funds for instruction",
    "IncorrectProgramId": "incorrect program id for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "AccountAlreadyInitialized": "instruction requires an uninitialized account",
    "UninitializedAccount": "instruction requires an initialized account",
    "InvalidSeeds": "Provided seeds do not result in a valid address",
    "ComputationalBudgetExceeded": "Computational budget exceeded",
    "InvalidAccountOwner": "Invalid account owner",
    "AccountNotRentExempt": "An account does not have enough lamports to be rent-exempt",
    "ProgramFailedToComplete": "Program failed to complete",
}

_TRANSACTION_ERROR_TEXT = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "CallChainTooDeep": "Loader call chain is too deep",
    "MissingSignatureForFee": "Transaction requires a fee but has no signature present",
    "InvalidAccountIndex": "Transaction contains an invalid account reference",
    "SignatureFailure": "Transaction did not pass signature verification",
    "InvalidProgramForExecution": "This program may not be used for executing instructions",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "AddressLookupTableNotFound": "Transaction loads an address table account that doesn't exist",
    "InvalidWritableAccount": "Transaction loads a writable account that cannot be written",
    "UnsupportedVersion": "Transaction version is unsupported",
}


def transaction_error_text(err_json: Any) -> str:
    """Human text of a transaction error, as a validator puts in ``Transaction simulation failed: ...``.

    :param err_json: the error in RPC JSON shape (see :func:`transaction_error_json`).
    :returns: e.g. ``"Error processing Instruction 0: custom program error: 0x1"``.
    """
    if isinstance(err_json, str):
        return _TRANSACTION_ERROR_TEXT.get(err_json, err_json)
    if isinstance(err_json, dict) and "InstructionError" in err_json:
        index, inner = err_json["InstructionError"]
        if isinstance(inner, dict) and "Custom" in inner:
            detail = f"custom program error: {inner['Custom']:#x}"
        elif isinstance(inner, str):
            detail = _INSTRUCTION_ERROR_TEXT.get(inner, inner)
        else:
            detail = orjson.dumps(inner).decode()
        return f"Error processing Instruction {index}: {detail}"
    if isinstance(err_json, dict) and "InsufficientFundsForRent" in err_json:
        index = err_json["InsufficientFundsForRent"]["account_index"]
        return f"Transaction results in an account ({index}) with insufficient funds for rent"
    return orjson.dumps(err_json).decode()


def ui_amount(amount: int, decimals: int) -> dict[str, Any]:
    """The RPC's ``UiTokenAmount`` object.

    :param amount: base units.
    :param decimals: the mint's decimals.
    :returns: ``{"amount": "...", "decimals": d, "uiAmount": float, "uiAmountString": "..."}``.
    """
    if decimals:
        whole, fraction = divmod(amount, 10**decimals)
        text = f"{whole}.{fraction:0{decimals}d}".rstrip("0").rstrip(".")
    else:
        text = str(amount)
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": float(text),
        "uiAmountString": text,
    }


def _optional_pubkey(raw: bytes) -> str | None:
    """An ``OptionalNonZeroPubkey``: all-zero bytes mean ``None``."""
    return None if raw == bytes(32) else str(Pubkey.from_bytes(raw))


_ACCOUNT_STATE_NAMES = {0: "uninitialized", 1: "initialized", 2: "frozen"}


def _extension(extension_type: int, value: bytes) -> dict[str, Any]:
    """One Token-2022 extension in the ``jsonParsed`` shape of spl-account-decoder (the common
    ones; others are reported as ``unparseableExtension``, as validators do for types they lack)."""
    if extension_type == 3 and len(value) >= 32:
        return {"extension": "mintCloseAuthority", "state": {"closeAuthority": _optional_pubkey(value[:32])}}
    if extension_type == 6 and len(value) >= 1:
        return {
            "extension": "defaultAccountState",
            "state": {"accountState": _ACCOUNT_STATE_NAMES.get(value[0], "uninitialized")},
        }
    if extension_type == 7:
        return {"extension": "immutableOwner"}
    if extension_type == 8 and len(value) >= 1:
        return {"extension": "memoTransfer", "state": {"requireIncomingTransferMemos": bool(value[0])}}
    if extension_type == 9:
        return {"extension": "nonTransferable"}
    if extension_type == 11 and len(value) >= 1:
        return {"extension": "cpiGuard", "state": {"lockCpi": bool(value[0])}}
    if extension_type == 12 and len(value) >= 32:
        return {"extension": "permanentDelegate", "state": {"delegate": _optional_pubkey(value[:32])}}
    if extension_type == 13:
        return {"extension": "nonTransferableAccount"}
    if extension_type == 15 and len(value) >= 1:
        return {"extension": "transferHookAccount", "state": {"transferring": bool(value[0])}}
    if extension_type == 18 and len(value) >= 64:
        return {
            "extension": "metadataPointer",
            "state": {"authority": _optional_pubkey(value[:32]), "metadataAddress": _optional_pubkey(value[32:64])},
        }
    return {"extension": "unparseableExtension"}


def token_2022_extensions(data: bytes) -> list[dict[str, Any]] | None:
    """The TLV extensions after a Token-2022 state (``AccountType`` byte at 165, entries of
    ``type u16 | length u16 | value`` from 166), or ``None`` when the data has none."""
    if len(data) <= TOKEN_2022_ACCOUNT_TYPE_OFFSET + 1:
        return None
    extensions = []
    offset = TOKEN_2022_ACCOUNT_TYPE_OFFSET + 1
    while offset + 4 <= len(data):
        extension_type, length = struct.unpack_from("<HH", data, offset)
        if extension_type == 0:
            break
        extensions.append(_extension(extension_type, data[offset + 4 : offset + 4 + length]))
        offset += 4 + length
    return extensions


def parse_mint(data: bytes) -> dict[str, Any] | None:
    """Decode an SPL mint (Token or Token-2022 base layout, 82 bytes).

    :returns: ``{"mintAuthority", "supply" (int), "decimals", "isInitialized", "freezeAuthority"}``
        or ``None`` when the data is not a mint.
    """
    if len(data) < MINT_SIZE:
        return None
    if len(data) > MINT_SIZE and (
        len(data) <= TOKEN_2022_ACCOUNT_TYPE_OFFSET or data[TOKEN_2022_ACCOUNT_TYPE_OFFSET] != _ACCOUNT_TYPE_MINT
    ):
        return None
    has_mint_authority, supply, decimals, is_initialized, has_freeze = struct.unpack_from("<I32xQB?I", data, 0)
    if not is_initialized:
        return None
    return {
        "mintAuthority": str(Pubkey.from_bytes(data[4:36])) if has_mint_authority else None,
        "supply": supply,
        "decimals": decimals,
        "isInitialized": True,
        "freezeAuthority": str(Pubkey.from_bytes(data[50:82])) if has_freeze else None,
    }


_ACCOUNT_STATES = {1: "initialized", 2: "frozen"}


def parse_token_account(data: bytes) -> dict[str, Any] | None:
    """Decode an SPL token account (Token or Token-2022 base layout, 165 bytes).

    :returns: ``{"mint", "owner", "amount" (int), "delegate", "state", "isNative",
        "rentExemptReserve", "delegatedAmount", "closeAuthority"}`` or ``None``.
    """
    if len(data) < TOKEN_ACCOUNT_SIZE:
        return None
    if len(data) > TOKEN_ACCOUNT_SIZE and data[TOKEN_2022_ACCOUNT_TYPE_OFFSET] != _ACCOUNT_TYPE_ACCOUNT:
        return None
    (has_delegate,) = struct.unpack_from("<I", data, 72)
    state = data[108]
    if state not in _ACCOUNT_STATES:
        return None
    has_native, native_reserve, delegated_amount, has_close = struct.unpack_from("<IQQI", data, 109)
    return {
        "mint": str(Pubkey.from_bytes(data[0:32])),
        "owner": str(Pubkey.from_bytes(data[32:64])),
        "amount": int.from_bytes(data[64:72], "little"),
        "delegate": str(Pubkey.from_bytes(data[76:108])) if has_delegate else None,
        "state": _ACCOUNT_STATES[state],
        "isNative": bool(has_native),
        "rentExemptReserve": native_reserve if has_native else None,
        "delegatedAmount": delegated_amount,
        "closeAuthority": str(Pubkey.from_bytes(data[133:165])) if has_close else None,
    }


def token_account_mint_and_owner(data: bytes) -> tuple[bytes, bytes, int] | None:
    """Fast path for token balances: ``(mint bytes, owner bytes, amount)`` or ``None``."""
    if len(data) < TOKEN_ACCOUNT_SIZE or data[108] not in _ACCOUNT_STATES:
        return None
    if len(data) > TOKEN_ACCOUNT_SIZE and data[TOKEN_2022_ACCOUNT_TYPE_OFFSET] != _ACCOUNT_TYPE_ACCOUNT:
        return None
    return data[0:32], data[32:64], int.from_bytes(data[64:72], "little")


def parsed_token_account_info(parsed: dict[str, Any], decimals: int) -> dict[str, Any]:
    """``parsed.info`` of a token account in ``jsonParsed`` encoding (spl-account-decoder)."""
    info: dict[str, Any] = {
        "isNative": parsed["isNative"],
        "mint": parsed["mint"],
        "owner": parsed["owner"],
        "state": parsed["state"],
        "tokenAmount": ui_amount(parsed["amount"], decimals),
    }
    if parsed["delegate"] is not None:
        info["delegate"] = parsed["delegate"]
        info["delegatedAmount"] = ui_amount(parsed["delegatedAmount"], decimals)
    if parsed["rentExemptReserve"] is not None:
        info["rentExemptReserve"] = ui_amount(parsed["rentExemptReserve"], decimals)
    if parsed["closeAuthority"] is not None:
        info["closeAuthority"] = parsed["closeAuthority"]
    return info


def account_data_slice(data: bytes, data_slice: dict[str, Any] | None) -> bytes:
    """Apply an RPC ``dataSlice`` (``{"offset", "length"}``) to account data."""
    if not data_slice:
        return data
    offset = int(data_slice.get("offset", 0))
    length = int(data_slice.get("length", 0))
    return data[offset : offset + length]


def encode_account(
    account: Account,
    encoding: str,
    data_slice: dict[str, Any] | None = None,
    mint_decimals: int | None = None,
) -> dict[str, Any]:
    """Render an account as the RPC's ``UiAccount``.

    Follows https://solana.com/docs/rpc/http/getaccountinfo: ``{"lamports", "owner", "data",
    "executable", "rentEpoch", "space"}``; ``data`` is ``[text, encoding]`` for ``base58`` /
    ``base64``, or ``{"program", "parsed", "space"}`` for ``jsonParsed`` on SPL token mints and
    accounts (falling back to base64 otherwise, as validators do).

    :param account: the account.
    :param encoding: ``base58``, ``base64``, ``base64+zstd`` is refused upstream, ``jsonParsed``.
    :param data_slice: optional ``{"offset", "length"}`` (bytes).
    :param mint_decimals: decimals of a token account's mint, needed for ``jsonParsed``.
    """
    raw = bytes(account.data)
    data: Any
    if encoding == "jsonParsed":
        data = parsed_account_data(account.owner, raw, mint_decimals)
        if data is None:
            data = [base64.b64encode(account_data_slice(raw, data_slice)).decode(), "base64"]
    elif encoding == "base58":
        data = [b58encode(account_data_slice(raw, data_slice)), "base58"]
    else:
        data = [base64.b64encode(account_data_slice(raw, data_slice)).decode(), "base64"]
    return {
        "data": data,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": account.rent_epoch,
        "space": len(raw),
    }


def parsed_account_data(owner: Pubkey, raw: bytes, mint_decimals: int | None) -> dict[str, Any] | None:
    """``jsonParsed`` data of an SPL token mint / token account, or ``None`` when not parsable."""
    program = TOKEN_PROGRAM_NAMES.get(owner)
    if program is None:
        return None
    if len(raw) == MINT_SIZE or (
        len(raw) > TOKEN_2022_ACCOUNT_TYPE_OFFSET and raw[TOKEN_2022_ACCOUNT_TYPE_OFFSET] == _ACCOUNT_TYPE_MINT
    ):
        mint = parse_mint(raw)
        if mint is None:
            return None
        info: dict[str, Any] = dict(mint, supply=str(mint["supply"]))
    else:
        token_account = parse_token_account(raw)
        if token_account is None or mint_decimals is None:
            return None
        info = parsed_token_account_info(token_account, mint_decimals)
    if owner == TOKEN_2022_PROGRAM_ID:
        extensions = token_2022_extensions(raw)
        if extensions is not None:
            info["extensions"] = extensions
    parsed: dict[str, Any] = {"info": info, "type": "mint" if "supply" in info else "account"}
    return {"parsed": parsed, "program": program, "space": len(raw)}
