"""Locks: ``cache.lock(name)``, with redis-py's ``Lock`` interface.

A held lock is a row of the store (format ``lock``) whose value is its
holder's random token. Taking it is an ``INSERT`` that the unique key index
lets only one holder win; releasing, extending and re-acquiring only touch a
row that still holds the caller's token. Expiry is decided by the database's
clock, never a client's, so two hosts with skewed clocks cannot both hold a
lock. Every successful acquire gets a new row, whose id is its fencing token:
ids only grow (PostgreSQL's identity sequence, InnoDB's auto-increment,
SQLite's AUTOINCREMENT), so a later holder's token is always larger.

The statements run on the caller's connection, like every other operation:
inside ``transaction.atomic()`` they join the transaction (others see the lock
once it commits, and a rollback releases it). Take locks outside ``atomic()``
for the behaviour of Redis.
"""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace, TracebackType
from typing import Any

from django.db import OperationalError, connections, transaction

from .. import db
from ..exceptions import LockError, LockNotOwnedError
from .base import StructureCommands

LOCK = "lock"


class _Holding(threading.local):
    """The owner's token, one per thread (redis-py's ``thread_local``): a
    thread that did not acquire the lock sees it not held."""

    token: bytes | None = None
    fencing_token: int | None = None


class Lock:
    """A lock named by a key of the store; see :meth:`LockCommands.lock`."""

    def __init__(
        self,
        cache: LockCommands,
        name: Any,
        version: int | None = None,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
    ) -> None:
        for label, value in (("timeout", timeout), ("blocking_timeout", blocking_timeout)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise TypeError(f"{label} is a number of seconds, not {type(value).__name__}")
            if value is not None and value < 0:
                raise LockError(
                    f"'{label}' must be a positive number, not {value!r}", lock_name=str(name)
                )
        if isinstance(sleep, bool) or not isinstance(sleep, int | float) or sleep < 0:
            raise LockError(
                f"'sleep' must be a positive number, not {sleep!r}", lock_name=str(name)
            )
        self.cache = cache
        self.name = name
        made = cache.make_and_validate_key(name, version)
        self._key_bytes, self._key_hash = cache._identify(made)
        self.timeout = timeout
        self.sleep = sleep
        self.blocking = blocking
        self.blocking_timeout = blocking_timeout
        self.thread_local = bool(thread_local)
        self.local: Any = _Holding() if self.thread_local else SimpleNamespace()
        self.local.token = None
        self.local.fencing_token = None

    def __repr__(self) -> str:
        return f"<Lock {self.name!r} of store {self.cache._store_name!r}>"  # type: ignore[attr-defined]

    @property
    def fencing_token(self) -> int | None:
        """The fencing token of this owner's current hold: larger than that
        of every earlier holder of the lock (None when not held). Pass it to
        the resource the lock guards, which refuses a token lower than the
        largest it has seen."""
        return self.local.fencing_token  # type: ignore[no-any-return]

    def __enter__(self) -> Lock:
        if self.acquire():
            return self
        raise LockError(
            "Unable to acquire lock within the time specified", lock_name=str(self.name)
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(
        self,
        sleep: float | None = None,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
        token: str | bytes | None = None,
    ) -> bool:
        """Take the lock: True once held; False if ``blocking`` is off and it
        is taken, or ``blocking_timeout`` seconds passed."""
        sleep = self.sleep if sleep is None else sleep
        blocking = self.blocking if blocking is None else blocking
        blocking_timeout = self.blocking_timeout if blocking_timeout is None else blocking_timeout
        if token is None:
            token_bytes = uuid.uuid4().hex.encode()
        else:
            token_bytes = token.encode() if isinstance(token, str) else bytes(token)
        stop_at = None if blocking_timeout is None else time.monotonic() + blocking_timeout
        while True:
            fence = self._try_acquire(token_bytes)
            if fence is not None:
                self.local.token = token_bytes
                self.local.fencing_token = fence
                return True
            if not blocking:
                return False
            if stop_at is not None and time.monotonic() + sleep > stop_at:
                return False
            time.sleep(sleep)

    def _try_acquire(self, token: bytes) -> int | None:
        cache = self.cache
        sql, alias = cache._structures()
        store_hash = cache._store_hash
        params: list[Any] = [
            cache._store_bytes,
            self._key_bytes,
            store_hash,
            self._key_hash,
            LOCK,
            token,
            None,
        ]
        if self.timeout:
            params.append(float(self.timeout))

        def insert(cursor: Any) -> int | None:
            cursor.execute(sql.lock_acquire_sql[bool(self.timeout)], params)
            row = cursor.fetchone()
            # MariaDB returns the row that was there: it is ours only if it
            # holds our token.
            if row is None or bytes(row[1]) != token:
                return None
            fence = int(row[0])
            if sql.lock_refence_sql is not None:
                cursor.execute(sql.lock_refence_sql, (fence,))
                return int(cursor.fetchone()[0])
            if sql.mysql:
                # InnoDB draws the id before the INSERT waits, too, and cannot
                # draw one in an UPDATE (nor tell which ids were drawn and
                # deleted meanwhile): the row is written again, in a
                # transaction that holds the key, to draw an id now.
                with transaction.atomic(using=alias):
                    cursor.execute(sql.lock_delete_id_sql, (fence,))
                    cursor.execute(sql.lock_acquire_sql[bool(self.timeout)], params)
                    fence = int(cursor.fetchone()[0])
            return fence

        def attempt() -> int | None:
            # A free lock takes one statement; a taken one is checked for an
            # expired holder, whose row goes before trying again.
            with db.cursor(alias) as cursor:
                fence = insert(cursor)
                if fence is None:
                    cursor.execute(sql.lock_drop_expired_sql, (store_hash, self._key_hash))
                    if cursor.rowcount:
                        fence = insert(cursor)
            return fence

        try:
            return db.retry_on_deadlock(alias, attempt)
        except OperationalError as exc:
            # Contenders for one free lock can deadlock on InnoDB's gap locks
            # (each victim rolled back whole) several times running: the lock
            # is not taken, and acquire() tries again after its sleep. A row
            # of this token's that the first INSERT committed (MySQL writes
            # it again to draw its fence) goes first: no one would hold it.
            if not db.is_deadlock(exc) or connections[alias].in_atomic_block:
                raise
            self._update(sql.lock_release_sql, token)
            return None

    def _holder(self) -> bytes | None:
        cache = self.cache
        sql, alias = cache._structures()
        with db.cursor(alias) as cursor:
            cursor.execute(sql.lock_holder_sql, (cache._store_hash, self._key_hash))
            row = cursor.fetchone()
        return None if row is None else bytes(row[0])

    def locked(self) -> bool:
        """True if anyone holds the lock."""
        return self._holder() is not None

    def owned(self) -> bool:
        """True if this owner holds the lock."""
        token = self.local.token
        return token is not None and self._holder() == token

    def release(self) -> None:
        token = self.local.token
        if token is None:
            raise LockError(
                "Cannot release a lock that's not owned or is already unlocked.",
                lock_name=str(self.name),
            )
        self.local.token = None
        self.local.fencing_token = None
        if not self._update(self.cache._structures()[0].lock_release_sql, token):
            raise LockNotOwnedError(
                "Cannot release a lock that's no longer owned", lock_name=str(self.name)
            )

    def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        """Add ``additional_time`` seconds to the lock's expiry (or, with
        ``replace_ttl``, make it expire that many seconds from now)."""
        if self.local.token is None:
            raise LockError("Cannot extend an unlocked lock", lock_name=str(self.name))
        if self.timeout is None:
            raise LockError("Cannot extend a lock with no timeout", lock_name=str(self.name))
        sql = self.cache._structures()[0].lock_extend_sql[bool(replace_ttl)]
        if not self._update(sql, self.local.token, float(additional_time)):
            raise LockNotOwnedError(
                "Cannot extend a lock that's no longer owned", lock_name=str(self.name)
            )
        return True

    def reacquire(self) -> bool:
        """Make the lock expire ``timeout`` seconds from now again."""
        if self.local.token is None:
            raise LockError("Cannot reacquire an unlocked lock", lock_name=str(self.name))
        if self.timeout is None:
            raise LockError("Cannot reacquire a lock with no timeout", lock_name=str(self.name))
        sql = self.cache._structures()[0].lock_extend_sql[True]
        if not self._update(sql, self.local.token, float(self.timeout)):
            raise LockNotOwnedError(
                "Cannot reacquire a lock that's no longer owned", lock_name=str(self.name)
            )
        return True

    def _update(self, sql_text: str, token: bytes, seconds: float | None = None) -> bool:
        """Run a statement on the row holding ``token``; True if it was there."""
        cache = self.cache
        alias = cache._structures()[1]
        params: list[Any] = [] if seconds is None else [seconds]
        params += [cache._store_hash, self._key_hash, token]

        def attempt() -> bool:
            with db.cursor(alias) as cursor:
                cursor.execute(sql_text, params)
                return bool(cursor.rowcount == 1)

        return db.retry_on_deadlock(alias, attempt)


class LockCommands(StructureCommands):
    def lock(
        self,
        key: Any,
        version: int | None = None,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
    ) -> Lock:
        """A lock named ``key`` of this store, shared by every process using
        the database (django-redis's ``cache.lock``; nothing is taken until
        :meth:`Lock.acquire` or ``with``)."""
        return Lock(self, key, version, timeout, sleep, blocking, blocking_timeout, thread_local)


__all__ = ["Lock", "LockCommands"]
