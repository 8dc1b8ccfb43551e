"""Celery tasks of the relayer (thin: each calls one service): the fee payer balance watch, and the outbox
(submit after commit, the single-flight status poller, per-submission checks, the stale sweep).

Retries only for :class:`~numpay.core.errors.ChainUnavailableError` (network, 429, 5xx, timeouts), bounded,
with backoff; every RPC call has a timeout in the chain client.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from numpay.core.errors import ChainUnavailableError

from . import outbox, services

logger = logging.getLogger(__name__)


@shared_task(
    name="relayer.tasks.fee_payer_balance_check",
    autoretry_for=(ChainUnavailableError,),
    retry_backoff=2,
    retry_backoff_max=20,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=30,
    time_limit=45,
    expires=55,
    ignore_result=True,
)
def fee_payer_balance_check() -> int:
    """Beat job (every 60 s): record the fee payer's balance and alert below the threshold.

    Idempotent (it overwrites the last observation), so overlapping runs are harmless; only an
    unreachable chain is retried, with backoff, at most 3 times.

    :returns: the balance in lamports.
    """
    return services.fee_payer_balance_check().last_balance_lamports or 0


# --- the outbox (relayer.outbox): queue ``chain`` ---------------------------------------------------------
POLL_INTERVAL_SECONDS = 0.2
POLLER_SCHEDULED_KEY = "outbox-poller-scheduled"
POLLER_LOCK_KEY = "outbox-poller-lock"
POLL_BATCH = 256
CHECK_QUEUED_KEY = "outbox-check-queued:{}:{}"
POLL_NOW_KEY = "outbox-poll-now"
#: Set by every push (:func:`poll_now`), cleared by each round before it reads statuses: "a push came since".
POLL_AGAIN_KEY = "outbox-poll-again"
POLL_AGAIN_TIMEOUT_SECONDS = 30
#: Seconds one task keeps running follow-up rounds for pushes that came during its rounds.
FOLLOW_UP_SECONDS = 5.0


def schedule_poller(countdown: float = POLL_INTERVAL_SECONDS) -> None:
    """Make sure one :func:`outbox_poll` run is queued (at most one scheduled at a time, across processes:
    the flag lives in the shared cache)."""
    if cache.add(POLLER_SCHEDULED_KEY, 1, timeout=5):
        outbox_poll.apply_async(countdown=countdown)


@shared_task(name="relayer.tasks.outbox_submit", autoretry_for=(ChainUnavailableError,), retry_backoff=1,
             retry_backoff_max=10, max_retries=12, time_limit=60, soft_time_limit=45, acks_late=True)
def outbox_submit(kind: str, owner_id: str) -> bool:
    """Send the owner's stored signed transaction, ask the endpoint to push its outcome
    (:func:`relayer.outbox.watch`), and make sure the status poller runs.

    :returns: whether the owner still waits for an outcome.
    """
    outbox_kind = outbox.get_kind(kind)
    # a push when the endpoint offers one (asked right after the send is recorded) ...
    owner = outbox.submit(kind=outbox_kind, owner_id=owner_id, and_watch=True)
    is_open = owner is not None and outbox_kind.is_open(owner)
    if is_open:
        schedule_poller()  # ... and the batched poller either way
    return is_open


@shared_task(name="relayer.tasks.outbox_poll", time_limit=60, soft_time_limit=45, acks_late=False)
def outbox_poll() -> int:
    """Look at every in-flight submission of every kind in batches (one ``getSignatureStatuses`` per 256)
    every 0.2 s while any is open: record the outcomes it reads (confirm, fail) itself, and hand those with a
    sending step (re-send, renew) to :func:`outbox_check`. The outcomes of one round are recorded in one
    transaction per kind (:func:`relayer.outbox.record_outcomes`). Single-flight: one poller at a time; the
    beat sweep restarts it if it stops.

    :returns: how many submissions were still in flight (-1: another poller is running).
    """
    cache.delete(POLLER_SCHEDULED_KEY)
    still_open = poll_round()
    if still_open > 0:
        schedule_poller()
    return still_open


def poll_now() -> None:
    """A signature notification arrived (:func:`relayer.outbox.watch`): have a poller round start after it, at
    once, so the pushed outcome is recorded with every other outcome that round reads instead of by a check of its
    own.

    No lost wake-up: the push is first written down (:data:`POLL_AGAIN_KEY`, cleared by each round before it
    reads statuses), then a round is queued (at most one queued at a time). If a round is running already, the
    queued one finds it busy and ends, and the running one sees the mark when it finishes and runs a follow-up
    round right after it (:func:`poll_round`), instead of leaving the outcome to the next scheduled round. While
    a round runs (its lock is held) nothing is queued at all: its holder reads the mark after releasing the lock,
    which happens after this read of the lock, so the mark is seen (one task less per push under load)."""
    cache.set(POLL_AGAIN_KEY, 1, timeout=POLL_AGAIN_TIMEOUT_SECONDS)
    if cache.get(POLLER_LOCK_KEY) is not None:
        return  # the running round follows up
    if cache.add(POLL_NOW_KEY, 1, timeout=2):
        outbox_poll_now.apply_async()


@shared_task(name="relayer.tasks.outbox_poll_now", time_limit=60, soft_time_limit=45, acks_late=False)
def outbox_poll_now() -> int:
    """One poller round now (:func:`poll_now`), outside the poller's 0.2 s schedule (which it leaves alone).

    :returns: as :func:`outbox_poll`.
    """
    cache.delete(POLL_NOW_KEY)
    still_open = poll_round()
    if still_open > 0:
        schedule_poller()
    return still_open


def poll_round() -> int:
    """One single-flight round of the poller (see :func:`outbox_poll`), and right after it a follow-up round for
    every push that came while it ran (:func:`poll_now`), for up to :data:`FOLLOW_UP_SECONDS`.

    The mark is read again after the single-flight lock is released: a push whose own round found the lock
    still held is then seen here (and taken up, if no other round took the lock meanwhile — that one will see
    it in turn). Past :data:`FOLLOW_UP_SECONDS` a pending push is handed to a queued round instead, so one task
    never holds a worker thread for long.

    :returns: how many submissions were still in flight after the last round (-1: another round is running).
    """
    still_open = -1
    deadline = time.monotonic() + FOLLOW_UP_SECONDS
    while True:
        if not cache.add(POLLER_LOCK_KEY, 1, timeout=55):
            return still_open  # the holder reads the mark when it releases the lock
        try:
            while True:
                cache.delete(POLL_AGAIN_KEY)  # before the statuses are read: a later push marks it again
                still_open = _poll_once()
                if not cache.get(POLL_AGAIN_KEY) or time.monotonic() >= deadline:
                    break
        finally:
            cache.delete(POLLER_LOCK_KEY)
        if not cache.get(POLL_AGAIN_KEY):
            return still_open
        if time.monotonic() >= deadline:
            cache.delete(POLL_NOW_KEY)  # hand the pending push to a queued round
            poll_now()
            return still_open


def _poll_once() -> int:
    """One round's work, under the single-flight lock :func:`poll_round` holds.

    :returns: how many submissions were still in flight.
    """
    still_open = 0
    try:
        seen = []
        for kind in outbox.active_kinds():  # kinds with nothing sent for a while cost no query
            batch = list(kind.in_flight()[:POLL_BATCH])
            if not batch:
                continue
            seen.append(kind)
            outcomes = []
            for step in outbox.next_steps(kind=kind, owners=batch):
                if step.kind in ("confirm", "fail"):
                    outcomes.append(step)
                elif step.kind != "wait":
                    # Sending (re-send, renew) in parallel on the worker's threads (one queued check per owner
                    # at a time); outbox_check decides again from fresh reads.
                    enqueue_check(kind.name, str(step.owner.pk))
            # The outcomes read in this round are recorded here, all in one transaction under their owners' row
            # locks (which re-check that each is still open): no hand-off, no second read of the same statuses.
            outbox.record_outcomes(kind=kind, steps=outcomes)
            recorded = {step.owner.pk for step in outcomes}
            still_open += len(batch) - len(outcomes)
            # Rotate: the next run starts with the ones not looked at for longest; the sweep reads an
            # owner not touched for a while as "the poller stopped".
            waiting = [owner.pk for owner in batch if owner.pk not in recorded]  # (the others have ended)
            if waiting:
                kind.touch(waiting)
        outbox.mark_active(seen)
    except ChainUnavailableError:
        logger.warning("outbox poller: chain unavailable; retrying shortly")
        still_open = max(still_open, 1)
    return still_open


def enqueue_check(kind: str, owner_id: str) -> None:
    """Queue one :func:`outbox_check` of the owner unless one is already queued (from the poller, for a
    sending step)."""
    if cache.add(CHECK_QUEUED_KEY.format(kind, owner_id), 1, timeout=10):
        outbox_check.delay(kind, owner_id)


@shared_task(name="relayer.tasks.outbox_check", autoretry_for=(ChainUnavailableError,), retry_backoff=1,
             retry_backoff_max=10, max_retries=12, time_limit=60, soft_time_limit=45, acks_late=True)
def outbox_check(kind: str, owner_id: str) -> bool | None:
    """Advance one submission now (from the poller, and the admin's "re-check status").

    :returns: whether it is still in flight (``None``: no such owner).
    """
    cache.delete(CHECK_QUEUED_KEY.format(kind, owner_id))
    outbox_kind = outbox.get_kind(kind)
    owner = outbox.check(kind=outbox_kind, owner_id=owner_id)
    if owner is None:
        return None
    is_open = outbox_kind.is_open(owner)
    if is_open:
        schedule_poller()
    return is_open


@shared_task(name="relayer.tasks.outbox_sweep", time_limit=60, soft_time_limit=50, acks_late=False)
def outbox_sweep(stale_seconds: int = 10) -> int:
    """Beat job: if in-flight submissions went stale (e.g. the poller's message was lost in a worker or
    broker restart, or a submit job never ran), start the poller, which re-sends or renews them.

    :returns: how many stale in-flight submissions were found.
    """
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    counts = {kind: kind.stale_count(older_than=cutoff) for kind in outbox.kinds()}
    stale = sum(counts.values())
    if stale:
        outbox.mark_active([kind for kind, count in counts.items() if count])  # the poller looks at them again
        cache.delete(POLLER_SCHEDULED_KEY)  # a lost poller message must not block the next one
        schedule_poller(countdown=0)
    return stale
