"""Reads for wallets: balances from the chain (short cache), the token registry."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from solders.pubkey import Pubkey

from numpay.core.money import format_amount, format_money
from numpay.core.solana import ChainClient, get_chain_client

from .app_settings import app_settings
from .models import Token, Wallet


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
