"""Expiry verbs of Redis: ``ttl``, ``pttl``, ``expire``, ``pexpire``,
``expire_at``, ``pexpire_at`` and ``persist``, with django-redis's results.

They act on a key's row whatever it holds, so a hash, set, sorted set or lock
expires whole, as in Redis.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache.backends.base import DEFAULT_TIMEOUT

from .. import aio, db
from .base import StructureCommands


class ExpiryCommands(StructureCommands):
    def expires_in(self, key: Any, version: int | None = None) -> float | None:
        """Seconds ``key`` has left (a float), None if it never expires;
        KeyError if it is absent or expired."""
        key_hash = self._key_hash(key, version)
        now = time.time()
        dialect = self._get_dialect()
        with db.cursor(dialect.alias) as cursor:
            cursor.execute(dialect.expires_sql, (self._store_hash, key_hash, now))
            row = cursor.fetchone()
        return _seconds_left(key, row, now)

    async def aexpires_in(self, key: Any, version: int | None = None) -> float | None:
        """Async :meth:`expires_in`."""
        driver = self._native()
        if driver is None:
            return await sync_to_async(self.expires_in, thread_sensitive=True)(key, version)
        key_hash = self._key_hash(key, version)
        now = time.time()
        rows, _ = await driver.read(driver.dialect.expires_sql, (self._store_hash, key_hash, now))
        return _seconds_left(key, rows[0] if rows else None, now)

    def ttl(self, key: Any, version: int | None = None) -> int | None:
        """Whole seconds ``key`` has left, rounded as Redis's TTL; None if it
        never expires, 0 if it is absent (django-redis's answers)."""
        return _rounded(self._left(key, version), 1)

    def pttl(self, key: Any, version: int | None = None) -> int | None:
        """:meth:`ttl` in milliseconds."""
        return _rounded(self._left(key, version), 1000)

    async def attl(self, key: Any, version: int | None = None) -> int | None:
        """Async :meth:`ttl`."""
        return _rounded(await self._aleft(key, version), 1)

    async def apttl(self, key: Any, version: int | None = None) -> int | None:
        """Async :meth:`pttl`."""
        return _rounded(await self._aleft(key, version), 1000)

    def _left(self, key: Any, version: int | None) -> float | None:
        try:
            return self.expires_in(key, version)
        except KeyError:
            return 0.0

    async def _aleft(self, key: Any, version: int | None) -> float | None:
        try:
            return await self.aexpires_in(key, version)
        except KeyError:
            return 0.0

    # Each verb works out the seconds left (None: persistent) and then
    # touches or deletes the key: through touch()/delete() in the sync verb,
    # atouch()/adelete() in its twin (native where the alias has a driver).

    def expire(self, key: Any, timeout: Any, version: int | None = None) -> bool:
        """Make ``key`` expire ``timeout`` seconds (or a timedelta) from now;
        False if it is absent. A timeout of 0 or less deletes it, as in Redis;
        None (or the cache's default of None) makes it persistent."""
        return self._expire_after(key, self._expire_seconds(timeout), version)

    async def aexpire(self, key: Any, timeout: Any, version: int | None = None) -> bool:
        """Async :meth:`expire`."""
        return await self._aexpire_after(key, self._expire_seconds(timeout), version)

    def pexpire(self, key: Any, timeout: Any, version: int | None = None) -> bool:
        """:meth:`expire` with ``timeout`` in milliseconds."""
        return self._expire_after(key, self._pexpire_seconds(timeout), version)

    async def apexpire(self, key: Any, timeout: Any, version: int | None = None) -> bool:
        """Async :meth:`pexpire`."""
        return await self._aexpire_after(key, self._pexpire_seconds(timeout), version)

    def expire_at(self, key: Any, when: Any, version: int | None = None) -> bool:
        """Make ``key`` expire at ``when``: Unix seconds or a datetime."""
        return self._expire_after(key, _unix(when, 1) - time.time(), version)

    async def aexpire_at(self, key: Any, when: Any, version: int | None = None) -> bool:
        """Async :meth:`expire_at`."""
        return await self._aexpire_after(key, _unix(when, 1) - time.time(), version)

    def pexpire_at(self, key: Any, when: Any, version: int | None = None) -> bool:
        """Make ``key`` expire at ``when``: Unix milliseconds or a datetime."""
        return self._expire_after(key, _unix(when, 1000) - time.time(), version)

    async def apexpire_at(self, key: Any, when: Any, version: int | None = None) -> bool:
        """Async :meth:`pexpire_at`."""
        return await self._aexpire_after(key, _unix(when, 1000) - time.time(), version)

    def _expire_seconds(self, timeout: Any) -> float | None:
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else _seconds(timeout)

    def _pexpire_seconds(self, timeout: Any) -> float | None:
        if timeout is DEFAULT_TIMEOUT:
            return self._expire_seconds(timeout)
        if isinstance(timeout, timedelta):
            return timeout.total_seconds()
        return _seconds(timeout) / 1000

    def _expire_after(self, key: Any, seconds: float | None, version: int | None) -> bool:
        if seconds is not None and seconds <= 0:
            return self.delete(key, version)
        return self.touch(key, seconds, version)

    async def _aexpire_after(self, key: Any, seconds: float | None, version: int | None) -> bool:
        if seconds is not None and seconds <= 0:
            return await self.adelete(key, version)
        return await self.atouch(key, seconds, version)

    def persist(self, key: Any, version: int | None = None) -> bool:
        """Remove the expiry of ``key``: True if it had one (Redis's PERSIST),
        False if it is absent or never expired."""
        key_hash = self._key_hash(key, version)
        dialect = self._get_dialect()
        params = (self._store_hash, key_hash, time.time())

        def attempt() -> bool:
            with db.cursor(dialect.alias) as cursor:
                cursor.execute(dialect.persist_sql, params)
                return bool(cursor.rowcount)

        persisted = db.retry_on_deadlock(dialect.alias, attempt)
        if persisted:
            self._near_written((key_hash,))
        return persisted

    async def apersist(self, key: Any, version: int | None = None) -> bool:
        """Async :meth:`persist`."""
        driver = self._native()
        if driver is None:
            return await sync_to_async(self.persist, thread_sensitive=True)(key, version)
        key_hash = self._key_hash(key, version)
        params = (self._store_hash, key_hash, time.time())

        async def attempt() -> bool:
            _, count = await driver.run(driver.dialect.persist_sql, params)
            return bool(count)

        persisted = await aio.retry_on_deadlock(attempt)
        if persisted:
            self._near_written((key_hash,))
        return persisted


def _seconds_left(key: Any, row: Any, now: float) -> float | None:
    """What expires_in answers for the row of its statement."""
    if row is None:
        raise KeyError(key)
    return None if row[0] is None else max(0.0, row[0] - now)


def _rounded(left: float | None, per_second: int) -> int | None:
    """Seconds left in whole ``1/per_second`` seconds, as Redis rounds them."""
    return left if left is None else math.floor(left * per_second + 0.5)


def _seconds(timeout: Any) -> float:
    if isinstance(timeout, timedelta):
        return timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"timeout is a number of seconds or a timedelta, not {type(timeout).__name__}"
        )
    return float(timeout)


def _unix(when: Any, per_second: int) -> float:
    """Unix seconds of ``when`` (a datetime, naive meaning local time as in
    redis-py, or a number of ``1/per_second`` seconds)."""
    if isinstance(when, datetime):
        return when.timestamp()
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise TypeError(f"when is a datetime or a Unix time, not {type(when).__name__}")
    return float(when) / per_second
