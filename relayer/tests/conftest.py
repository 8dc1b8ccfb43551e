"""Fixtures for the relayer tests: a fresh in-memory fee payer, fixed rent and limits, users."""

from __future__ import annotations

import json

import pytest
from solders.keypair import Keypair

from relayer import services, signer

ATA_RENT_LAMPORTS = 2_039_280
MAX_LAMPORTS_PER_TX = 3_000_000
DAILY_BUDGET_LAMPORTS = 100_000


@pytest.fixture
def fee_payer(settings) -> Keypair:
    """A fresh fee payer keypair configured as the relayer's signer (the signer cache is cleared)."""
    keypair = Keypair()
    settings.RELAYER_FEE_PAYER_KEYPAIR = json.dumps(list(bytes(keypair)))
    signer._fee_payer.cache_clear()
    yield keypair
    signer._fee_payer.cache_clear()


@pytest.fixture(autouse=True)
def relayer_settings(settings):
    """Fixed relayer limits so expected values are exact; the ATA rent never needs the chain."""
    settings.RELAYER_ATA_RENT_LAMPORTS = ATA_RENT_LAMPORTS
    settings.RELAYER_MAX_LAMPORTS_PER_TX = MAX_LAMPORTS_PER_TX
    settings.RELAYER_DAILY_BUDGET_LAMPORTS = DAILY_BUDGET_LAMPORTS
    settings.RELAYER_SPONSOR_ATA_RENT = True
    settings.RELAYER_FEE_PAYER_ALERT_LAMPORTS = 1_000_000_000
    services._chain_ata_rent_lamports.cache_clear()
    yield settings
    services._chain_ata_rent_lamports.cache_clear()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(email="alice@example.com", password="x")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(email="bob@example.com", password="x")


@pytest.fixture
def sender() -> Keypair:
    """The paying user's wallet key (signs as the second signer)."""
    return Keypair()
