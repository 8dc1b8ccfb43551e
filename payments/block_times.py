"""The block-time backfill: chain times for payments and incoming transfers recorded without one.

Payments confirmed (or failed on chain) before block times were stored, or whose slot had no time yet when they
landed (a node answers ``getBlockTime`` only once the block is rooted), and incoming transfers found without a
``blockTime``, have ``block_time`` NULL: the activity then dates them by when they ended or were found
(``payments.selectors``). This fills them from the chain, in small bounded batches: one ``getBlockTime`` per
distinct slot, sent in JSON-RPC batches (:func:`numpay.core.solana.block_times.block_times_at`).

Idempotent and resumable: a row is written only while its ``block_time`` is still NULL, and a batch that
committed is never selected again. A slot the node has no time for (a block it no longer keeps) is not asked
again: its rows get ``block_time_unavailable_at`` and keep their fallback date. Rows that landed less than
:data:`SETTLE_SECONDS` ago are left to a later run (their block may not be rooted yet, and "no time" would
then be recorded for good). Run by the beat job ``payments.tasks.block_time_backfill`` and by
``manage.py backfill_block_times``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, DateTimeField, QuerySet, Value, When
from django.utils import timezone

from numpay.core.solana import ChainClient
from numpay.core.solana.block_times import block_times_at
from wallets.models import IncomingTransfer

from .models import Payment

#: Rows younger than this (seconds since they landed / were found) wait for a later run.
SETTLE_SECONDS = 120


@dataclass(frozen=True)
class BackfillBatch:
    """What one batch did.

    :ivar filled: rows (payments + incoming transfers) that got their block time.
    :ivar unavailable: rows whose slot the node had no time for (marked, not asked again).
    :ivar slots: distinct slots asked of the chain (each once).
    """

    filled: int
    unavailable: int
    slots: int

    @property
    def rows(self) -> int:
        return self.filled + self.unavailable


def payments_missing_block_time(*, settled_before: dt.datetime) -> QuerySet[Payment]:
    """Payments that landed (confirmed, or failed on chain: they have a slot) without a block time, not yet
    found unavailable, last changed before ``settled_before``; in ``id`` order (``payments_block_time_todo_idx``)."""
    return (Payment.objects.filter(block_time__isnull=True, slot__isnull=False, block_time_unavailable_at__isnull=True,
                                   status__in=(Payment.Status.CONFIRMED, Payment.Status.FAILED),
                                   updated_at__lt=settled_before)
            .order_by("id"))


def incoming_transfers_missing_block_time(*, settled_before: dt.datetime) -> QuerySet[IncomingTransfer]:
    """Incoming transfers with a slot but no block time, not yet found unavailable, recorded before
    ``settled_before``; in ``id`` order (``wallets_incoming_bt_todo_idx``)."""
    return (IncomingTransfer.objects.filter(block_time__isnull=True, slot__isnull=False,
                                            block_time_unavailable_at__isnull=True, created_at__lt=settled_before)
            .order_by("id"))


def _fill(queryset: QuerySet, rows: list[tuple[object, int]], times: dict[int, dt.datetime | None],
          now: dt.datetime) -> tuple[int, int]:
    """Write the times of ``rows`` (``(id, slot)``), one UPDATE for the found ones and one for the missing ones,
    each only where ``block_time`` is still NULL (a concurrent writer's value wins). :returns: (filled,
    unavailable)."""
    found = [(pk, slot) for pk, slot in rows if times[slot] is not None]
    missing = [pk for pk, slot in rows if times[slot] is None]
    filled = unavailable = 0
    if found:
        by_slot = Case(*[When(slot=slot, then=Value(times[slot])) for slot in {slot for _, slot in found}],
                       output_field=DateTimeField())
        filled = queryset.filter(pk__in=[pk for pk, _ in found], block_time__isnull=True).update(block_time=by_slot)
    if missing:
        unavailable = (queryset.filter(pk__in=missing, block_time__isnull=True)
                       .update(block_time_unavailable_at=now))
    return filled, unavailable


def block_time_backfill_batch(*, limit: int = 200, client: ChainClient | None = None,
                              now: dt.datetime | None = None) -> BackfillBatch:
    """Fill the block time of at most ``limit`` payments and ``limit`` incoming transfers (module doc).

    The chain is read outside any transaction (no row is locked during the RPC round trips); the writes are
    one transaction. Plain ``UPDATE`` (never ``save()``): ``updated_at``, the activity's fallback date and the
    payment's state, stays as it is.

    :param limit: rows per table in this batch (> 0).
    :param now: the clock (aware UTC), for :data:`SETTLE_SECONDS` and ``block_time_unavailable_at``.
    :returns: what the batch did; ``rows == 0`` means nothing is left to do (for now).
    :raises ChainUnavailableError: the endpoint cannot be reached (nothing written; retry later).
    :raises ChainRequestError: the endpoint refused the batch (nothing written).
    """
    now = now or timezone.now()
    settled_before = now - dt.timedelta(seconds=SETTLE_SECONDS)
    payments = list(payments_missing_block_time(settled_before=settled_before).values_list("id", "slot")[:limit])
    transfers = list(incoming_transfers_missing_block_time(settled_before=settled_before)
                     .values_list("id", "slot")[:limit])
    slots = {slot for _, slot in payments} | {slot for _, slot in transfers}
    if not slots:
        return BackfillBatch(filled=0, unavailable=0, slots=0)
    times = block_times_at(sorted(slots), client=client)
    with transaction.atomic():
        paid = _fill(Payment.objects.all(), payments, times, now)
        found = _fill(IncomingTransfer.objects.all(), transfers, times, now)
    return BackfillBatch(filled=paid[0] + found[0], unavailable=paid[1] + found[1], slots=len(slots))
