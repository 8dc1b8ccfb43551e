"""System checks of settings that must agree (relayer/checks.py, wallets/checks.py, numpay/core/checks.py)."""

from __future__ import annotations

from numpay.core.checks import shared_cache_and_proxies
from relayer.checks import sponsorship_limits_agree
from wallets.checks import balance_cache_and_faucet_settings


def _ids(messages: list) -> list[str]:
    return [message.id for message in messages]


def test_the_configured_settings_pass_every_check() -> None:
    assert _ids(sponsorship_limits_agree(None)) == []
    assert _ids(balance_cache_and_faucet_settings(None)) == []
    assert _ids(shared_cache_and_proxies(None)) == []


def test_a_balance_cache_in_a_per_process_cache_is_refused(settings) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.SOLANA_BALANCE_CACHE_SECONDS = 2
    assert _ids(balance_cache_and_faucet_settings(None)) == ["wallets.E002"]
    assert _ids(shared_cache_and_proxies(None)) == ["numpay.W003"]
    settings.SOLANA_BALANCE_CACHE_SECONDS = 0
    assert _ids(balance_cache_and_faucet_settings(None)) == []


def test_faucet_settings_must_parse(settings) -> None:
    settings.API_THROTTLE_FAUCET = "thirty a minute"
    settings.FAUCET_MAX_TOKENS = 0
    assert _ids(balance_cache_and_faucet_settings(None)) == ["wallets.E003", "wallets.E004"]


def test_relayer_cap_and_budget_must_agree(settings) -> None:
    settings.RELAYER_MAX_LAMPORTS_PER_TX = 0
    assert _ids(sponsorship_limits_agree(None)) == ["relayer.E002"]
    settings.RELAYER_MAX_LAMPORTS_PER_TX = 200
    settings.RELAYER_DAILY_BUDGET_LAMPORTS = 100
    assert _ids(sponsorship_limits_agree(None)) == ["relayer.W002"]


def test_allauth_and_drf_must_count_the_same_proxies(settings) -> None:
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    assert _ids(shared_cache_and_proxies(None)) == ["numpay.E004"]
