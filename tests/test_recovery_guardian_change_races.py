"""Two owner approvals of guardian changes of the same protected wallet at once (two confirmations, or a removal
and a confirmation), on PostgreSQL with the transactions interleaved deterministically (the first holds the
wallet and recovery setup row locks at the end of its transaction, the second is seen waiting on them in
``pg_stat_activity``, then the first commits); localnet with the real wallet program, the real worker, the sweeps
run by the test.

Each approval was computed from the same state, so each one's proposal would drop the other's change: at most
one proposal is stored and sent, the other is refused with a clear code (``owner_passkey_required``: confirm
again) and changes nothing; nothing is lost (the chain's proposal is the database's wanted set).

With the wallet and setup locks of ``recovery.services.onchain_guardians.guardian_change_approve`` removed, both
fail: both approvals are stored, the second overwrites the first's proposal, and the first's confirmed
change is missing from what is written on-chain."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections

from recovery import chain, services
from recovery.models import Guardian, GuardianSyncAttempt
from recovery.services.onchain_guardians import wanted_set
from tests.races import postgresql_only, wait_for_lock_waiters
from tests.recovery_support import person, worker_without_beat  # noqa: F401 - worker_without_beat is a fixture
from tests.test_recovery_protected_cancel_refused import _proposed, _protected_owner, _sweep_until
from tests.test_recovery_protected_guardians import _accepted, _config, _key, _setup
from tests.test_recovery_races import _outcome

DELAY = 300  # seconds: the proposals are never applied during the test
pytestmark = [postgresql_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = DELAY
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 2


def _approve(owner: Any, purpose: str, guardian: Guardian, options: dict[str, Any]) -> Any:
    return lambda: services.guardian_change_approve(owner=owner.user, purpose=purpose, guardian_id=guardian.pk,
                                                    credential=owner.soft.get(options["publicKey"]))


def _interleave(monkeypatch: Any, *, first: Callable[[], Any], second: Callable[[], Any]) -> tuple[str, str, bool]:
    """Run ``first`` until the end of its own transaction (its last statement, the event record, done; its row
    locks held, not committed), then ``second`` in another thread and connection; once ``second`` is seen
    waiting on a lock (or has finished), let ``first`` commit. The owner's passkey assertion of each
    (``assertion_verify``, before the transaction) commits on its own, as in a real request.

    :returns: both outcomes (``"done"`` or the error code) and whether ``second`` was seen waiting.
    """
    from recovery.services import onchain_guardians

    holding, release, outcomes = threading.Event(), threading.Event(), {}
    first_thread_id: list[int] = []
    record = onchain_guardians.event_record

    def held_record(**kwargs: Any) -> Any:
        result = record(**kwargs)
        if first_thread_id == [threading.get_ident()]:
            holding.set()
            release.wait(30)
        return result

    monkeypatch.setattr(onchain_guardians, "event_record", held_record)

    def run(name: str, call: Callable[[], Any]) -> None:
        try:
            outcomes[name] = _outcome(call)
        finally:
            holding.set()
            connections.close_all()

    first_thread = threading.Thread(target=lambda: (first_thread_id.append(threading.get_ident()), run("first", first)))
    first_thread.start()
    assert holding.wait(30)
    second_thread = threading.Thread(target=run, args=("second", second))
    second_thread.start()
    waited = wait_for_lock_waiters(1, give_up_when=lambda: not second_thread.is_alive())
    release.set()
    first_thread.join()
    second_thread.join()
    return outcomes["first"], outcomes["second"], waited


def _race(monkeypatch: Any, owner: Any, first: tuple[str, Guardian], second: tuple[str, Guardian]
          ) -> tuple[str, str, bool]:
    """Both challenges computed from the same state, then the two approvals interleaved."""
    options = [services.guardian_change_options(owner=owner.user, purpose=purpose, guardian_id=guardian.pk)
               for purpose, guardian in (first, second)]
    return _interleave(monkeypatch, first=_approve(owner, *first, options[0]),
                       second=_approve(owner, *second, options[1]))


def _references(owner: Any) -> set[Any]:
    return set(GuardianSyncAttempt.objects.filter(setup=_setup(owner)).values_list("reference", flat=True))


def _one_proposal_of_the_wanted_set(owner: Any, *, references_before: set[Any]) -> list[bytes]:
    """Send what is stored: one sync (one reference), whose proposal is the database's wanted set."""
    setup = _setup(owner)
    keys, threshold = wanted_set(owner=owner.user, setup=setup)
    assert setup.chain_change == {"keys": keys, "threshold": threshold}
    wanted = [bytes.fromhex(key) for key in keys]
    assert _sweep_until(lambda: _proposed(owner, wanted, threshold)), _setup(owner).chain_sync_error
    services.guardian_sync_sweep()  # nothing more is sent: the proposal waits for its delay
    assert len(_references(owner) - references_before) == 1
    assert bytes(_config(owner).guardian_change_hash) == chain.change_hash(wanted, threshold)
    return wanted


@pytest.mark.usefixtures("worker_without_beat")
def test_two_confirmations_at_once_store_and_send_one_proposal_the_other_is_asked_again(
        make_user: Any, monkeypatch: Any) -> None:
    # given a protected wallet with two accepted guardians waiting for the owner's confirmation
    owner = _protected_owner(make_user, delay=DELAY)
    g1, g2 = (person(make_user, f"guardian{n}@example.com") for n in range(1, 3))
    first, second = _accepted(owner, g1), _accepted(owner, g2)
    before, references = _setup(owner).chain_sync_version, _references(owner)
    # when the owner confirms both at once
    outcome_first, outcome_second, waited = _race(monkeypatch, owner, ("confirm", first), ("confirm", second))
    # then the second waited for the first, which won; the second is refused and changed nothing
    assert waited
    assert (outcome_first, outcome_second) == ("done", "owner_passkey_required")
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.owner_confirmed_at is not None, second.owner_confirmed_at) == (True, None)
    assert _setup(owner).chain_sync_version == before + 1
    # and one proposal, of the first alone, is sent
    assert _one_proposal_of_the_wanted_set(owner, references_before=references) == [_key(g1)]


@pytest.mark.usefixtures("worker_without_beat")
def test_a_removal_and_a_confirmation_at_once_store_and_send_one_proposal(make_user: Any, monkeypatch: Any) -> None:
    # given a protected wallet with an active guardian (on-chain) and an accepted one waiting for confirmation
    g1, g2 = (person(make_user, f"guardian{n}@example.com") for n in range(1, 3))
    owner = _protected_owner(make_user, delay=DELAY, active_guardians=(g1,))
    active = Guardian.objects.get(owner=owner.user, guardian_user=g1.user)
    accepted = _accepted(owner, g2)
    before, references = _setup(owner).chain_sync_version, _references(owner)
    # when the owner removes the first and confirms the second at once
    outcome_first, outcome_second, waited = _race(monkeypatch, owner, ("remove", active), ("confirm", accepted))
    # then the removal won, the confirmation is refused and changed nothing
    assert waited
    assert (outcome_first, outcome_second) == ("done", "owner_passkey_required")
    active.refresh_from_db(), accepted.refresh_from_db()
    assert (active.removal_requested_at is not None, accepted.owner_confirmed_at) == (True, None)
    assert _setup(owner).chain_sync_version == before + 1
    # and one proposal, without the removed guardian, is sent (the guardian counts until it is applied)
    assert _one_proposal_of_the_wanted_set(owner, references_before=references) == []
    assert active.status == "active"
