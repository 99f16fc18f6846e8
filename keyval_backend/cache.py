"""KeyValCache: Django's cache API over a table in the project's own database."""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.cache.backends.base import (
    DEFAULT_TIMEOUT,
    MEMCACHE_MAX_KEY_LENGTH,
    BaseCache,
    default_key_func,
)
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router, transaction
from django.utils.module_loading import import_string

from . import aio, db, near
from .codec import INT64_MAX, INT64_MIN, KIND_FORMATS, RowCodec
from .exceptions import UnreadableValue
from .identity import decode_name, encode_name, name_hash, prefix_upper_bound
from .serializers import load_serializer
from .sql import Dialect, built_dialect, dialect_for
from .sql.base import Popped, Row, Stored
from .structures.expiry import ExpiryCommands
from .structures.hashes import HashCommands
from .structures.keys import KeyCommands
from .structures.locks import LockCommands
from .structures.sets import SetCommands
from .structures.sorted_sets import SortedSetCommands

logger = logging.getLogger("keyval_backend")

KNOWN_OPTIONS = frozenset(
    {
        "MAX_ENTRIES",
        "CULL_FREQUENCY",
        "SERIALIZER",
        "DATABASE",
        "REVERSE_KEY_FUNCTION",
        "PURGE_EVERY",
        "PURGE_BATCH",
        "READ_DATABASE",
        "NEAR_CACHE",
    }
)
TABLE = "keyval_backend_entry"
# Rows fetched per round trip when iterating a store.
PAGE_SIZE = 1000
# With MAX_ENTRIES set, re-count the store after this many writes even if the
# local estimate says there is room, to notice other processes' inserts.
RECOUNT_EVERY = 1000
# Compare-and-swap attempts of the Python incr path before giving up.
INCR_ATTEMPTS = 100
_MISSING: Any = object()
# Keys (of the default version) whose hashes a backend remembers, at most.
RECENT_HASHES = 8192
# The near cache of a backend that has one, until its first use looks it up.
_UNRESOLVED: Any = object()
_T = TypeVar("_T")


