"""The caches: Django's Redis cache with one client per connection pool, and the embedded cache (Django's
file-based cache, made safe for single-flight locks across processes).

Redis (:class:`RedisCache`): Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` on every cache
call (``Redis.__init__`` copies its response-callback table each time); measured with py-spy in
``bench/payments.py``, 7-8 % of the web process's CPU and 6 % of the worker's went there. The client is
thread-safe and only wraps the pool, so one per pool is kept.

Embedded:

The web process, the Celery worker and beat share ``var/cache`` (DESIGN.md "Processes": a cache one
process writes and another reads). Django's ``FileBasedCache`` already writes atomically (a temporary
file renamed over the entry), but its ``add`` is "check, then set": two processes can both win. Here
``add`` holds an exclusive ``flock`` on one lock file of the cache directory, so exactly one ``add`` of a
live key succeeds, across threads and processes, as with Redis ``SET NX``. Django lists the whole
directory on every ``set`` to decide whether to cull; here that happens once every
:data:`CULL_CHECK_EVERY` sets per process, and when the cache is full, expired entries are removed
before Django's random cull, so live locks survive a cull whenever possible.
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache as DjangoFileBasedCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

_thread_lock = threading.Lock()


class RedisCacheClient(DjangoRedisCacheClient):
    """Django's Redis cache client, with the ``redis.Redis`` of each connection pool built once and reused
    (``redis.Redis`` is thread-safe: each command takes a connection from the pool and gives it back)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: str | None = None, *, write: bool = False) -> Any:
        """The ``redis.Redis`` of the server Django's rule picks (the first for writes, any for reads)."""
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients.setdefault(index, self._client(connection_pool=self._pools[index]))
        return client


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache`` using :class:`RedisCacheClient` (see the module doc)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

#: How many ``set`` calls of one process pass between two looks at the number of entries.
CULL_CHECK_EVERY = 100


class FileBasedCache(DjangoFileBasedCache):
    """``django.core.cache.backends.filebased.FileBasedCache`` with an atomic ``add`` (see the module doc)."""

    def add(self, key: str, value: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Set ``key`` only if it is absent or expired. :returns: whether this call set it."""
        self._createdir()
        with _thread_lock, open(os.path.join(self._dir, ".add.lock"), "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                return super().add(key, value, timeout, version)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    _sets_since_cull_check = 0

    def _cull(self) -> None:
        """Over ``MAX_ENTRIES``: drop expired entries first, then Django's random cull if still full."""
        type(self)._sets_since_cull_check += 1
        if type(self)._sets_since_cull_check < CULL_CHECK_EVERY:
            return
        type(self)._sets_since_cull_check = 0
        filelist = self._list_cache_files()
        if len(filelist) < self._max_entries:
            return
        for fname in filelist:
            try:
                with open(fname, "rb") as entry:
                    self._is_expired(entry)  # removes the file when expired
            except FileNotFoundError:
                continue
        super()._cull()
