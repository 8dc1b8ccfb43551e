"""Smart wallets: the Numpay wallet program's addresses, the custody key's on-chain limits, the config.

A smart wallet's public address is its vault, a PDA of the program derived from its config, itself a PDA
of the creator key (docs/wallet-program.md, "Addresses"). In custodial mode the creator is the wallet's
custody key, which is also its only owner authority (``spend`` + ``manage``) with the limits of
``NUMPAY_WALLET_LIMITS``. The config is created lazily: the wallet's payments put ``create`` in front of
their ``execute`` until the config is on-chain (``create`` is a no-op on an existing config of the same
creator).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from numpay.core.solana import ChainClient
from numpay.core.solana.programs import ACCOUNT_STORAGE_OVERHEAD
from wallets.program import (
    SOL_MINT,
    Authority,
    Limit,
    WalletConfig,
    config_address,
    create,
    decode_config,
    vault_address,
)
from wallets.program.config import CONFIG_LEN
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND

from .app_settings import app_settings
from .models import Token, Wallet

#: The period of the daily cap, seconds.
DAY_SECONDS = 86_400
#: Data bytes of a config account and what its rent is computed on (docs/wallet-program.md).
CONFIG_ACCOUNT_LEN = CONFIG_LEN
CONFIG_RENT_BYTES = ACCOUNT_STORAGE_OVERHEAD + CONFIG_LEN
U64_MAX = 2**64 - 1


def wallet_program_id() -> Pubkey:
    """The Numpay wallet program's address on this cluster (``NUMPAY_WALLET_PROGRAM_ID``)."""
    return Pubkey.from_string(app_settings.WALLET_PROGRAM_ID)


def smart_wallet_addresses(*, authority: str) -> tuple[str, str]:
    """``(config address, vault address)`` of the wallet whose creator is ``authority`` (base58)."""
    program = wallet_program_id()
    config, _ = config_address(program, Pubkey.from_string(authority))
    vault, _ = vault_address(program, config)
    return str(config), str(vault)


def limit_base_units(text: str, *, decimals: int) -> int:
    """Whole-token decimal ``text`` (``"12.5"``) in base units, as a u64.

    :raises ValueError: not a non-negative decimal, too many decimals, or above u64.
    """
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a decimal number") from exc
    base_units = value * (Decimal(10) ** decimals)
    if not value.is_finite() or value < 0 or base_units != base_units.to_integral_value() or base_units > U64_MAX:
        raise ValueError(f"{text!r} is not an amount with at most {decimals} decimals")
    return int(base_units)


def token_program_mint(token: Token) -> Pubkey:
    """The key that stands for ``token`` in the program's limits (``SOL_MINT`` for SOL)."""
    return SOL_MINT if token.is_native else Pubkey.from_string(token.mint)


def custody_limits(tokens: list[Token]) -> list[Limit]:
    """The custody key's limits for ``tokens`` from ``NUMPAY_WALLET_LIMITS`` (tokens not listed get none:
    the program refuses to send them)."""
    configured = app_settings.WALLET_LIMITS
    limits = []
    for token in tokens:
        if token.symbol.upper() not in configured:
            continue
        per_transaction, daily = configured[token.symbol.upper()]
        limits.append(Limit(mint=token_program_mint(token),
                            per_transaction_cap=limit_base_units(per_transaction, decimals=token.decimals),
                            period_cap=limit_base_units(daily, decimals=token.decimals),
                            period_seconds=DAY_SECONDS))
    return limits


def config_create_instruction(*, wallet: Wallet, payer: Pubkey, tokens: list[Token]) -> Instruction:
    """``create`` of ``wallet``'s config: the custody key is creator and only owner (spend + manage)
    with :func:`custody_limits`; ``payer`` funds the config's rent."""
    authority = Pubkey.from_string(wallet.signing_address)
    return create(wallet_program_id(), authority, payer,
                  [Authority(authority, PERMISSION_SPEND | PERMISSION_MANAGE)],
                  [(authority, limit) for limit in custody_limits(tokens)])


def wallet_config_read(*, client: ChainClient, wallet: Wallet) -> WalletConfig | None:
    """The wallet's config as the chain holds it now, or ``None`` when it is not created yet (or the
    wallet is a keypair wallet).

    :raises ChainUnavailableError: the chain could not be read.
    """
    if not wallet.is_smart or not wallet.config_address:
        return None
    account = client.get_account_info(Pubkey.from_string(wallet.config_address))
    if account is None or account.owner != wallet_program_id():
        return None
    try:
        return decode_config(account.data)
    except ValueError:
        return None
