"""Addresses of a Numpay smart wallet: the config PDA, the vault PDA (the user's address) and the
vault's associated token accounts (``docs/wallet-program.md``, "Addresses").
"""

from __future__ import annotations

from solders.pubkey import Pubkey

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
#: The key that stands for SOL in limits: 32 zero bytes (= the System program id).
SOL_MINT = Pubkey(bytes(32))

CONFIG_SEED = b"config"
VAULT_SEED = b"vault"


def config_address(program_id: Pubkey, creator: Pubkey) -> tuple[Pubkey, int]:
    """The config PDA of the wallet created by ``creator``: ``["config", creator]``.

    :returns: (address, canonical bump).
    """
    return Pubkey.find_program_address([CONFIG_SEED, bytes(creator)], program_id)


def vault_address(program_id: Pubkey, config: Pubkey) -> tuple[Pubkey, int]:
    """The vault PDA of a config: ``["vault", config]``; the wallet's public address.

    :returns: (address, canonical bump).
    """
    return Pubkey.find_program_address([VAULT_SEED, bytes(config)], program_id)


def associated_token_address(owner: Pubkey, mint: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID) -> Pubkey:
    """The associated token account of ``owner`` for ``mint`` under ``token_program`` (Token or Token-2022)."""
    address, _ = Pubkey.find_program_address([bytes(owner), bytes(token_program), bytes(mint)], ASSOCIATED_TOKEN_PROGRAM_ID)
    return address
