"""Addresses of a Numpay smart wallet: the config PDA, the vault PDA (the user's address) and the
vault's associated token accounts (``docs/wallet-program.md``, "Addresses").
"""

from __future__ import annotations

from solders.pubkey import Pubkey

from numpay.core.solana.programs import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

__all__ = [
    "ASSOCIATED_TOKEN_PROGRAM_ID",
    "CONFIG_SEED",
    "SOL_MINT",
    "TOKEN_2022_PROGRAM_ID",
    "TOKEN_PROGRAM_ID",
    "VAULT_SEED",
    "associated_token_address",
    "config_address",
    "vault_address",
]
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
