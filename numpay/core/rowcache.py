"""Rows every payment reads (the token, the spending policies that apply) kept in the shared cache, with
explicit invalidation: each namespace has a generation token in the cache, an entry is stored together with
the generation that was current *before* its rows were read, and a write to those rows replaces the
generation (at once and again after its commit), so no process serves a stale entry once the write is seen.

One cache round trip per read (``get_many`` of the generation and the entry); a miss reads the DB and
stores the entry. Namespaces are invalidated by the owning app's signal receivers (``post_save``,
``post_delete``, ``m2m_changed``) and by the model's manager for the bulk writes that send no signal
(:class:`InvalidatingQuerySet`: ``update``, ``bulk_create``, ``bulk_update``).

Why a generation and not deleting keys: an entry's key depends on the reader (user, token), so a write cannot
know every key it affects; and a reader that read the DB just before a write commits stores its entry under
the old generation, which the commit's replacement makes unreachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet

T = TypeVar("T")

#: Entries live at most this long even without a write (a lost invalidation heals by itself).
TIMEOUT_SECONDS = 300


def _generation_key(namespace: str) -> str:
    return f"rowcache:{namespace}:generation"


def cached(namespace: str, key: str, load: Callable[[], T], *, timeout: int = TIMEOUT_SECONDS) -> T:
    """The value of ``load()`` for ``key`` in ``namespace``, from the shared cache while no write to the
    namespace's rows happened since it was stored (``load`` must return something picklable)."""
    generation_key, entry_key = _generation_key(namespace), f"rowcache:{namespace}:{key}"
    found = cache.get_many([generation_key, entry_key])
    generation = found.get(generation_key)
    entry = found.get(entry_key)
    if generation is not None and entry is not None and entry[0] == generation:
        return entry[1]
    if generation is None:
        cache.add(generation_key, uuid.uuid4().hex, timeout=None)
        generation = cache.get(generation_key)
    value = load()  # read after the generation: a write committed meanwhile replaces it, orphaning this entry
    if generation is not None:
        cache.set(entry_key, (generation, value), timeout=timeout)
    return value


def invalidate(namespace: str) -> None:
    """Forget every entry of ``namespace`` in every process: now, and again when the current transaction
    commits (a reader between the write and its commit may have stored the old rows under the new
    generation)."""

    forget(namespace)
    transaction.on_commit(lambda: forget(namespace))


def forget(namespace: str) -> None:
    """Forget every entry of ``namespace`` in every process now (no database involved)."""
    cache.set(_generation_key(namespace), uuid.uuid4().hex, timeout=None)


def invalidator(namespace: str) -> Callable[..., None]:
    """A signal receiver that invalidates ``namespace`` (connect it with ``weak=False``)."""

    def receiver(*args: Any, **kwargs: Any) -> None:
        invalidate(namespace)

    return receiver


class InvalidatingQuerySet(QuerySet):
    """A queryset whose bulk writes (which send no ``post_save``) forget the model's cached rows too: set
    :attr:`rowcache_namespace` in a subclass and use ``Subclass.as_manager()`` as the model's manager."""

    rowcache_namespace: ClassVar[str]

    def update(self, **kwargs: Any) -> int:
        count = super().update(**kwargs)
        invalidate(self.rowcache_namespace)
        return count

    def bulk_create(self, *args: Any, **kwargs: Any) -> Any:
        created = super().bulk_create(*args, **kwargs)
        invalidate(self.rowcache_namespace)
        return created

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        count = super().bulk_update(*args, **kwargs)
        invalidate(self.rowcache_namespace)
        return count
