"""Client of the Numpay smart wallet program (``programs/wallet/``): addresses, instruction builders,
config decoding, error sentences. Pure solders, no Django: the byte layouts are the ones in
``docs/wallet-program.md``.
"""

from __future__ import annotations

from wallets.program.addresses import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SOL_MINT,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
    config_address,
    vault_address,
)
from wallets.program.approvals import (
    INSTRUCTIONS_SYSVAR_ID,
    SECP256R1_PROGRAM_ID,
    PasskeyAssertion,
    approval_challenge,
    approve_with_passkeys,
)
from wallets.program.config import AuthorityEntry, LimitEntry, WalletConfig, decode_config
from wallets.program.errors import ProgramErrorCode, error_sentence
from wallets.program.instructions import (
    Authority,
    Limit,
    SolTransfer,
    TokenTransfer,
    add_authority,
    create,
    execute,
    recovery_approve,
    recovery_cancel,
    recovery_execute,
    recovery_start,
    recovery_withdraw,
    remove_authority,
    set_limits,
    set_permissions,
    set_settings,
)

__all__ = [
    "ASSOCIATED_TOKEN_PROGRAM_ID",
    "INSTRUCTIONS_SYSVAR_ID",
    "SECP256R1_PROGRAM_ID",
    "PasskeyAssertion",
    "approval_challenge",
    "approve_with_passkeys",
    "recovery_approve",
    "recovery_cancel",
    "recovery_execute",
    "recovery_start",
    "recovery_withdraw",
    "set_permissions",
    "set_settings",
    "SOL_MINT",
    "TOKEN_2022_PROGRAM_ID",
    "TOKEN_PROGRAM_ID",
    "Authority",
    "AuthorityEntry",
    "Limit",
    "LimitEntry",
    "ProgramErrorCode",
    "SolTransfer",
    "TokenTransfer",
    "WalletConfig",
    "add_authority",
    "associated_token_address",
    "config_address",
    "create",
    "decode_config",
    "error_sentence",
    "execute",
    "remove_authority",
    "set_limits",
    "vault_address",
]
