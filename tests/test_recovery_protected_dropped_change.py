"""A guardian change of a protected wallet proposed on-chain, then dropped by a recovery's execution
(``recovery_execute`` clears a pending guardian change, docs/wallet-program.md "12–14 Guardian changes"): the
chain refuses its ``guardians_apply`` and the server ends the change ``failed`` with a plain reason. The real
parts: localnet with the real wallet program, the Celery worker, the sweeps run by the test, software passkeys."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from recovery import chain, digests, services
from recovery.models import Guardian, RecoveryRequest
from tests.helpers import wait_until
from tests.recovery_support import (  # noqa: F401 - worker_without_beat is a fixture
    person,
    recovery_outbox,
    sign,
    start_collecting,
    sweep_until_started,
    worker_without_beat,
)
from tests.test_recovery_protected_cancel_refused import _proposed, _protected_owner, _sweep_until
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

DELAY = 300  # seconds: the proposal would wait this long; the recovery executes well before
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = DELAY
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 2


@pytest.mark.usefixtures("worker_without_beat")
def test_a_change_dropped_by_a_recovery_is_refused_on_chain_and_ends_failed_with_the_reason(make_user: Any) -> None:
    # given a protected wallet with a guardian on-chain and the owner's confirmed addition of a second proposed
    g1, g2 = (person(make_user, f"guardian{n}@example.com") for n in range(1, 3))
    owner = _protected_owner(make_user, delay=DELAY, active_guardians=(g1,))
    assert _chain_guardians(owner) == {_key(g1)}
    second = _accepted(owner, g2)
    _owner_approves(owner, second, "confirm")
    assert _sweep_until(lambda: _proposed(owner, [_key(g1), _key(g2)], 2)), _setup(owner).chain_sync_error
    # when a recovery approved by the first guardian executes on-chain before the proposal's delay passed
    request, _token, _new_soft = start_collecting(owner)
    services.recovery_approve(request_id=request.id, user=g1.user,
                              credential=sign(g1, digests.approval_challenge(request)))
    assert sweep_until_started(request)

    def executed() -> bool:
        services.guardian_sync_sweep()
        services.recovery_due_sweep()
        return RecoveryRequest.objects.get(pk=request.pk).status == RecoveryRequest.Status.EXECUTED

    assert wait_until(executed, timeout=90, interval=0.2), RecoveryRequest.objects.get(pk=request.pk).end_reason
    # then the chain dropped the proposal and refuses to apply it
    assert not _config(owner).guardian_change_pending
    apply = chain.apply_instructions(wallet=owner.user.wallet, keys=[_key(g1), _key(g2)], threshold=2)
    assert _send(apply) == ProgramErrorCode.NO_GUARDIAN_CHANGE_PENDING
    # and the server ends the change failed, with the reason in plain words, and asks the owner to confirm again
    assert _sweep_until(lambda: _setup(owner).chain_sync == "failed")
    setup = _setup(owner)
    assert (setup.chain_change_step, setup.chain_change) == ("", None)
    assert setup.chain_sync_error.startswith("Your account was recovered after this guardian change was proposed")
    second.refresh_from_db()
    assert (second.status, second.owner_confirmed_at, second.change_effective_at) == ("pending", None, None)
    mails = [m for m in recovery_outbox() if m.subject == "A guardian change was not written on your wallet"]
    assert len(mails) == 1
    assert "Your account was recovered" in mails[0].body
    assert _chain_guardians(owner) == {_key(g1)}
    assert Guardian.objects.get(owner=owner.user, guardian_user=g1.user).status == "active"
