"""System checks of settings that must agree (relayer/checks.py, wallets/checks.py, numpay/core/checks.py)."""

from __future__ import annotations

import pytest

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


@pytest.mark.django_db
def test_default_policy_caps_must_fit_the_on_chain_limits(settings) -> None:
    from payments.checks import default_policy_fits_the_on_chain_limits
    from payments.models import SpendingPolicy
    from wallets.models import Token

    settings.NUMPAY_WALLET_LIMITS = "USDC=1000/5000,SOL=10/50"
    usdc = Token.objects.create(cluster="checks", symbol="USDC", name="USD Coin", mint="8" * 44, decimals=6)
    policy = SpendingPolicy.objects.create(name="Standard", scope="default", token=usdc,
                                           per_transaction_cap=1000 * 10**6, daily_cap=5000 * 10**6)
    # within the chain's limits (equal included): no warning; without a database: not run
    assert _ids(default_policy_fits_the_on_chain_limits(None, databases=["default"])) == []
    assert _ids(default_policy_fits_the_on_chain_limits(None, databases=None)) == []
    # above the per-transaction and the daily on-chain limits: one warning each
    SpendingPolicy.objects.filter(pk=policy.pk).update(per_transaction_cap=1000 * 10**6 + 1, daily_cap=6000 * 10**6)
    messages = default_policy_fits_the_on_chain_limits(None, databases=["default"])
    assert _ids(messages) == ["payments.W001", "payments.W001"]
    assert "allows 1000.000001 USDC (per_transaction_cap), above the on-chain limit of 1000 USDC" in messages[0].msg
    # a user's own or a group policy is not the default: not checked
    SpendingPolicy.objects.filter(pk=policy.pk).update(is_active=False)
    assert _ids(default_policy_fits_the_on_chain_limits(None, databases=["default"])) == []
