"""The program's error codes (``programs/wallet/src/error.rs``; ``docs/wallet-program.md``,
"Errors") and a plain sentence for each."""

from __future__ import annotations

import enum


class ProgramErrorCode(enum.IntEnum):
    INVALID_INSTRUCTION_DATA = 6000
    NOT_ENOUGH_ACCOUNTS = 6001
    TOO_MANY_ACCOUNTS = 6002
    INVALID_CONFIG_ACCOUNT = 6003
    INVALID_CONFIG_ADDRESS = 6004
    INVALID_VAULT_ACCOUNT = 6005
    MISSING_SIGNATURE = 6006
    ACCOUNT_NOT_WRITABLE = 6007
    DUPLICATE_ACCOUNT = 6008
    UNKNOWN_AUTHORITY = 6009
    PERMISSION_DENIED = 6010
    AUTHORITY_EXPIRED = 6011
    NO_LIMIT_FOR_MINT = 6012
    PER_TRANSACTION_LIMIT_EXCEEDED = 6013
    PERIOD_LIMIT_EXCEEDED = 6014
    ARITHMETIC_OVERFLOW = 6015
    INVALID_PROGRAM_ACCOUNT = 6016
    INVALID_MINT = 6017
    INVALID_TOKEN_ACCOUNT = 6018
    AUTHORITY_TABLE_FULL = 6019
    AUTHORITY_EXISTS = 6020
    LAST_OWNER = 6021
    LIMIT_TABLE_FULL = 6022
    CONFIG_ALREADY_EXISTS = 6023
    UNSUPPORTED_AUTHORITY_KIND = 6024
    INVALID_LIMIT = 6025
    SYSVAR_UNAVAILABLE = 6026
    CROSS_PROGRAM_CALL_FAILED = 6027
    AUTHORITY_NOT_FOUND = 6028


_SENTENCES = {
    ProgramErrorCode.INVALID_INSTRUCTION_DATA: "The wallet program could not read the request.",
    ProgramErrorCode.NOT_ENOUGH_ACCOUNTS: "The request to the wallet program lacked accounts.",
    ProgramErrorCode.TOO_MANY_ACCOUNTS: "The request to the wallet program named too many accounts.",
    ProgramErrorCode.INVALID_CONFIG_ACCOUNT: "The wallet's settings account is not valid.",
    ProgramErrorCode.INVALID_CONFIG_ADDRESS: "The wallet's settings account is at the wrong address.",
    ProgramErrorCode.INVALID_VAULT_ACCOUNT: "The wallet address does not belong to this wallet.",
    ProgramErrorCode.MISSING_SIGNATURE: "A required signature is missing.",
    ProgramErrorCode.ACCOUNT_NOT_WRITABLE: "An account that must change was passed read-only.",
    ProgramErrorCode.DUPLICATE_ACCOUNT: "The same account was passed twice.",
    ProgramErrorCode.UNKNOWN_AUTHORITY: "The signing key is not allowed to act for this wallet.",
    ProgramErrorCode.PERMISSION_DENIED: "The signing key does not have the permission for this action.",
    ProgramErrorCode.AUTHORITY_EXPIRED: "The signing key has expired.",
    ProgramErrorCode.NO_LIMIT_FOR_MINT: "This wallet may not send this token (no limit is set for it).",
    ProgramErrorCode.PER_TRANSACTION_LIMIT_EXCEEDED: "The amount is above the wallet's per-payment limit.",
    ProgramErrorCode.PERIOD_LIMIT_EXCEEDED: "The amount is above what the wallet may still send this period.",
    ProgramErrorCode.ARITHMETIC_OVERFLOW: "The amount is too large.",
    ProgramErrorCode.INVALID_PROGRAM_ACCOUNT: "The request named the wrong program.",
    ProgramErrorCode.INVALID_MINT: "The token is not valid for this token program.",
    ProgramErrorCode.INVALID_TOKEN_ACCOUNT: "The source token account is not the wallet's.",
    ProgramErrorCode.AUTHORITY_TABLE_FULL: "The wallet already has the maximum number of keys.",
    ProgramErrorCode.AUTHORITY_EXISTS: "This key is already on the wallet.",
    ProgramErrorCode.LAST_OWNER: "The wallet's last owner key cannot be removed.",
    ProgramErrorCode.LIMIT_TABLE_FULL: "The wallet already has the maximum number of limits.",
    ProgramErrorCode.CONFIG_ALREADY_EXISTS: "The wallet already exists.",
    ProgramErrorCode.UNSUPPORTED_AUTHORITY_KIND: "This kind of key is not supported yet.",
    ProgramErrorCode.INVALID_LIMIT: "The limit is not valid.",
    ProgramErrorCode.SYSVAR_UNAVAILABLE: "The chain's clock or rent settings could not be read.",
    ProgramErrorCode.CROSS_PROGRAM_CALL_FAILED: "A transfer inside the wallet program failed.",
    ProgramErrorCode.AUTHORITY_NOT_FOUND: "That key is not on the wallet.",
}


def error_sentence(code: int) -> str | None:
    """The plain sentence for a custom error code of the wallet program, or ``None`` if the code
    is not one of ours (e.g. a System or Token program error)."""
    try:
        return _SENTENCES[ProgramErrorCode(code)]
    except ValueError:
        return None
