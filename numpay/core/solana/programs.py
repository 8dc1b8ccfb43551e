"""Solana program ids, account sizes, layouts and decimals: defined here once for the whole project.

(``localnet/`` keeps its own copies: it is stand-alone and imports no project code.)

Sources: the System program and sysvars (https://solana.com/docs/core/programs), SPL Token and
Token-2022 account layouts (https://spl.solana.com/token; ``spl_token::state::Account::LEN`` = 165,
``Mint::LEN`` = 82), the Associated Token Account program (https://spl.solana.com/associated-token-account),
SPL Memo (https://spl.solana.com/memo), the ComputeBudget program and fees
(https://solana.com/docs/core/fees), rent (``ACCOUNT_STORAGE_OVERHEAD`` = 128 bytes per account).
"""

from __future__ import annotations

from solders.pubkey import Pubkey

# --- program ids --------------------------------------------------------------------------------------
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
#: SPL Memo v2 (signer-checking) and the legacy v1 program.
MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
MEMO_V1_PROGRAM_ID = Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
#: The owner of every sysvar account (Clock, Rent, SlotHashes, Instructions, ...).
SYSVAR_OWNER_ID = Pubkey.from_string("Sysvar1111111111111111111111111111111111111")
#: The SPL Token programs a token account or mint may belong to.
TOKEN_PROGRAM_IDS: frozenset[Pubkey] = frozenset({TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID})

# --- account sizes and layouts (bytes) ------------------------------------------------------------------
#: An SPL Token account: mint (32) | owner (32) | amount (u64 LE) | delegate | state | ... = 165 bytes.
TOKEN_ACCOUNT_LEN = 165
#: Offset of the ``amount`` field (u64, little-endian) in a token account.
TOKEN_ACCOUNT_AMOUNT_OFFSET = 64
#: An SPL Token mint: mint authority | supply | decimals | is_initialized | freeze authority = 82 bytes.
MINT_LEN = 82
#: Largest Token-2022 associated token account we fund (165 + account type + ImmutableOwner and
#: transfer-fee/hook extension headroom), used to cap sponsored rent.
TOKEN_2022_ACCOUNT_MAX_LEN = 200
#: Bytes of metadata every account is charged rent for on top of its data.
ACCOUNT_STORAGE_OVERHEAD = 128

# --- amounts ------------------------------------------------------------------------------------------
#: SOL has 9 decimals: 1 SOL = 1_000_000_000 lamports.
SOL_DECIMALS = 9
LAMPORTS_PER_SOL = 10**SOL_DECIMALS
#: USDC (the mainnet mint, and the test mint the localnet faucet creates) has 6 decimals.
USDC_DECIMALS = 6
#: Base fee per signature, in lamports.
LAMPORTS_PER_SIGNATURE = 5_000
