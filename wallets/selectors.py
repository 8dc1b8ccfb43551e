"""Reads for wallets: balances from the chain (short cache), the token registry, a smart wallet's on-chain
rules."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from solders.pubkey import Pubkey

from numpay.core.money import format_amount, format_money
from numpay.core.solana import ChainClient, get_chain_client
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND

from .app_settings import app_settings
from .models import Token, Wallet
from .smart import custody_limits, token_program_mint, wallet_config_read, wallet_program_id


def balance_cache_key(address: str, symbol: str) -> str:
    """Cache key of a chain balance (short-lived; DESIGN.md invariant 6)."""
    return f"balance:{address}:{symbol}"


@dataclass(frozen=True)
class Balance:
    """One token balance of a wallet.

    :ivar amount: base units (lamports for SOL).
    :ivar ui_amount: ``amount / 10**decimals`` as a plain decimal string.
    """

    token: str
    name: str
    mint: str
    decimals: int
    amount: int

    @property
    def ui_amount(self) -> str:
        return format_amount(self.amount, decimals=self.decimals)

    @property
    def display_amount(self) -> str:
        """Money formatting for pages (``"1,234.50"``)."""
        return format_money(self.amount, decimals=self.decimals)


def tokens_active() -> QuerySet[Token]:
    """Active tokens on this cluster, SOL first."""
    return Token.objects.filter(cluster=settings.SOLANA_CLUSTER, is_active=True)


def token_chain_balance(*, client: ChainClient, address: str, token: Token) -> int:
    """Chain balance of one token in base units, cached ``SOLANA_BALANCE_CACHE_SECONDS``.

    :raises ChainUnavailableError: the RPC endpoint is unreachable.
    """
    key = balance_cache_key(address, token.symbol)
    cached = cache.get(key)
    if cached is not None:
        return int(cached)
    owner = Pubkey.from_string(address)
    if token.is_native:
        amount = client.get_balance(owner)
    else:
        amount = client.get_token_balance(owner, Pubkey.from_string(token.mint))
    if app_settings.BALANCE_CACHE_SECONDS:
        cache.set(key, amount, app_settings.BALANCE_CACHE_SECONDS)
    return amount


def wallet_balances(*, wallet: Wallet, client: ChainClient | None = None) -> list[Balance]:
    """Chain balances of every active token for ``wallet`` (DESIGN.md invariant 6).

    :raises ChainUnavailableError: the RPC endpoint is unreachable.
    """
    client = client or get_chain_client()
    return [
        Balance(token=token.symbol, name=token.name, mint=token.mint, decimals=token.decimals,
                amount=token_chain_balance(client=client, address=wallet.address, token=token))
        for token in tokens_active()
    ]


@dataclass(frozen=True)
class LimitRule:
    """One on-chain limit of an authority for one token, amounts in base units of ``token``.

    :ivar spent: spent in the current period (0 once the period has passed: the program rolls it at the
        next spend). :ivar period_start: unix seconds; ``None`` before the config exists.
    """

    token: str
    mint: str
    decimals: int
    per_transaction: int
    per_period: int
    period_seconds: int
    spent: int
    period_start: int | None

    @property
    def ui_per_transaction(self) -> str:
        return format_amount(self.per_transaction, decimals=self.decimals)

    @property
    def ui_per_period(self) -> str:
        return format_amount(self.per_period, decimals=self.decimals)

    @property
    def ui_spent(self) -> str:
        return format_amount(self.spent, decimals=self.decimals)


@dataclass(frozen=True)
class AuthorityRule:
    """An authority of the wallet: its key, permission names, expiry (unix seconds, ``None`` = never),
    whether it is Numpay's custody key, and its limits."""

    key: str
    permissions: tuple[str, ...]
    expires_at: int | None
    is_custody_key: bool
    limits: tuple[LimitRule, ...]


@dataclass(frozen=True)
class WalletRules:
    """A smart wallet's on-chain rules as the chain holds them, or, before its config exists
    (``is_created`` False), the rules its first payment will write."""

    program_id: str
    config_address: str
    is_created: bool
    nonce: int
    authorities: tuple[AuthorityRule, ...]


_PERMISSION_NAMES = ((1, "spend"), (2, "manage"), (4, "guardian"), (8, "recovery_cancel"))


def wallet_rules(*, wallet: Wallet, client: ChainClient | None = None, now: int | None = None) -> WalletRules | None:
    """The on-chain rules of ``wallet`` (``None`` for a keypair wallet): authorities with their
    permissions, and per token the per-transaction and per-period caps and what was spent this period.

    :raises ChainUnavailableError: the chain could not be read.
    """
    if not wallet.is_smart:
        return None
    client = client or get_chain_client()
    now = int(time.time()) if now is None else now
    tokens = list(tokens_active())
    by_mint = {str(token_program_mint(token)): token for token in tokens}

    def limit_rule(mint: str, per_transaction: int, per_period: int, period_seconds: int, spent: int,
                   period_start: int | None) -> LimitRule:
        token = by_mint.get(mint)
        return LimitRule(token=token.symbol if token else mint, mint=token.mint if token else mint,
                         decimals=token.decimals if token else 0, per_transaction=per_transaction,
                         per_period=per_period, period_seconds=period_seconds, spent=spent, period_start=period_start)

    def names(bits: int) -> tuple[str, ...]:
        return tuple(name for bit, name in _PERMISSION_NAMES if bits & bit)

    config = wallet_config_read(client=client, wallet=wallet)
    if config is None:
        limits = tuple(limit_rule(str(limit.mint), limit.per_transaction_cap, limit.period_cap, limit.period_seconds,
                                  0, None) for limit in custody_limits(tokens))
        authority = AuthorityRule(key=wallet.signing_address, permissions=names(PERMISSION_SPEND | PERMISSION_MANAGE),
                                  expires_at=None, is_custody_key=True, limits=limits)
        return WalletRules(program_id=str(wallet_program_id()), config_address=wallet.config_address,
                           is_created=False, nonce=0, authorities=(authority,))
    authorities = tuple(
        AuthorityRule(key=str(entry.key), permissions=names(entry.permissions), expires_at=entry.expires_at or None,
                      is_custody_key=str(entry.key) == wallet.signing_address,
                      limits=tuple(limit_rule(str(limit.mint), limit.per_transaction_cap, limit.period_cap,
                                              limit.period_seconds, limit.spent_at(now), limit.period_start)
                                   for limit in config.limits if limit.authority == entry.key))
        for entry in config.authorities)
    return WalletRules(program_id=str(wallet_program_id()), config_address=wallet.config_address, is_created=True,
                       nonce=config.nonce, authorities=authorities)