class KeyValCache(
    ExpiryCommands,
    KeyCommands,
    LockCommands,
    HashCommands,
    SetCommands,
    SortedSetCommands,
):
    """A Django cache backend that is a persistent key-value store.

    Bound to the store named by ``LOCATION`` (``"default"`` when empty);
    :meth:`store` gives the same backend bound to another store. Unlike a
    throw-away cache, entries never expire unless given a timeout (``TIMEOUT``
    defaults to ``None``), nothing is evicted unless ``MAX_ENTRIES`` is set,
    and database errors propagate instead of reading as a miss.

    Beyond Django's API it has django-redis's: expiry verbs, key patterns,
    locks, hashes, sets and sorted sets, each a mixin of
    :mod:`keyval_backend.structures` with its SQL in :mod:`keyval_backend.sql`.
    This class is the core they share: store binding, keys, values and the
    plain-value statements.
    """

    def __init__(self, location: str, params: Mapping[str, Any]) -> None:
        params = dict(params)
        if "TIMEOUT" not in params and "timeout" not in params:
            params["TIMEOUT"] = None
        super().__init__(params)
        options = params.get("OPTIONS") or {}
        self._cull_enabled = any(
            name in options for name in ("MAX_ENTRIES", "CULL_FREQUENCY")
        ) or any(name in params for name in ("max_entries", "cull_frequency"))
        self._database: str | None = options.get("DATABASE")
        self._dialect: Dialect | None = None
        self._warn_keys = True
        cls = type(self)
        # A subclass that makes or checks keys its own way is left to do so.
        self._stock_key_methods = (
            cls.make_key is BaseCache.make_key and cls.validate_key is KeyValCache.validate_key
        )
        self._purge_schedule = _PurgeSchedule()
        # str key -> lookup hash, for the default version; shared by store()
        # and facade views (the hash does not depend on the store).
        self._recent_hashes: dict[str, str] = {}
        # A bad OPTIONS value is raised by the first operation, not here:
        # Django's own system checks build every cache, and ``manage.py check``
        # should report keyval.E003/E005 rather than crash.
        self.misconfigured: ImproperlyConfigured | None = None
        self._reverse_key: Callable[[str], str] | None = None
        self._near: near.NearCache | None = None
        self._near_options: near.NearOptions | None = None
        try:
            self._configure(options)
        except ImproperlyConfigured as exc:
            self.misconfigured = exc
        self._bind(location or "default")

    def _configure(self, options: Mapping[str, Any]) -> None:
        unknown = set(options) - KNOWN_OPTIONS
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown KeyValCache OPTIONS {sorted(unknown)}; known: {sorted(KNOWN_OPTIONS)}"
            )
        self._purge_every = _non_negative_int(options, "PURGE_EVERY", 100)
        self._purge_batch = _non_negative_int(options, "PURGE_BATCH", 1000)
        if self._purge_batch == 0:
            raise ImproperlyConfigured("OPTIONS['PURGE_BATCH'] must be at least 1")
        reverse = options.get("REVERSE_KEY_FUNCTION")
        try:
            self._reverse_key = import_string(reverse) if isinstance(reverse, str) else reverse
        except ImportError as exc:
            raise ImproperlyConfigured(f"Cannot import REVERSE_KEY_FUNCTION: {exc}") from exc
        self._codec = RowCodec(load_serializer(options.get("SERIALIZER", "pickle")))
        self._read_database = _read_database(options)
        self._near_options = near.parse_options(options.get("NEAR_CACHE"))
        if self._near_options is not None:
            self._near = _UNRESOLVED

    def _bind(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"store names are str, not {type(name).__name__}")
        self._store_name = name
        self._store_bytes = encode_name(name)
        self._store_hash = name_hash(self._store_bytes)
        self._entries: int | None = None  # estimate of the store's rows, for culling
        self._writes_since_count = 0

    # -- binding ------------------------------------------------------------

    @property
    def store_name(self) -> str:
        """The store this backend reads and writes."""
        return self._store_name

    def store(self, name: str) -> KeyValCache:
        """This backend bound to store ``name``: no connection, no query."""
        clone = copy.copy(self)
        clone._bind(name)
        return clone

    def make_and_validate_key(self, key: Any, version: int | None = None) -> str:
        # Runs on every operation: for a str key with Django's default key
        # function, the key is made and checked here without the two calls.
        if type(key) is str and self.key_func is default_key_func and self._stock_key_methods:
            made = f"{self.key_prefix}:{self.version if version is None else version}:{key}"
            if self._warn_keys and not _portable(made):
                super().validate_key(made)
            return made
        return super().make_and_validate_key(key, version)

    def validate_key(self, key: Any) -> None:
        # The KeyVal facade accepts any str as a key; the cache API keeps
        # Django's portable-key warnings (CacheKeyWarning).
        if self._warn_keys and not (type(key) is str and _portable(key)):
            super().validate_key(key)

    def facade_view(self, name: str) -> KeyValCache:
        """The backend bound to ``name`` that the KeyVal facade uses: every
        str is a valid key there, and nothing warns."""
        view = self.store(name)
        view._warn_keys = False
        return view

    # -- plumbing -------------------------------------------------------------

    @property
    def database(self) -> str:
        """The database alias: ``OPTIONS["DATABASE"]``, else the router's
        choice for writes of the Entry model (reads use it too, so a read
        always sees the writes before it)."""
        if self.misconfigured is not None:
            raise self.misconfigured
        if self._database is None:
            from .models import Entry

            self._database = router.db_for_write(Entry) or "default"
        return self._database

    def _get_dialect(self) -> Dialect:
        """The SQL of this backend's database, looked up once per backend."""
        dialect = self._dialect
        if dialect is None:
            dialect = self._dialect = dialect_for(self.database, TABLE)
        return dialect

    def _sql(self) -> tuple[Dialect, db.Cursor]:
        dialect = self._get_dialect()
        return dialect, db.cursor(dialect.alias)

    # -- reads a replica may serve (OPTIONS["READ_DATABASE"]) -------------------

    def _read_sql(self) -> tuple[Dialect, db.Cursor]:
        """Dialect and cursor of the reads that tolerate staleness (``get``,
        ``get_many``, ``has_key``, iteration, ``count``): on
        ``OPTIONS["READ_DATABASE"]`` when set, else on :attr:`database` like
        every other operation. Writes, and the reads that decide a write
        (``add``, ``pop``, ``incr``, ``ttl``, culling, locks), never come here."""
        alias = self._read_database if self.misconfigured is None else None
        if alias is None:
            return self._sql()
        return dialect_for(alias, TABLE), db.cursor(alias)

    # -- the near cache (OPTIONS["NEAR_CACHE"], keyval_backend.near) ------------

    @property
    def near_cache(self) -> near.NearCache | None:
        """This process's memory of the values this backend read, or None
        when ``OPTIONS["NEAR_CACHE"]`` is not set."""
        found = self._near
        if found is _UNRESOLVED or (found is not None and found.retired):
            found = self._near = self._resolve_near()
        return found

    def _resolve_near(self) -> near.NearCache:
        options = self._near_options
        assert options is not None
        alias = self.database
        serializer = type(self._codec.serializer)
        return near.near_cache(
            alias,
            connections[alias].vendor,
            options,
            self._codec,
            (serializer.__module__, serializer.__qualname__),
        )

    def _near_usable(self) -> near.NearCache | None:
        """The near cache, unless this call must bypass it: inside a
        transaction, reads see its own writes and a rollback must leave
        nothing in memory, so everything goes to the database."""
        found = self.near_cache
        if found is None or db.in_atomic_block(found.alias):
            return None
        return found

    def _near_written(self, key_hashes: Sequence[str]) -> None:
        """Drop written keys from every memory of this database: now, and
        again when the transaction the write is in commits (memory may have
        been filled meanwhile by threads that saw the value before it)."""
        found = self.near_cache
        if found is None:
            return
        alias, store_hash = found.alias, self._store_hash
        near.forget(alias, store_hash, key_hashes)
        if connections[alias].in_atomic_block:
            transaction.on_commit(lambda: near.forget(alias, store_hash, key_hashes), using=alias)

    def _near_cleared(self, every_store: bool = False) -> None:
        """:meth:`_near_written` for all keys of this store (or of every store)."""
        found = self.near_cache
        if found is None:
            return
        alias, store_hash = found.alias, None if every_store else self._store_hash
        near.forget_store(alias, store_hash)
        if connections[alias].in_atomic_block:
            transaction.on_commit(lambda: near.forget_store(alias, store_hash), using=alias)

    def _near_get(self, key_hash: str, default: Any) -> Any:
        """:meth:`get` through the near cache: from memory when it holds the
        key and knows it current, else from the database (the write database:
        memory is kept true against it), filling memory."""
        memory = self._near_usable()
        if memory is None:
            return self._get_stored(key_hash, default)
        value = memory.get(self._store_hash, key_hash)
        if value is near.MISS:
            ticket = memory.ticket()
            dialect, cursor = self._sql()
            with cursor:
                cursor.execute(dialect.near_get_sql, (self._store_hash, key_hash, time.time()))
                row = cursor.fetchone()
            value = self._near_filled(memory, ticket, key_hash, row)
        return default if value is near.ABSENT else value

    def _near_filled(
        self, memory: near.NearCache, ticket: int | None, key_hash: str, row: Any
    ) -> Any:
        """The value of a row read for the near cache (ABSENT if there was
        none), kept in memory if still current."""
        if row is None:
            memory.fill_absent(ticket, self._store_hash, key_hash)
            return near.ABSENT
        fmt, data, number, expires = row
        value = self._decode(key_hash, fmt, data, number)
        memory.fill(ticket, self._store_hash, key_hash, value, (fmt, data, number), expires)
        return value

    def _identify(self, made_key: str) -> tuple[bytes, str]:
        """(key bytes, key hash) of a made key."""
        key_bytes = encode_name(made_key)
        return key_bytes, name_hash(key_bytes)

    def _key_hash(self, key: Any, version: int | None) -> str:
        """The lookup hash of a key, made and checked as every operation does
        (the hashes of recently used keys are remembered: a near-cache hit
        would spend a third of its time hashing)."""
        recent = self._recent_hashes
        if version is None and type(key) is str:
            found = recent.get(key)
            if found is not None:
                return found
        made = self.make_and_validate_key(key, version)
        found = name_hash(encode_name(made))
        # Only keys that validate silently: a warning is given every time.
        if version is None and type(key) is str and self._stock_key_methods and _portable(made):
            if len(recent) >= RECENT_HASHES:
                recent.clear()
            recent[key] = found
        return found

    def _identity(self, key_hash: str) -> bytes:
        """What a signature binds a value to: this store and this key."""
        return (self._store_hash + key_hash).encode()

    def _row(self, made_key: str, value: Any, expires: float | None, now: float) -> Row:
        key_bytes, key_hash = self._identify(made_key)
        fmt, data, number = self._codec.encode(self._identity(key_hash), value)
        return (
            self._store_bytes,
            key_bytes,
            self._store_hash,
            key_hash,
            fmt,
            data,
            number,
            expires,
            now,
            now,
        )

    def _decode(self, key_hash: str, fmt: str, data: bytes, number: int | None) -> Any:
        return self._codec.decode(self._identity(key_hash), fmt, data, number)

    def _before_write(self, dialect: Dialect, cursor: db.Cursor, now: float) -> None:
        """Cull when MAX_ENTRIES is set and the store may be full.

        Django's meaning (before a write, a store at MAX_ENTRIES loses its
        expired entries, then 1/CULL_FREQUENCY of the rest, or everything when
        CULL_FREQUENCY is 0), without a COUNT(*) on every write: the count is
        tracked locally from what each write reports and re-read only when it
        reaches the limit or every RECOUNT_EVERY writes.
        """
        if not self._cull_enabled:
            return
        if (
            self._entries is not None
            and self._entries < self._max_entries
            and self._writes_since_count < RECOUNT_EVERY
        ):
            return
        count = self._count_rows(cursor, dialect)
        if count >= self._max_entries:
            cursor.execute(dialect.purge_store_sql, (self._store_hash, now))
            count = self._count_rows(cursor, dialect)
        if count >= self._max_entries:
            if self._cull_frequency == 0:
                cursor.execute(dialect.clear_sql, (self._store_hash,))
                count = 0
            else:
                culled = count // self._cull_frequency
                dialect.cull(cursor, self._store_hash, culled)
                count -= culled
            if self._near is not None:
                self._near_cleared()
        self._entries = count
        self._writes_since_count = 0

    def _count_rows(self, cursor: db.Cursor, dialect: Dialect) -> int:
        cursor.execute(dialect.count_all_sql, (self._store_hash,))
        return int(cursor.fetchone()[0])

    def _after_write(self, dialect: Dialect, new_rows: int, expiring: int, now: float) -> None:
        if self._count_write(new_rows, expiring):
            self._purge_riding_along(dialect, now)

    def _count_write(self, new_rows: int, expiring: int) -> bool:
        """Track the store size; True when a purge of expired rows is due:
        every PURGE_EVERY writes that carried a timeout, at most PURGE_BATCH
        at a time, so the table cannot grow without bound while no write
        needs it to."""
        if self._entries is not None:
            self._entries += new_rows
        self._writes_since_count += 1
        if expiring and self._purge_every:
            # Counted by the configured backend and shared by its store() and
            # KeyVal views, so a view made for each write still purges. Threads
            # may race on the count; a lost count only delays a purge.
            schedule = self._purge_schedule
            schedule.pending += expiring
            if schedule.pending >= self._purge_every:
                schedule.pending = 0
                return True
        return False

    def _purge_riding_along(self, dialect: Dialect, now: float) -> None:
        """Purge after a write, without ever failing the write, which has
        been made (and outside a transaction committed) by then: a purge that
        fails is left to the next one. A lost deadlock is expected under
        concurrent writers and passes silently; any other error is logged
        (logger ``keyval_backend``), and the next operation meets the database
        as it is. In a transaction the purge runs in a savepoint, so its
        failure does not abort the caller's transaction."""
        alias = dialect.alias
        in_transaction = connections[alias].in_atomic_block
        try:
            savepoint = transaction.atomic(using=alias) if in_transaction else nullcontext()
            with savepoint, db.cursor(alias) as cursor:
                dialect.purge_expired(cursor, now, self._purge_batch)
        except DatabaseError as exc:
            _purge_failed(exc)

    def _write(self, made_key: str, value: Any, timeout: Any, statement: str) -> bool:
        dialect = self._get_dialect()
        now = time.time()
        row = self._row(made_key, value, self.get_backend_timeout(timeout), now)
        write = getattr(dialect, statement)

        def attempt() -> bool:
            with db.cursor(dialect.alias) as cursor:
                self._before_write(dialect, cursor, now)
                return bool(write(cursor, row))

        written = db.retry_on_deadlock(dialect.alias, attempt)
        if self._near is not None:
            self._near_written((row[3],))
        self._after_write(dialect, int(written), row[7] is not None, now)
        return written

    # -- the cache API ----------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        key_hash = self._key_hash(key, version)
        if self._near is not None:
            return self._near_get(key_hash, default)
        return self._get_stored(key_hash, default)

    def _get_stored(self, key_hash: str, default: Any) -> Any:
        dialect, cursor = self._read_sql()
        with cursor:
            cursor.execute(dialect.get_sql, (self._store_hash, key_hash, time.time()))
            row = cursor.fetchone()
        if row is None:
            return default
        fmt, data, number = row
        return self._decode(key_hash, fmt, data, number)

    def set(  # type: ignore[override]  # django-redis: nx, xx, a result
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        """Store ``value``; True if it was written (django-redis's result).
        ``nx``: only if the key is absent (:meth:`add`); ``xx``: only if it
        exists. A key that held a hash, set or sorted set holds the value
        instead, as in Redis."""
        if nx and xx:
            raise ValueError("set allows either nx or xx, not both")
        if nx:
            return self.add(key, value, timeout, version)
        if xx:
            return self._replace(key, value, timeout, version)
        self._write(self.make_and_validate_key(key, version), value, timeout, "upsert")
        return True

    def _replace(self, key: Any, value: Any, timeout: Any, version: int | None) -> bool:
        dialect = self._get_dialect()
        now = time.time()
        row = self._row(
            self.make_and_validate_key(key, version), value, self.get_backend_timeout(timeout), now
        )
        params = (row[4], row[5], row[6], row[7], now, row[2], row[3], now)

        def attempt() -> bool:
            with db.cursor(dialect.alias) as cursor:
                cursor.execute(dialect.replace_sql, params)
                return bool(cursor.rowcount)

        replaced = db.retry_on_deadlock(dialect.alias, attempt)
        if self._near is not None:
            self._near_written((row[3],))
        return replaced

    def upsert(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Set ``key`` and return True if it was absent (or expired) before,
        False if a live value was overwritten; atomic, one statement."""
        return self._write(self.make_and_validate_key(key, version), value, timeout, "upsert")

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self._write(self.make_and_validate_key(key, version), value, timeout, "add")

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key_hash = self._key_hash(key, version)
        dialect = self._get_dialect()
        params = (self.get_backend_timeout(timeout), self._store_hash, key_hash, time.time())

        def attempt() -> bool:
            with db.cursor(dialect.alias) as cursor:
                cursor.execute(dialect.touch_sql, params)
                return bool(cursor.rowcount)

        touched = db.retry_on_deadlock(dialect.alias, attempt)
        if self._near is not None:
            self._near_written((key_hash,))
        return touched

    def delete(self, key: Any, version: int | None = None) -> bool:
        key_hash = self._key_hash(key, version)
        dialect = self._get_dialect()

        def attempt() -> bool:
            with db.cursor(dialect.alias) as cursor:
                cursor.execute(dialect.delete_sql, (self._store_hash, key_hash, time.time()))
                return bool(cursor.rowcount)

        deleted = db.retry_on_deadlock(dialect.alias, attempt)
        if self._near is not None:
            self._near_written((key_hash,))
        return deleted

    def has_key(self, key: Any, version: int | None = None) -> bool:
        key_hash = self._key_hash(key, version)
        if self._near is not None:
            memory = self._near_usable()
            if memory is not None:
                held = memory.get(self._store_hash, key_hash)
                if held is not near.MISS:
                    return held is not near.ABSENT
        dialect, cursor = self._read_sql()
        with cursor:
            cursor.execute(dialect.has_key_sql, (self._store_hash, key_hash, time.time()))
            return cursor.fetchone() is not None

    def pop(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Delete ``key`` and return its value, or ``default`` if it is absent.

        Exactly once under concurrency: of several processes popping one key,
        one gets the value and the others get ``default``.
        """
        made_key = self.make_and_validate_key(key, version)
        key_bytes, key_hash = self._identify(made_key)
        dialect = self._get_dialect()

        def attempt() -> Popped | None:
            with db.cursor(dialect.alias) as cursor:
                return dialect.pop(cursor, self._store_hash, key_hash, time.time())

        stored = db.retry_on_deadlock(dialect.alias, attempt)
        if self._near is not None:
            self._near_written((key_hash,))
        if stored is None:
            return default
        try:
            return self._decode(key_hash, stored[0], stored[1], stored[2])
        except UnreadableValue:
            # Put the row back exactly as it was (same id, timestamps and write
            # count), so that nothing is lost and it can be inspected; a value
            # written meanwhile wins.
            with db.cursor(dialect.alias) as cursor:
                cursor.execute(dialect.restore_sql, self._restored(key_bytes, key_hash, stored))
            raise

    def _restored(self, key_bytes: bytes, key_hash: str, stored: Popped) -> tuple[Any, ...]:
        """The parameters that put a popped row back exactly as it was."""
        fmt, data, number, expires, row_id, created, updated, writes = stored
        return (
            row_id, self._store_bytes, key_bytes, self._store_hash, key_hash,
            fmt, data, number, expires, created, updated, writes,
        )  # fmt: skip

    def incr(
        self, key: Any, delta: int = 1, version: int | None = None, ignore_key_check: bool = False
    ) -> Any:
        """Add ``delta`` in the database, keeping the key's expiry.

        Native 64-bit integers are added in one SQL statement; other numbers
        (and sums that leave 64 bits) take a compare-and-swap loop in Python,
        which never loses a concurrent update either. A missing key raises
        ValueError, unless ``ignore_key_check`` (django-redis): then it is
        created at ``delta``, never expiring, in the same one statement.
        """
        if ignore_key_check:
            return self._incr_or_create(key, delta, version)
        key_hash = self._key_hash(key, version)
        identity = self._identity(key_hash)
        dialect = self._get_dialect()
        if type(delta) is int and INT64_MIN <= delta <= INT64_MAX:

            def attempt() -> int | None:
                with db.cursor(dialect.alias) as cursor:
                    return dialect.incr(cursor, self._store_hash, key_hash, delta, time.time())

            value = db.retry_on_deadlock(dialect.alias, attempt)
            if value is not None:
                if self._near is not None:
                    self._near_written((key_hash,))
                return value
        for _ in range(INCR_ATTEMPTS):
            now = time.time()
            with db.cursor(dialect.alias) as cursor:
                cursor.execute(dialect.get_versioned_sql, (self._store_hash, key_hash, now))
                current = cursor.fetchone()
            if current is None:
                raise ValueError(f"Key '{key}' not found")
            row_id, writes, *stored = current
            new_value = self._codec.decode(identity, *stored) + delta
            fmt, data, number = self._codec.encode(identity, new_value)
            with db.cursor(dialect.alias) as cursor:
                cursor.execute(dialect.replace_value_sql, (fmt, data, number, now, row_id, writes))
                replaced = cursor.rowcount == 1
            if replaced:
                if self._near is not None:
                    self._near_written((key_hash,))
                return new_value
        raise DatabaseError(f"incr of key {key!r} kept losing races ({INCR_ATTEMPTS} attempts)")

    def decr(
        self, key: Any, delta: int = 1, version: int | None = None, ignore_key_check: bool = False
    ) -> Any:
        return self.incr(key, -delta, version, ignore_key_check)

    def _incr_or_create(self, key: Any, delta: int, version: int | None) -> Any:
        made_key = self.make_and_validate_key(key, version)
        dialect = self._get_dialect()
        if type(delta) is int and INT64_MIN <= delta <= INT64_MAX:
            row = self._row(made_key, delta, None, time.time())

            def attempt() -> int | None:
                with db.cursor(dialect.alias) as cursor:
                    return dialect.incr_or_create(cursor, row, delta)

            value = db.retry_on_deadlock(dialect.alias, attempt)
            if value is not None:
                if self._near is not None:
                    self._near_written((row[3],))
                return value
        # A value that is not a native integer (or a vendor without the
        # statement): add where absent, else increment; each step is atomic,
        # and a lost race on either only means trying the other again.
        for _ in range(INCR_ATTEMPTS):
            try:
                return self.incr(key, delta, version)
            except ValueError:
                if self.add(key, delta, None, version):
                    return delta
        raise DatabaseError(f"incr of key {key!r} kept losing races ({INCR_ATTEMPTS} attempts)")

    def get_or_set(
        self,
        key: Any,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        lock: bool = False,
        lock_timeout: float = 60,
        blocking_timeout: float = 10,
    ) -> Any:
        """Django's get_or_set; with ``lock=True``, a missing value is
        computed by one caller at a time across every process (the others
        wait up to ``blocking_timeout`` seconds, then read what it stored, or
        compute it themselves if it still is not there), so an expensive
        ``default`` is not computed by every process at once."""
        if not lock:
            return super().get_or_set(key, default, timeout, version)
        value = self.get(key, _MISSING, version)
        if value is not _MISSING:
            return value
        guard = self.lock(f"{key}:get_or_set.lock", version, timeout=lock_timeout)
        held = guard.acquire(blocking_timeout=blocking_timeout)
        try:
            value = self.get(key, _MISSING, version)
            if value is _MISSING:
                value = default() if callable(default) else default
                self.add(key, value, timeout, version)
                value = self.get(key, value, version)
        finally:
            if held:
                guard.release()
        return value

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        by_hash = self._by_hash(keys, version)
        held = self._near_held(by_hash, self._near_usable()) if self._near is not None else {}
        hashes = [key_hash for key_hash in by_hash if key_hash not in held]
        if not hashes:
            return self._merged(by_hash, held, {})
        dialect, cursor = self._read_sql()
        size = dialect.batch_size(1, fixed_params=2)
        found: dict[str, Stored] = {}
        with cursor:
            now = time.time()
            for start in range(0, len(hashes), size):
                chunk = hashes[start : start + size]
                cursor.execute(*dialect.get_many_query(self._store_hash, chunk, now))
                for key_hash, *stored in cursor.fetchall():
                    found[key_hash] = (stored[0], stored[1], stored[2])
        return self._merged(by_hash, held, found)

    def _near_held(self, by_hash: dict[str, Any], memory: near.NearCache | None) -> dict[str, Any]:
        """What the near cache holds of a get_many's keys (ABSENT included)."""
        if memory is None:
            return {}
        held = {}
        for key_hash in by_hash:
            value = memory.get(self._store_hash, key_hash)
            if value is not near.MISS:
                held[key_hash] = value
        return held

    def _merged(
        self, by_hash: dict[str, Any], held: dict[str, Any], found: dict[str, Stored]
    ) -> dict[Any, Any]:
        """get_many's answer from memory and the database, in the caller's order."""
        if not held:
            return self._decode_found(by_hash, found)
        read = self._decode_found(by_hash, found)
        merged: dict[Any, Any] = {}
        for key_hash, key in by_hash.items():
            value = held.get(key_hash, _MISSING)
            if value is _MISSING:
                if key in read:
                    merged[key] = read[key]
            elif value is not near.ABSENT:
                merged[key] = value
        return merged

    def _by_hash(self, keys: Iterable[Any], version: int | None) -> dict[str, Any]:
        """Each key by its lookup hash, in the caller's order."""
        by_hash: dict[str, Any] = {}
        for key in keys:
            by_hash[self._key_hash(key, version)] = key
        return by_hash

    def _decode_found(self, by_hash: dict[str, Any], found: dict[str, Stored]) -> dict[Any, Any]:
        # Decoded in the caller's key order, as Django's backends return them.
        # A hash, set, sorted set or lock reads as absent, as MGET gives nil.
        return {
            key: self._decode(key_hash, *found[key_hash])
            for key_hash, key in by_hash.items()
            if key_hash in found and found[key_hash][0] not in KIND_FORMATS
        }

    def set_many(
        self,
        data: Mapping[Any, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        """Write every pair or none: one statement per chunk of rows, and one
        transaction around the chunks when there are several."""
        dialect = self._get_dialect()
        now = time.time()
        batch = self._batch(data, timeout, version, now)
        if batch:
            self._write_batch(dialect, batch, dialect.row_batches(batch), now)
        return []

    def _batch(
        self, data: Mapping[Any, Any], timeout: Any, version: int | None, now: float
    ) -> list[Row]:
        """The rows of a set_many, one per made key (the last of two keys
        that make the same key wins)."""
        expires = self.get_backend_timeout(timeout)
        rows: dict[str, Row] = {}
        for key, value in data.items():
            row = self._row(self.make_and_validate_key(key, version), value, expires, now)
            rows[row[3]] = row
        return list(rows.values())

    def _write_batch(
        self, dialect: Dialect, batch: list[Row], parts: list[Sequence[Row]], now: float
    ) -> None:
        expiring = sum(row[7] is not None for row in batch)

        def attempt() -> None:
            atomic = transaction.atomic(using=dialect.alias) if len(parts) > 1 else nullcontext()
            with atomic, db.cursor(dialect.alias) as cursor:
                self._before_write(dialect, cursor, now)
                for part in parts:
                    cursor.execute(*dialect.set_many_query(part))

        db.retry_on_deadlock(dialect.alias, attempt)
        if self._near is not None:
            self._near_written([row[3] for row in batch])
        # Counted as new: an overestimate only makes the cull re-count sooner.
        self._after_write(dialect, len(batch), expiring, now)

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        hashes = list({self._key_hash(key, version): None for key in keys})
        if not hashes:
            return
        dialect = self._get_dialect()
        size = dialect.batch_size(1, fixed_params=1)

        def attempt() -> None:
            with db.cursor(dialect.alias) as cursor:
                for start in range(0, len(hashes), size):
                    chunk = hashes[start : start + size]
                    cursor.execute(*dialect.delete_many_query(self._store_hash, chunk))

        db.retry_on_deadlock(dialect.alias, attempt)
        if self._near is not None:
            self._near_written(hashes)

    def clear(self) -> None:
        """Delete every entry of this store (and only this store)."""
        dialect, cursor = self._sql()
        with cursor:
            cursor.execute(dialect.clear_sql, (self._store_hash,))
        self._entries = 0
        if self._near is not None:
            self._near_cleared()

    def flush_all(self) -> None:
        """Delete every entry of every store in this backend's database."""
        dialect, cursor = self._sql()
        with cursor:
            cursor.execute(dialect.flush_all_sql)
        self._entries = 0
        if self._near is not None:
            self._near_cleared(every_store=True)

    def purge_expired(self, limit: int | None = None) -> int:
        """Delete up to ``limit`` (default ``PURGE_BATCH``) expired rows of any
        store; return how many. Call it until it returns less than the limit
        to purge everything."""
        dialect = self._get_dialect()

        def attempt() -> int:
            with db.cursor(dialect.alias) as cursor:
                return dialect.purge_expired(cursor, time.time(), limit or self._purge_batch)

        return db.retry_on_deadlock(dialect.alias, attempt)

    def stores(self) -> dict[str, int]:
        """Every store of this backend's database that has live entries, with
        its number of live entries (all versions)."""
        dialect, cursor = self._sql()
        with cursor:
            cursor.execute(dialect.stores_sql, (time.time(),))
            return {decode_name(name): int(count) for name, count in cursor.fetchall()}

    # -- the async API (natively where keyval_backend.aio has a driver) -----------

    def _native(self) -> aio.Driver[Any] | None:
        """The driver that runs this call in the event loop, or None: the
        call takes Django's thread (the sync method, same connection and
        transaction). None too before any call has built this database's
        dialect (the thread builds it: SQLite's reads the connection), and
        with MAX_ENTRIES set (a cull is several statements)."""
        if self._cull_enabled:
            return None
        dialect = self._dialect
        if dialect is None:
            dialect = self._dialect = built_dialect(self.database, TABLE)
            if dialect is None:
                return None
        return aio.driver(dialect)

    def _native_read(self) -> aio.Driver[Any] | None:
        """:meth:`_native` for the reads ``READ_DATABASE`` may serve (those
        of :meth:`_read_sql`): its driver, when that alias has one."""
        alias = self._read_database if self.misconfigured is None else None
        if alias is None:
            return self._native()
        dialect = built_dialect(alias, TABLE)
        return None if dialect is None else aio.driver(dialect)

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        if self._near is not None:
            return await self._anear_get(key, default, version)
        driver = self._native_read()
        if driver is None:
            return await _in_thread(self.get, key, default, version)
        key_hash = self._key_hash(key, version)
        rows, _ = await driver.read(
            driver.dialect.get_sql, (self._store_hash, key_hash, time.time())
        )
        if not rows:
            return default
        fmt, data, number = rows[0]
        return self._decode(key_hash, fmt, data, number)

    async def _anear_get(self, key: Any, default: Any, version: int | None) -> Any:
        """:meth:`_near_get` from an event loop: a hit costs no await."""
        memory = self._anear_usable()
        if memory is None:
            return await _in_thread(self.get, key, default, version)
        key_hash = self._key_hash(key, version)
        value = memory.get(self._store_hash, key_hash)
        if value is near.MISS:
            driver = self._native()
            if driver is None:
                return await _in_thread(self.get, key, default, version)
            ticket = memory.ticket()
            rows, _ = await driver.read(
                driver.dialect.near_get_sql, (self._store_hash, key_hash, time.time())
            )
            value = self._near_filled(memory, ticket, key_hash, rows[0] if rows else None)
        return default if value is near.ABSENT else value

    def _anear_usable(self) -> near.NearCache | None:
        """The near cache, where this async call may use it: not where it
        must join a sync caller's transaction (the thread path decides)."""
        memory = self.near_cache
        if memory is None:
            return None
        try:
            allowed = aio.native_allowed(memory.alias)
        except aio.NativeTransactionError:
            return None
        return memory if allowed else None

    async def aset(  # type: ignore[override]  # django-redis: nx, xx, a result
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        driver = self._native()
        if driver is None or (nx and xx):  # the sync method raises for both
            return await _in_thread(self.set, key, value, timeout, version, nx, xx)
        if nx:
            return await self.aadd(key, value, timeout, version)
        made_key = self.make_and_validate_key(key, version)
        if xx:
            return await self._areplace(driver, made_key, value, timeout)
        await self._awrite(driver, made_key, value, timeout, "aupsert")
        return True

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        driver = self._native()
        if driver is None:
            return await _in_thread(self.add, key, value, timeout, version)
        return await self._awrite(
            driver, self.make_and_validate_key(key, version), value, timeout, "aadd"
        )

    async def aupsert(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        driver = self._native()
        if driver is None:
            return await _in_thread(self.upsert, key, value, timeout, version)
        return await self._awrite(
            driver, self.make_and_validate_key(key, version), value, timeout, "aupsert"
        )

    async def _awrite(
        self, driver: aio.Driver[Any], made_key: str, value: Any, timeout: Any, step: str
    ) -> bool:
        """:meth:`_write` through the dialect's async ``step``."""
        now = time.time()
        row = self._row(made_key, value, self.get_backend_timeout(timeout), now)
        write = getattr(driver.dialect, step)
        written: bool = await aio.retry_on_deadlock(lambda: write(driver.run, row))
        if self._near is not None:
            self._near_written((row[3],))
        await self._aafter_write(driver, int(written), row[7] is not None, now)
        return written

    async def _aafter_write(
        self, driver: aio.Driver[Any], new_rows: int, expiring: int, now: float
    ) -> None:
        """:meth:`_after_write`: the purge riding along never fails the write."""
        if self._count_write(new_rows, expiring):
            try:
                await driver.dialect.apurge_expired(driver.run, now, self._purge_batch)
            except DatabaseError as exc:
                _purge_failed(exc)

    async def _areplace(
        self, driver: aio.Driver[Any], made_key: str, value: Any, timeout: Any
    ) -> bool:
        now = time.time()
        row = self._row(made_key, value, self.get_backend_timeout(timeout), now)
        params = (row[4], row[5], row[6], row[7], now, row[2], row[3], now)
        replaced = await self._arowcount(driver, driver.dialect.replace_sql, params)
        if self._near is not None:
            self._near_written((row[3],))
        return replaced

    async def _arowcount(self, driver: aio.Driver[Any], sql: str, params: Sequence[Any]) -> bool:
        """True if a single-row write changed its row."""

        async def attempt() -> bool:
            _, count = await driver.run(sql, params)
            return bool(count)

        return await aio.retry_on_deadlock(attempt)

    async def atouch(
        self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        driver = self._native()
        if driver is None:
            return await _in_thread(self.touch, key, timeout, version)
        key_hash = self._key_hash(key, version)
        params = (self.get_backend_timeout(timeout), self._store_hash, key_hash, time.time())
        touched = await self._arowcount(driver, driver.dialect.touch_sql, params)
        if self._near is not None:
            self._near_written((key_hash,))
        return touched

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        driver = self._native()
        if driver is None:
            return await _in_thread(self.delete, key, version)
        key_hash = self._key_hash(key, version)
        params = (self._store_hash, key_hash, time.time())
        deleted = await self._arowcount(driver, driver.dialect.delete_sql, params)
        if self._near is not None:
            self._near_written((key_hash,))
        return deleted

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        memory = None if self._near is None else self._anear_usable()
        if memory is not None:
            held = memory.get(self._store_hash, self._key_hash(key, version))
            if held is not near.MISS:
                return held is not near.ABSENT
        driver = self._native_read()
        if driver is None:
            return await _in_thread(self.has_key, key, version)
        key_hash = self._key_hash(key, version)
        rows, _ = await driver.read(
            driver.dialect.has_key_sql, (self._store_hash, key_hash, time.time())
        )
        return bool(rows)

    async def apop(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        driver = self._native()
        if driver is None:
            return await _in_thread(self.pop, key, default, version)
        key_bytes, key_hash = self._identify(self.make_and_validate_key(key, version))
        dialect = driver.dialect
        stored = await aio.retry_on_deadlock(
            lambda: dialect.apop(driver.run, self._store_hash, key_hash, time.time())
        )
        if self._near is not None:
            self._near_written((key_hash,))
        if stored is None:
            return default
        try:
            return self._decode(key_hash, stored[0], stored[1], stored[2])
        except UnreadableValue:
            await driver.run(dialect.restore_sql, self._restored(key_bytes, key_hash, stored))
            raise

    async def aincr(
        self, key: Any, delta: int = 1, version: int | None = None, ignore_key_check: bool = False
    ) -> Any:
        # BaseCache.aincr reads, adds and writes back: not atomic. Here the
        # native path runs the one SQL statement; what it leaves (a missing
        # key, a value that is not a 64-bit integer, an overflow) goes to the
        # sync method, whose compare-and-swap loop decides, as it would have.
        driver = self._native()
        if driver is not None and type(delta) is int and INT64_MIN <= delta <= INT64_MAX:
            made_key = self.make_and_validate_key(key, version)
            dialect = driver.dialect
            key_hash = self._identify(made_key)[1]
            if ignore_key_check:
                row = self._row(made_key, delta, None, time.time())
                value = await aio.retry_on_deadlock(
                    lambda: dialect.aincr_or_create(driver.run, row, delta)
                )
            else:
                value = await aio.retry_on_deadlock(
                    lambda: dialect.aincr(
                        driver.run, self._store_hash, key_hash, delta, time.time()
                    )
                )
            if value is not None:
                if self._near is not None:
                    self._near_written((key_hash,))
                return value
        return await _in_thread(self.incr, key, delta, version, ignore_key_check)

    async def adecr(
        self, key: Any, delta: int = 1, version: int | None = None, ignore_key_check: bool = False
    ) -> Any:
        return await self.aincr(key, -delta, version, ignore_key_check)

    async def aget_or_set(
        self,
        key: Any,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        lock: bool = False,
        lock_timeout: float = 60,
        blocking_timeout: float = 10,
    ) -> Any:
        if not lock:
            # Django's: aget, aadd, aget, each native here.
            return await super().aget_or_set(key, default, timeout, version)
        return await _in_thread(
            self.get_or_set, key, default, timeout, version, lock, lock_timeout, blocking_timeout
        )

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        driver = self._native_read()
        if driver is None:
            return await _in_thread(self.get_many, list(keys), version)
        by_hash = self._by_hash(keys, version)
        held = self._near_held(by_hash, self._anear_usable()) if self._near is not None else {}
        hashes = [key_hash for key_hash in by_hash if key_hash not in held]
        if not hashes:
            return self._merged(by_hash, held, {})
        dialect = driver.dialect
        size = dialect.batch_size(1, fixed_params=2)
        found: dict[str, Stored] = {}
        now = time.time()
        for start in range(0, len(hashes), size):
            query = dialect.get_many_query(self._store_hash, hashes[start : start + size], now)
            rows, _ = await driver.read(*query)
            for key_hash, *stored in rows:
                found[key_hash] = (stored[0], stored[1], stored[2])
        return self._merged(by_hash, held, found)

    async def aset_many(
        self,
        data: Mapping[Any, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        """Natively when the rows make one statement; several statements
        make one transaction, which takes the thread."""
        driver = self._native()
        if driver is None:
            return await _in_thread(self.set_many, data, timeout, version)
        dialect = driver.dialect
        now = time.time()
        batch = self._batch(data, timeout, version, now)
        if not batch:
            return []
        parts = dialect.row_batches(batch)
        if len(parts) > 1:
            await _in_thread(self._write_batch, dialect, batch, parts, now)
            return []

        async def attempt() -> None:
            await driver.run(*dialect.set_many_query(parts[0]))

        await aio.retry_on_deadlock(attempt)
        if self._near is not None:
            self._near_written([row[3] for row in batch])
        await self._aafter_write(driver, len(batch), sum(r[7] is not None for r in batch), now)
        return []

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        driver = self._native()
        if driver is None:
            await _in_thread(self.delete_many, list(keys), version)
            return
        hashes = list({self._key_hash(key, version): None for key in keys})
        dialect = driver.dialect
        size = dialect.batch_size(1, fixed_params=1)
        for start in range(0, len(hashes), size):
            query = dialect.delete_many_query(self._store_hash, hashes[start : start + size])

            async def attempt(query: tuple[str, list[Any]] = query) -> None:
                await driver.run(*query)

            await aio.retry_on_deadlock(attempt)
        if self._near is not None:
            self._near_written(hashes)

    async def aclear(self) -> None:
        driver = self._native()
        if driver is None:
            return await _in_thread(self.clear)
        await driver.run(driver.dialect.clear_sql, (self._store_hash,))
        self._entries = 0
        if self._near is not None:
            self._near_cleared()

    async def aclose(self, **kwargs: Any) -> None:
        """Close the native driver's connections of the running event loop
        (the next call opens them again). They close by themselves when the
        loop ends."""
        dialect = self._dialect
        if dialect is not None:
            await aio.aclose(dialect)

    # -- the store as a collection ----------------------------------------------

    def _key_range(
        self, prefix: str, version: int | None, key_prefix: str | None = None
    ) -> tuple[bytes, bytes, Callable[[str], str | None]]:
        """Byte range of the made keys of this version (and ``KEY_PREFIX``, or
        ``key_prefix``) that start with ``prefix``, and the function that
        turns a made key back into a key."""
        if self.misconfigured is not None:
            raise self.misconfigured
        if key_prefix is None:
            key_prefix = self.key_prefix
        if self.key_func is default_key_func:
            made_prefix = f"{key_prefix}:{self.version if version is None else version}:"
            low = encode_name(made_prefix + prefix)
            cut = len(made_prefix)
            return low, prefix_upper_bound(low), lambda made: made[cut:]
        if self._reverse_key is None:
            raise ImproperlyConfigured(
                "Listing keys with a custom KEY_FUNCTION needs "
                "OPTIONS['REVERSE_KEY_FUNCTION'], a function from a made key to the key"
            )
        reverse = self._reverse_key

        key_version = self.version if version is None else version

        def unmake(made: str) -> str | None:
            # Only keys this key function makes for this prefix and version.
            key = reverse(made)
            if not key.startswith(prefix) or self.key_func(key, key_prefix, key_version) != made:
                return None
            return key

        return b"", b"\xff", unmake

    def _pages(
        self,
        prefix: str,
        version: int | None,
        values: bool,
        match: re.Pattern[str] | None = None,
        key_prefix: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[tuple[str, str, Any]]:
        """``(key, key hash, value or None)`` of the live keys that start with
        ``prefix`` (and fully match ``match``), a page at a time, from
        ``READ_DATABASE`` if set. (delete_pattern walks :class:`KeyPages` on
        the database it deletes from.)"""
        pages = self._key_pages(prefix, version, values, match, key_prefix, page_size)
        while not pages.done:
            yield from pages.take(*self._page(pages))

    def _key_pages(
        self,
        prefix: str,
        version: int | None,
        values: bool = False,
        match: re.Pattern[str] | None = None,
        key_prefix: str | None = None,
        page_size: int | None = None,
    ) -> KeyPages:
        return KeyPages(self, prefix, version, values, match, key_prefix, page_size)

    def _page(self, pages: KeyPages) -> tuple[Dialect, list[Any]]:
        """The next page's rows, read on Django's connection (of
        ``READ_DATABASE`` if set)."""
        dialect, cursor = self._read_sql()
        with cursor:
            cursor.execute(*pages.query(dialect))
            return dialect, cursor.fetchall()

    async def _apages(
        self,
        prefix: str,
        version: int | None,
        match: re.Pattern[str] | None,
        page_size: int | None,
    ) -> AsyncIterator[tuple[str, str]]:
        """:meth:`_pages` of keys (no values) from an event loop: each page
        read on the native driver of ``READ_DATABASE`` (else of
        :attr:`database`), or in Django's thread where there is none."""
        pages = self._key_pages(prefix, version, False, match, None, page_size)
        driver = self._native_read()
        while not pages.done:
            if driver is None:
                found = pages.take(*await _in_thread(self._page, pages))
            else:
                rows, _ = await driver.read(*pages.query(driver.dialect))
                found = pages.take(driver.dialect, rows)
            for key, key_hash, _ in found:
                yield key, key_hash

    def iter_items(self, prefix: str = "", version: int | None = None) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` pairs of the live keys of this store (of this
        version) that start with ``prefix``, read a page at a time. A hash,
        set, sorted set or lock raises WrongTypeError."""
        for key, _, value in self._pages(prefix, version, values=True):
            yield key, value

    def count(self, version: int | None = None) -> int:
        """The number of live keys of this store (of this version)."""
        if self.key_func is not default_key_func:
            return sum(1 for _ in self.iter_keys("*", version=version))
        low, high, _ = self._key_range("", version)
        dialect, cursor = self._read_sql()
        with cursor:
            cursor.execute(dialect.count_sql, (self._store_hash, time.time(), low, high))
            return int(cursor.fetchone()[0])


class KeyPages:
    """One walk through the key index, a page per statement: the statement of
    the next page, and the keys of its rows. It does no I/O, so the sync
    iterators run its statements on Django's connection and the async ones
    (and delete_pattern's steps) on the native driver."""

    __slots__ = ("after", "cache", "done", "high", "low", "match", "size", "unmake", "values")

    def __init__(
        self,
        cache: KeyValCache,
        prefix: str,
        version: int | None,
        values: bool,
        match: re.Pattern[str] | None,
        key_prefix: str | None,
        page_size: int | None,
    ) -> None:
        self.cache = cache
        self.low, self.high, self.unmake = cache._key_range(prefix, version, key_prefix)
        self.values = values
        self.match = match
        self.size = page_size or PAGE_SIZE
        self.after: Any = None
        self.done = False

    def query(self, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
        return dialect.page_query(
            self.values,
            self.cache._store_hash,
            self.after,
            time.time(),
            self.low,
            self.high,
            self.size,
        )

    def take(self, dialect: Dialect, rows: Sequence[Any]) -> list[tuple[str, str, Any]]:
        """``(key, key hash, value or None)`` of the page's rows that match."""
        if len(rows) < self.size:
            self.done = True
        else:
            self.after = dialect.page_after(rows[-1])
        found = []
        for row in rows:
            key = self.unmake(decode_name(row[1]))
            if key is not None and (self.match is None or self.match.fullmatch(key)):
                value = self.cache._decode(row[0], row[2], row[3], row[4]) if self.values else None
                found.append((key, row[0], value))
        return found


async def _in_thread(method: Callable[..., _T], *args: Any) -> _T:
    """The thread path: ``method`` in Django's thread for the database (the
    caller's thread under async_to_sync, so inside its transaction)."""
    return await sync_to_async(method, thread_sensitive=True)(*args)


class _PurgeSchedule:
    """Rows written with a timeout since the last purge (a mutable cell that
    copies of a backend share)."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = 0


def _purge_failed(exc: DatabaseError) -> None:
    if not db.is_deadlock(exc):
        logger.warning(
            "Purging expired rows after a write failed; the next purge will retry",
            exc_info=True,
        )


def _portable(made_key: str) -> bool:
    """True for a made key Django would not warn about: at most 250
    characters, none of them a control character or a space (what its regex
    looks for). Checked without the regex, since it is true of most keys."""
    return (
        len(made_key) <= MEMCACHE_MAX_KEY_LENGTH and made_key.isprintable() and " " not in made_key
    )


def _read_database(options: Mapping[str, Any]) -> str | None:
    alias = options.get("READ_DATABASE")
    if alias is not None and not isinstance(alias, str):
        raise ImproperlyConfigured(
            f"OPTIONS['READ_DATABASE'] must be a database alias (str), not {alias!r}"
        )
    return alias


def _non_negative_int(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    if type(value) is not int or value < 0:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a non-negative int, not {value!r}")
    return value
