"""A passkey-approved cancel of a guardian change the chain already holds, refused on-chain, and the sweep's
reconciliation of a change the database cancelled but the chain applied anyway (``guardians_apply`` is
permissionless), with the real parts: localnet with the real wallet program, the Celery worker (it sends and
confirms the outbox's transactions; the test runs the sweeps, as beat would), software passkeys
(recovery/services/onchain_guardians.py: ``cancelling_of``, ``change_failed_locked``, ``cancelled_follow_chain``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, override_settings
from django.utils import timezone

from recovery import chain, services
from recovery.models import Guardian, RecoveryEvent, RecoverySetup
from tests.helpers import wait_until
from tests.recovery_support import (  # noqa: F401 - worker_without_beat is a fixture
    add_guardian,
    person,
    recovery_outbox,
    worker_without_beat,
)
from tests.test_recovery_protected_guardians import (
    _accepted,
    _chain_guardians,
    _config,
    _key,
    _owner_approves,
    _send,
    _setup,
)
from wallets.program import ProgramErrorCode

DELAY = 15  # seconds: the wallet's on-chain guardian change delay (the steps before it passes take a few seconds)
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = DELAY
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 2


def _sweep_until(condition: Callable[[], bool], *, timeout: float = 60) -> bool:
    """Run the guardian sync sweep (as beat would) until ``condition`` holds; the worker lands what it sends."""
    def done() -> bool:
        services.guardian_sync_sweep()
        return condition()

    return bool(wait_until(done, timeout=timeout, interval=0.2))


def _protected_owner(make_user: Any, *, delay: int = DELAY, active_guardians: tuple[Any, ...] = ()) -> Any:
    """An owner whose wallet is in protected mode (the custody key keeps only ``spend``; the guardian change
    delay ``delay`` and the guardians ``active_guardians``, made active while custodial, written first), the
    sweeps run by the test."""
    from solders.pubkey import Pubkey

    from wallets.program import SOL_MINT, Authority, Limit, add_authority, set_limits, set_permissions
    from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND
    from wallets.smart import wallet_program_id

    owner = person(make_user, "owner@example.com")
    for guardian in active_guardians:
        with override_settings(NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS=0):
            add_guardian(owner, guardian)
    wallet = owner.user.wallet
    setup = services.recovery_setup(user=owner.user)
    from django.db import transaction

    with transaction.atomic():
        services.sync.sync_mark_locked(setup)
    assert _sweep_until(lambda: _setup(owner).chain_sync == "" and _config(owner) is not None
                        and _config(owner).guardian_change_delay == delay), _setup(owner).chain_sync_error
    program, custody = wallet_program_id(), Pubkey.from_string(wallet.signing_address)
    key = _key(owner)
    assert _send([
        add_authority(program, custody, custody, Authority.passkey(key, PERMISSION_MANAGE | PERMISSION_SPEND)),
        set_limits(program, custody, custody, key, Limit(SOL_MINT, 10**9, 10**9)),
        set_permissions(program, custody, custody, custody, PERMISSION_SPEND)], custody_of=wallet) is None
    return owner


def _proposed(owner: Any, keys: list[bytes], threshold: int) -> bool:
    setup, config = _setup(owner), _config(owner)
    return (setup.chain_change_step == "apply" and setup.chain_change_effective_at is not None
            and config.guardian_change_pending and bytes(config.guardian_change_hash) == chain.change_hash(keys,
                                                                                                          threshold))


@pytest.mark.usefixtures("worker_without_beat")
def test_a_refused_cancel_leaves_the_change_pending_as_on_chain_and_the_owner_cancels_again(make_user: Any) -> None:
    # given a protected wallet whose owner confirmed a guardian: the addition is proposed on-chain
    owner = _protected_owner(make_user)
    g1 = person(make_user, "guardian1@example.com")
    first = _accepted(owner, g1)
    _owner_approves(owner, first, "confirm")
    assert _sweep_until(lambda: _proposed(owner, [_key(g1)], 1)), _setup(owner).chain_sync_error
    # when the owner cancels it with their passkey: until the cancel lands it is "cancelling", still pending
    _owner_approves(owner, Guardian.objects.get(pk=first.pk), "cancel")
    first.refresh_from_db()
    assert (first.status, first.owner_confirmed_at is not None) == ("pending", True)
    api = Client()
    api.force_login(owner.user)
    assert [g["cancelling"] for g in api.get("/api/v1/recovery").json()["guardians"]] == [True]
    assert b'data-testid="guardian-cancelling"' in api.get("/recovery/guardians/").content
    assert _setup(owner).chain_change_step == "cancel"
    # and the chain refuses it (its passkey signature does not verify)
    setup = _setup(owner)
    approval = dict(setup.chain_change_approval)
    signature = bytearray.fromhex(approval["signature"])
    signature[-1] ^= 1
    approval["signature"] = signature.hex()
    RecoverySetup.objects.filter(pk=setup.pk).update(chain_change_approval=approval)
    assert _sweep_until(lambda: _setup(owner).chain_change_step == "apply"
                        and RecoveryEvent.objects.filter(kind="guardian_change_cancel_refused").exists())
    # then the change stays pending in both: the chain keeps the proposal, the guardian is still confirmed
    first.refresh_from_db()
    assert (first.status, first.owner_confirmed_at is not None) == ("pending", True)
    config = _config(owner)
    assert config.guardian_change_pending
    assert bytes(config.guardian_change_hash) == chain.change_hash([_key(g1)], 1)
    assert _chain_guardians(owner) == set()
    assert _setup(owner).chain_change == {"keys": [_key(g1).hex()], "threshold": 1}
    # and the owner is told plainly, by email and on the page, and may cancel again
    assert any(m.subject == "Your guardian change was NOT cancelled" for m in recovery_outbox())
    overview = api.get("/api/v1/recovery").json()
    assert [g["cancelling"] for g in overview["guardians"]] == [False]
    assert "was refused" in overview["chain"]["error"]
    page = api.get("/recovery/guardians/").content
    assert b"was refused" in page
    assert b"cancel it again" in page
    assert _sweep_until(lambda: _setup(owner).chain_change_effective_at is not None)
    _owner_approves(owner, Guardian.objects.get(pk=first.pk), "cancel")
    assert _sweep_until(lambda: _setup(owner).chain_change_step == "" and _setup(owner).chain_sync == ""
                        and not Guardian.objects.get(pk=first.pk).change_on_chain), _setup(owner).chain_sync_error
    # then it is cancelled in both
    assert Guardian.objects.get(pk=first.pk).status == "cancelled"
    assert not _config(owner).guardian_change_pending
    assert _chain_guardians(owner) == set()


@pytest.mark.usefixtures("worker_without_beat")
def test_a_change_cancelled_here_but_applied_on_chain_by_anyone_is_followed_and_the_owner_alerted(make_user: Any) -> None:
    # given a protected wallet with a proposed addition, and a database that shows it cancelled while the chain
    # keeps the proposal (what a refused cancel left before: status cancelled, no change under way)
    owner = _protected_owner(make_user)
    g1 = person(make_user, "guardian1@example.com")
    first = _accepted(owner, g1)
    _owner_approves(owner, first, "confirm")
    assert _sweep_until(lambda: _proposed(owner, [_key(g1)], 1)), _setup(owner).chain_sync_error
    Guardian.objects.filter(pk=first.pk).update(status="cancelled", removed_at=timezone.now(), change_effective_at=None)
    RecoverySetup.objects.filter(user=owner.user).update(chain_change_step="", chain_change=None,
                                                         chain_change_effective_at=None, chain_sync="")
    # while the chain holds it, the sweep waits and says so; nothing is activated
    services.guardian_sync_sweep()
    first.refresh_from_db()
    assert (first.status, first.change_on_chain) == ("cancelled", True)
    assert "pending guardian change you cancelled" in _setup(owner).chain_sync_error
    # when anyone applies it once its delay passed (guardians_apply needs no owner signature)
    apply = chain.apply_instructions(wallet=owner.user.wallet, keys=[_key(g1)], threshold=1)
    assert wait_until(lambda: _send(apply) != ProgramErrorCode.GUARDIAN_CHANGE_NOT_READY, timeout=DELAY + 30)
    assert _chain_guardians(owner) == {_key(g1)}
    # then the database follows the chain's guardian set and the owner is alerted, once
    assert _sweep_until(lambda: Guardian.objects.get(pk=first.pk).status == "active")
    services.guardian_sync_sweep()
    first.refresh_from_db()
    assert first.change_on_chain is False
    alerts = [m for m in recovery_outbox() if m.subject == "A guardian you cancelled is now on your wallet"]
    assert len(alerts) == 1
    assert RecoveryEvent.objects.filter(guardian=first, kind="guardian_activated").count() == 1
