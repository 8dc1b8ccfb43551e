"""Project-wide pytest fixtures: a real localnet chain, a real Celery worker, users with wallets.

The chain is ``python -m localnet`` on a free port with its own ledger (session scope); the settings
that point at it (RPC URL, fee payer and faucet key files) are overridden for the whole session.
The Celery worker is Celery's own in-process worker (``celery.contrib.testing``) consuming the real
broker from ``CELERY_BROKER_URL`` (Redis in CI, SQLite via SQLAlchemy by default).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from solders.keypair import Keypair

from tests.helpers import wait_until

_emails = itertools.count(1)


@pytest.fixture(scope="session")
def localnet_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A running localnet (50 ms slots) for the whole test session, with the Numpay wallet program
    (``programs/wallet/numpay_wallet.so``) loaded at genesis at ``NUMPAY_WALLET_PROGRAM_ID``."""
    from localnet.testing import Localnet
    from wallets.app_settings import WALLET_PROGRAM_SO, app_settings

    ledger = tmp_path_factory.mktemp("ledger")
    program = (app_settings.WALLET_PROGRAM_ID, Path(__file__).resolve().parent / WALLET_PROGRAM_SO)
    node = Localnet(ledger_dir=ledger, slot_ms=50, programs=[program])
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def chain_setup(localnet_node: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Settings pointed at the session's localnet, fee payer and faucet funded, test USDC mint created."""
    keys = Path(tmp_path_factory.mktemp("keys"))
    fee_payer = Keypair()
    overrides = override_settings(
        SOLANA_RPC_URL=localnet_node.url,  # type: ignore[attr-defined]
        SOLANA_CLUSTER="localnet",
        RELAYER_FEE_PAYER_KEYPAIR=json.dumps(list(bytes(fee_payer))),
        FAUCET_KEYPAIR_PATH=str(keys / "faucet-keypair.json"),
    )
    overrides.enable()
    from wallets.faucet import localnet_chain_setup

    result = localnet_chain_setup()
    yield {"usdc_mint": result.usdc_mint, "fee_payer": result.fee_payer, "faucet": result.faucet}
    overrides.disable()


@pytest.fixture(scope="session", autouse=True)
def _empty_shared_cache() -> None:
    """A test session starts with an empty shared cache, as a new deployment does: entries left in Redis by an
    earlier session describe another localnet (its mint, its accounts) and a session-scoped fixture would read
    them before any per-test reset (seen: the faucet minting with an earlier session's mint)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _forget_cached_rows() -> None:
    """Each test has its own database rows: the shared cache's copies of rows (``numpay.core.rowcache``) made
    by an earlier test are forgotten (a rolled-back test's writes never reach the receivers that would)."""
    from numpay.core import rowcache
    from payments.models import POLICIES_CACHE
    from wallets.models import TOKENS_CACHE

    for namespace in (TOKENS_CACHE, POLICIES_CACHE):
        rowcache.forget(namespace)


@pytest.fixture
def tokens(chain_setup: dict[str, str], db: None) -> dict[str, object]:
    """SOL and test USDC registered for this test's database."""
    from wallets.faucet import token_registry_ensure
    from wallets.models import Token

    token_registry_ensure(usdc_mint=chain_setup["usdc_mint"])
    return {t.symbol: t for t in Token.objects.all()}


@pytest.fixture
def make_user(db: None):  # noqa: ANN201
    """Factory: a user with a provisioned wallet (``make_user(email=None, password="pw-Numpay-1")``)."""
    from accounts.models import User
    from wallets.services import wallet_provision

    def make(email: str | None = None, password: str = "pw-Numpay-1") -> User:  # noqa: S107
        user = User.objects.create_user(email=email or f"user{next(_emails)}@example.com", password=password)
        wallet_provision(user=user)
        return user

    return make


@pytest.fixture(scope="session")
def celery_worker_session(chain_setup: dict[str, str], django_db_setup: None) -> Iterator[object]:
    """A real Celery worker (threads pool, queues ``default`` and ``chain``) on the configured broker, for the
    session; Celery beat runs only during the tests that ask for ``celery_worker``."""
    from celery.contrib.testing.worker import start_worker

    from numpay.celery import app

    _purge_queues(app)
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, queues=["default", "chain"],
                      loglevel="WARNING", shutdown_timeout=30) as worker:
        yield worker


def _purge_queues(app: Any) -> None:
    with app.connection_for_write() as connection:
        for queue in ("default", "chain"):
            try:
                connection.default_channel.queue_purge(queue)
            except Exception:  # noqa: BLE001, S110 - the queue may not exist yet
                pass


@pytest.fixture
def celery_worker(celery_worker_session: object, transactional_db: None, tokens: dict[str, object],
                  tmp_path: Path) -> Iterator[object]:
    """Use the session worker, with Celery beat (the periodic sweeps), in a test whose commits are visible to
    it; waits for open payments at the end. Beat runs only during such tests: a sweep it fired while another
    test's database is flushed (TRUNCATE) could deadlock with it."""
    from celery.beat import EmbeddedService

    from numpay.celery import app

    beat = EmbeddedService(app, thread=True, schedule_filename=str(tmp_path / "beat-schedule"))
    beat.start()
    yield celery_worker_session
    from payments.models import Payment

    try:
        wait_until(lambda: not Payment.objects.filter(status__in=Payment.OPEN_STATUSES).exists(), timeout=60)
    finally:
        beat.stop()
    # then nothing of this test may run later: queued tasks are dropped, and the in-process worker finishes what
    # it is running (the database is flushed next, and a task holding row locks while the flush truncates the
    # tables can deadlock it)
    _purge_queues(app)
    from celery.worker import state as worker_state

    wait_until(lambda: not worker_state.active_requests and not worker_state.reserved_requests,
               timeout=30, interval=0.05)

