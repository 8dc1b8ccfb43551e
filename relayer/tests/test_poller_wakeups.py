"""The poller's wake-ups (``relayer.tasks.poll_now`` / ``poll_round``): a push that arrives while a round runs is
never left to the next scheduled round — the running round is followed by another one right after it.

The round's own work (``_poll_once``: statuses, outcomes) is proven by the payment tests; here it is replaced by a
recorder, so the order of events (push during a round, a queued round finding the lock held) is exact. The
shared cache is the real one of the test settings.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from relayer import tasks


@pytest.fixture
def rounds(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Rounds run and rounds queued; a test sets ``during`` to what happens inside round ``n``."""
    record: dict[str, Any] = {"ran": 0, "queued": 0, "during": {}}
    cache.delete_many([tasks.POLLER_LOCK_KEY, tasks.POLL_AGAIN_KEY, tasks.POLL_NOW_KEY])

    def once() -> int:
        record["ran"] += 1
        assert cache.get(tasks.POLLER_LOCK_KEY) is not None  # always under the single-flight lock
        action = record["during"].get(record["ran"])
        if action is not None:
            action()
        return 0

    monkeypatch.setattr(tasks, "_poll_once", once)
    monkeypatch.setattr(tasks.outbox_poll_now, "apply_async",
                        lambda *args, **kwargs: record.__setitem__("queued", record["queued"] + 1))
    monkeypatch.setattr(tasks, "schedule_poller", lambda *args, **kwargs: None)
    yield record
    cache.delete_many([tasks.POLLER_LOCK_KEY, tasks.POLL_AGAIN_KEY, tasks.POLL_NOW_KEY])


def test_a_push_with_no_round_running_queues_one_round(rounds: dict[str, Any]) -> None:
    # when two pushes arrive with no round running
    tasks.poll_now()
    tasks.poll_now()
    # then one round was queued, and the push is marked for it
    assert rounds["queued"] == 1
    assert cache.get(tasks.POLL_AGAIN_KEY) == 1


def test_a_round_without_a_push_runs_once(rounds: dict[str, Any]) -> None:
    # given no push; when a round runs
    result = tasks.poll_round()
    # then it ran once, released the lock and queued nothing
    assert (result, rounds["ran"], rounds["queued"]) == (0, 1, 0)
    assert cache.get(tasks.POLLER_LOCK_KEY) is None


def test_a_push_during_a_round_runs_a_follow_up_round(rounds: dict[str, Any]) -> None:
    # given a push that arrives while the first round runs (its queued round has not started yet)
    rounds["during"][1] = tasks.poll_now
    # when the round runs
    tasks.poll_round()
    # then a second round ran right after it, in the same task; no round was queued for it (one was running)
    assert (rounds["ran"], rounds["queued"]) == (2, 0)
    assert cache.get(tasks.POLL_AGAIN_KEY) is None


def test_a_pushed_round_that_finds_the_lock_held_is_not_lost(rounds: dict[str, Any]) -> None:
    # given a push queued its round just before round 1 took the lock, and that queued round starts, on another
    # thread, while round 1 still holds the lock
    def push_and_its_round() -> None:
        cache.set(tasks.POLL_AGAIN_KEY, 1)
        assert tasks.outbox_poll_now.run() == -1  # another round is running: it ends without a round
    rounds["during"][1] = push_and_its_round
    # when round 1 ends
    tasks.poll_round()
    # then the running task took the push up: one follow-up round
    assert rounds["ran"] == 2
    assert cache.get(tasks.POLLER_LOCK_KEY) is None


def test_a_push_just_after_the_last_check_is_taken_up_after_the_lock_is_released(
        rounds: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # given a push that lands between the round's last look at the mark and the lock's release (simulated: the
    # mark appears when the lock is deleted)
    real_delete = cache.delete
    pushed = []

    def delete(key: str, *args: Any, **kwargs: Any) -> Any:
        result = real_delete(key, *args, **kwargs)
        if key == tasks.POLLER_LOCK_KEY and not pushed:
            pushed.append(True)
            cache.set(tasks.POLL_AGAIN_KEY, 1)
        return result
    monkeypatch.setattr(tasks.cache, "delete", delete)
    # when a round runs
    tasks.poll_round()
    # then it looked again after releasing the lock, took it again and ran the follow-up round
    assert rounds["ran"] == 2
    assert cache.get(tasks.POLLER_LOCK_KEY) is None


def test_follow_ups_stop_after_their_time_and_hand_the_push_to_a_queued_round(
        rounds: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # given a push during every round, and no follow-up time left after the first round
    for n in range(1, 5):
        rounds["during"][n] = tasks.poll_now
    monkeypatch.setattr(tasks, "FOLLOW_UP_SECONDS", 0.0)
    # when a round runs
    tasks.poll_round()
    # then it ran once and queued a round for the pending push (the pushes during the round queued none)
    assert rounds["ran"] == 1
    assert rounds["queued"] == 1
    assert cache.get(tasks.POLL_AGAIN_KEY) == 1
