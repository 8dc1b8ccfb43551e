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
    INVALID_INSTRUCTIONS_SYSVAR = 6029
    INVALID_PRECOMPILE_INSTRUCTION = 6030
    CLIENT_DATA_MISMATCH = 6031
    RELYING_PARTY_MISMATCH = 6032
    USER_NOT_VERIFIED = 6033
    INVALID_CLIENT_DATA_TYPE = 6034
    CHALLENGE_MISMATCH = 6035
    APPROVAL_EXPIRED = 6036
    DUPLICATE_APPROVAL = 6037
    RECOVERY_DISABLED = 6038
    RECOVERY_PENDING = 6039
    NO_RECOVERY_PENDING = 6040
    RECOVERY_MISMATCH = 6041
    RECOVERY_NOT_READY = 6042
    NOTHING_TO_WITHDRAW = 6043
    NO_GUARDIAN_CHANGE_PENDING = 6044
    GUARDIAN_CHANGE_NOT_READY = 6045
    GUARDIAN_CHANGE_MISMATCH = 6046


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
    ProgramErrorCode.INVALID_INSTRUCTIONS_SYSVAR: "The passkey approval did not name the chain's instructions account.",
    ProgramErrorCode.INVALID_PRECOMPILE_INSTRUCTION: "The passkey signature check in the transaction is not valid.",
    ProgramErrorCode.CLIENT_DATA_MISMATCH: "The passkey approval's data does not match what the passkey signed.",
    ProgramErrorCode.RELYING_PARTY_MISMATCH: "The passkey was not used on this wallet's site.",
    ProgramErrorCode.USER_NOT_VERIFIED: "The passkey approval lacks user verification (fingerprint, face or PIN).",
    ProgramErrorCode.INVALID_CLIENT_DATA_TYPE: "The passkey response is not a sign-in or payment confirmation.",
    ProgramErrorCode.CHALLENGE_MISMATCH: "The passkey approved a different action, or an approval that was already used.",
    ProgramErrorCode.APPROVAL_EXPIRED: "The passkey approval has expired; approve again.",
    ProgramErrorCode.DUPLICATE_APPROVAL: "The same passkey approved twice; another passkey must approve.",
    ProgramErrorCode.RECOVERY_DISABLED: "This wallet has no guardians set up for recovery.",
    ProgramErrorCode.RECOVERY_PENDING: "A recovery of this wallet is already under way.",
    ProgramErrorCode.NO_RECOVERY_PENDING: "No recovery of this wallet is under way.",
    ProgramErrorCode.RECOVERY_MISMATCH: "This approval is for a different recovery request.",
    ProgramErrorCode.RECOVERY_NOT_READY: "The recovery cannot complete yet: more guardians or more waiting time are needed.",
    ProgramErrorCode.NOTHING_TO_WITHDRAW: "This guardian has not approved the recovery.",
    ProgramErrorCode.NO_GUARDIAN_CHANGE_PENDING: "No change of this wallet's guardians is waiting.",
    ProgramErrorCode.GUARDIAN_CHANGE_NOT_READY: "The guardian change cannot take effect yet: its waiting time is not over.",
    ProgramErrorCode.GUARDIAN_CHANGE_MISMATCH: "These guardians are not the ones of the waiting guardian change.",
}


def error_sentence(code: int) -> str | None:
    """The plain sentence for a custom error code of the wallet program, or ``None`` if the code
    is not one of ours (e.g. a System or Token program error)."""
    try:
        return _SENTENCES[ProgramErrorCode(code)]
    except ValueError:
        return None
