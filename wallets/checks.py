"""System checks of the wallets settings (run by ``manage.py check`` and at server start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from .app_settings import app_settings


@register()
def balance_cache_and_faucet_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The balance cache lifetime is not negative, and it is only on with a cache every process shares
    (DESIGN.md invariant 7: a confirmation invalidates it in every process); the faucet settings parse."""
    problems: list[CheckMessage] = []
    seconds = app_settings.BALANCE_CACHE_SECONDS
    if seconds < 0:
        problems.append(Error("SOLANA_BALANCE_CACHE_SECONDS cannot be negative (0 turns the cache off).",
                              id="wallets.E001"))
    backend = settings.CACHES["default"]["BACKEND"]
    if seconds > 0 and backend.endswith(("LocMemCache", "DummyCache")):
        problems.append(Error(f"The balance cache is on but the cache ({backend}) is not shared between processes: "
                              "a confirmation in the worker would not reach the web process.", id="wallets.E002",
                              hint="Use Redis (REDIS_URL) or the embedded file cache, or set "
                                   "SOLANA_BALANCE_CACHE_SECONDS=0."))
    if app_settings.FAUCET_MAX_TOKENS <= 0:
        problems.append(Error("FAUCET_MAX_TOKENS must be positive.", id="wallets.E003"))
    from .throttling import FaucetRateThrottle

    try:
        FaucetRateThrottle().parse_rate(app_settings.FAUCET_RATE)
    except (ValueError, KeyError, IndexError):
        problems.append(Error(f"API_THROTTLE_FAUCET {app_settings.FAUCET_RATE!r} is not a rate like '30/min'.",
                              id="wallets.E004"))
    from solders.pubkey import Pubkey

    from .smart import limit_base_units

    try:
        Pubkey.from_string(app_settings.WALLET_PROGRAM_ID)
    except ValueError:
        problems.append(Error(f"NUMPAY_WALLET_PROGRAM_ID {app_settings.WALLET_PROGRAM_ID!r} is not a Solana address.",
                              id="wallets.E005"))
    try:
        for caps in app_settings.WALLET_LIMITS.values():
            for cap in caps:
                limit_base_units(cap, decimals=9)
    except ValueError as exc:
        problems.append(Error(f"NUMPAY_WALLET_LIMITS: {exc}", id="wallets.E006",
                              hint="e.g. USDC=1000/5000,SOL=10/50 (whole tokens per transaction / per day)."))
    return problems
