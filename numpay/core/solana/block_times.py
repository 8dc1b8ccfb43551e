"""Block times by slot, read once per slot (``getBlockTime``) and kept in the shared cache.

The activity feed orders and dates money movements by chain time (issue 14 item 3): the block time of the slot
a transaction landed in. ``getSignaturesForAddress`` already carries it for deposits; for payments confirmed by
the outbox (``getSignatureStatuses`` gives only the slot) it is read here. Every payment that lands in the same
slot shares one RPC call: the answer is cached in the cross-process cache (Redis in production) for
:data:`CACHE_SECONDS`, keyed by the endpoint and the slot. A block's time never changes once produced.
:func:`block_times_at` reads many slots at once (JSON-RPC batches) through the same cache, for the backfill of
rows recorded without one (``payments.block_times``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

from django.core.cache import cache

from .client import BLOCK_TIME_BATCH, ChainClient, get_chain_client

#: How long a slot's time is kept: long enough for every payment of a slot to be confirmed (seconds).
CACHE_SECONDS = 600


def _cache_key(client: ChainClient, slot: int) -> str:
    endpoint = hashlib.sha256(client.url.encode()).hexdigest()[:12]
    return f"chain:block_time:{endpoint}:{slot}"


def unix_to_datetime(seconds: int | None) -> dt.datetime | None:
    """A block time in unix seconds as an aware UTC datetime (``None`` stays ``None``)."""
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def block_time_at(slot: int, *, client: ChainClient | None = None) -> dt.datetime | None:
    """The block time of ``slot`` as an aware UTC datetime (whole seconds, as the leader recorded it).

    At most one ``getBlockTime`` per slot and endpoint while cached (:data:`CACHE_SECONDS`), whichever
    process asks first. "No time" is not cached: a slot not produced yet gets one later.

    :returns: ``None`` when the node has no time for the slot (see :meth:`ChainClient.get_block_time`).
    :raises ChainUnavailableError: the endpoint cannot be reached (transient; callers retry).
    """
    client = client or get_chain_client()
    key = _cache_key(client, slot)
    seconds = cache.get(key)
    if seconds is None:
        seconds = client.get_block_time(slot)
        if seconds is not None:
            cache.set(key, seconds, CACHE_SECONDS)
    return unix_to_datetime(seconds)


def block_times_at(slots: Iterable[int], *, client: ChainClient | None = None) -> dict[int, dt.datetime | None]:
    """:func:`block_time_at` of many slots: the cached ones from the cache, the others with one ``getBlockTime``
    per distinct slot, sent in JSON-RPC batches of :data:`~numpay.core.solana.client.BLOCK_TIME_BATCH`
    (:meth:`ChainClient.get_block_times`); the times found are cached as :func:`block_time_at` caches them.

    :returns: ``{slot: aware UTC datetime, or None when the node has no time for it}`` for every distinct slot.
    :raises ChainUnavailableError: the endpoint cannot be reached (transient; callers retry).
    :raises ChainRequestError: the endpoint refused the batch (terminal).
    """
    client = client or get_chain_client()
    wanted = list(dict.fromkeys(slots))
    keys = {slot: _cache_key(client, slot) for slot in wanted}
    cached = cache.get_many(list(keys.values()))
    seconds: dict[int, int | None] = {slot: cached[key] for slot, key in keys.items() if key in cached}
    missing = [slot for slot in wanted if slot not in seconds]
    for start in range(0, len(missing), BLOCK_TIME_BATCH):
        answers = client.get_block_times(missing[start:start + BLOCK_TIME_BATCH])
        cache.set_many({keys[slot]: value for slot, value in answers.items() if value is not None}, CACHE_SECONDS)
        seconds.update(answers)
    return {slot: unix_to_datetime(seconds[slot]) for slot in wanted}
