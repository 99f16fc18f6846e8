"""The near cache (``OPTIONS["NEAR_CACHE"]``): values this process has read,
served from its memory for as long as they are known to be current.

A value is kept only once the database gave it outside a transaction, and is
served only while a *watcher* of its database says nothing it does not know of
was written since (docs/near_cache.rst):

- :mod:`.sqlite`: the WAL index's header in shared memory, read on every hit
  (no system call), and the change log of migration 0004 when it moved:
  staleness 0, since a commit is in that header before it returns.
- :mod:`.postgresql`: a thread that LISTENs to the notifications migration
  0004's triggers send in the writer's transaction; memory is distrusted (and
  emptied) whenever its connection or its heartbeat fails.
- :mod:`.lease`: MariaDB and MySQL push nothing, so a value is trusted for
  ``POLL_INTERVAL`` seconds after it was read.

Writes go to the database first and then drop the key here (and again when a
transaction they are in commits), so this process reads its own writes at
once. Inside ``atomic()`` everything bypasses memory.

Memory is a process-wide LRU per configured backend (``MAX_ENTRIES``), shared
by every thread, every ``store()`` and the KeyVal facade. It hands out values
that cannot be mutated (str, int, bytes...) as they are, and anything else
deserialized afresh from the verified payload, so a caller that mutates what
it got cannot change what the next one gets.
"""

from __future__ import annotations

import datetime
import decimal
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from ..codec import INT_FORMAT, KIND_FORMATS, RowCodec

KNOWN_OPTIONS = frozenset({"MAX_ENTRIES", "POLL_INTERVAL", "LISTEN_DATABASE"})
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_POLL_INTERVAL = 1.0
MISS: Any = object()
# What memory holds for a key the database did not have when it was read.
ABSENT: Any = object()

# Types whose instances cannot change: handed out as they are.
_IMMUTABLE = frozenset(
    {
        str, bytes, int, float, bool, complex, type(None), decimal.Decimal, uuid.UUID,
        datetime.datetime, datetime.date, datetime.time, datetime.timedelta,
    }
)  # fmt: skip


@dataclass(frozen=True)
class NearOptions:
    """The settings inside ``OPTIONS["NEAR_CACHE"]``."""

    max_entries: int = DEFAULT_MAX_ENTRIES
    poll_interval: float = DEFAULT_POLL_INTERVAL
    listen_database: str | None = None


def parse_options(value: Any) -> NearOptions | None:
    """``OPTIONS["NEAR_CACHE"]``: None (or absent) is off, a dict is on."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"OPTIONS['NEAR_CACHE'] must be a dict of settings ({{}} for the defaults) or "
            f"None, not {value!r}"
        )
    unknown = set(value) - KNOWN_OPTIONS
    if unknown:
        raise ImproperlyConfigured(
            f"Unknown OPTIONS['NEAR_CACHE'] settings {sorted(unknown)}; "
            f"known: {sorted(KNOWN_OPTIONS)}"
        )
    max_entries = value.get("MAX_ENTRIES", DEFAULT_MAX_ENTRIES)
    if type(max_entries) is not int or max_entries < 1:
        raise ImproperlyConfigured(
            f"OPTIONS['NEAR_CACHE']['MAX_ENTRIES'] must be an int of at least 1, "
            f"not {max_entries!r}"
        )
    interval = value.get("POLL_INTERVAL", DEFAULT_POLL_INTERVAL)
    if type(interval) not in (int, float) or not 0 < interval < float("inf"):
        raise ImproperlyConfigured(
            f"OPTIONS['NEAR_CACHE']['POLL_INTERVAL'] must be a positive number of seconds, "
            f"not {interval!r}"
        )
    listen = value.get("LISTEN_DATABASE")
    if listen is not None and not isinstance(listen, str):
        raise ImproperlyConfigured(
            f"OPTIONS['NEAR_CACHE']['LISTEN_DATABASE'] must be a database alias (str), "
            f"not {listen!r}"
        )
    return NearOptions(max_entries, float(interval), listen)


class Watcher(Protocol):
    """What tells the near caches of one database that their memory is current."""

    vendor: str

    # Seconds a filled value is trusted for, or None: until the watcher says.
    lease: float | None

    def current(self) -> bool:
        """True if memory may be trusted now (having caught up on what was
        written since the last call, where that is how it learns)."""

    def attach(self, near: NearCache) -> None:
        """Tell ``near`` what this database writes from now on."""


class NearCache:
    """The memory of one configured backend: ``(store hash, key hash)`` to a
    value (or its verified payload), its expiry and, under a lease, the time
    it stops being trusted. Thread-safe: hits read without the lock; fills,
    drops and evictions take it."""

    def __init__(self, alias: str, watcher: Watcher, options: NearOptions, codec: RowCodec) -> None:
        self.alias = alias
        self.options = options
        # Set by reset(): the backends holding it look their memory up again.
        self.retired = False
        self.watcher = watcher
        self.max_entries = options.max_entries
        self._codec = codec
        self._entries: OrderedDict[tuple[str, str], tuple[Any, ...]] = OrderedDict()
        self._lock = threading.Lock()
        # Bumped by every drop: a fill whose ticket is older may carry a value
        # read before that write, and is not kept.
        self._generation = 0
        self.hits = 0
        self.misses = 0
        watcher.attach(self)

    # -- reads ------------------------------------------------------------------

    def get(self, store_hash: str, key_hash: str) -> Any:
        """The value from memory, or MISS (then read the database, with a
        :meth:`ticket` taken first)."""
        if self.watcher.current():
            entry = self._entries.get((store_hash, key_hash))
            if entry is not None:
                loads, value, expires, until = entry
                if (expires is None or expires > time.time()) and (
                    until is None or until > time.monotonic()
                ):
                    self.hits += 1
                    try:  # noqa: SIM105  (the hit path: no context manager)
                        self._entries.move_to_end((store_hash, key_hash))
                    except KeyError:  # dropped meanwhile: what it held was current
                        pass
                    return value if loads is None else loads(value)
        self.misses += 1
        return MISS

    def ticket(self) -> int | None:
        """Taken before a database read whose result may fill memory; None if
        memory cannot be trusted now (then do not fill)."""
        return self._generation if self.watcher.current() else None

    def fill(
        self,
        ticket: int | None,
        store_hash: str,
        key_hash: str,
        value: Any,
        stored: tuple[str, bytes, int | None],
        expires: float | None,
    ) -> None:
        """Keep ``value`` (decoded from ``stored``) if nothing was dropped
        since ``ticket`` was taken. Structures and locks are never kept."""
        fmt, data, _ = stored
        if ticket is None or fmt in KIND_FORMATS:
            return
        loads: Callable[[bytes], Any] | None = None
        if not (fmt == INT_FORMAT or _immutable(value)):
            loads, value = self._codec.payload_loader(fmt, data)
        lease = self.watcher.lease
        until = None if lease is None else time.monotonic() + lease
        self._keep(ticket, (store_hash, key_hash), (loads, value, expires, until))

    def fill_absent(self, ticket: int | None, store_hash: str, key_hash: str) -> None:
        """Remember that the key was not there (a miss is served from memory
        too, until the key is written)."""
        lease = self.watcher.lease
        until = None if lease is None else time.monotonic() + lease
        self._keep(ticket, (store_hash, key_hash), (None, ABSENT, None, until))

    def _keep(self, ticket: int | None, key: tuple[str, str], entry: tuple[Any, ...]) -> None:
        if ticket is None:
            return
        with self._lock:
            if ticket != self._generation:
                return
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    # -- drops -------------------------------------------------------------------

    def forget(self, store_hash: str, key_hashes: Iterable[str]) -> None:
        with self._lock:
            self._generation += 1
            for key_hash in key_hashes:
                self._entries.pop((store_hash, key_hash), None)

    def forget_store(self, store_hash: str) -> None:
        with self._lock:
            self._generation += 1
            for key in [key for key in self._entries if key[0] == store_hash]:
                del self._entries[key]

    def forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring and tests: hits, misses, entries held."""
        return {"hits": self.hits, "misses": self.misses, "entries": len(self._entries)}


def _immutable(value: Any) -> bool:
    kind = type(value)
    if kind in _IMMUTABLE:
        return True
    if kind is tuple or kind is frozenset:
        return all(type(item) in _IMMUTABLE for item in value)
    return False


# -- one watcher a database, one memory a configured backend --------------------

_watchers: dict[tuple[str, Any], Watcher] = {}
_nears: dict[tuple[Any, ...], NearCache] = {}
# Every memory, replaced (never changed) on registration, so that drops
# iterate it without a lock.
_memories: tuple[NearCache, ...] = ()
_registry_lock = threading.Lock()
_orphans: list[Watcher] = []


def near_cache(
    alias: str, vendor: str, options: NearOptions, codec: RowCodec, config: Hashable
) -> NearCache:
    """The process's memory for the backend configured as ``config`` on
    database ``alias`` (every thread's instance of that backend shares it)."""
    global _memories
    key = (alias, options, config)
    found = _nears.get(key)
    if found is not None:
        return found
    with _registry_lock:
        found = _nears.get(key)
        if found is None:
            watcher = _watcher(alias, vendor, options)
            found = _nears[key] = NearCache(alias, watcher, options, codec)
            _memories = (*_memories, found)
    return found


def _watcher(alias: str, vendor: str, options: NearOptions) -> Watcher:
    # One watcher a database; a lease is per interval.
    detail: Any = options.listen_database if vendor == "postgresql" else None
    if vendor not in ("sqlite", "postgresql"):
        detail = options.poll_interval
    key = (alias, detail)
    watcher = _watchers.get(key)
    if watcher is None:
        watcher = _watchers[key] = _new_watcher(alias, vendor, options)
    return watcher


def _new_watcher(alias: str, vendor: str, options: NearOptions) -> Watcher:
    if vendor == "sqlite":
        from .sqlite import SQLiteWatcher

        return SQLiteWatcher(alias)
    if vendor == "postgresql":
        from .postgresql import PostgreSQLListener

        return PostgreSQLListener(options.listen_database or alias)
    from .lease import LeaseWatcher

    return LeaseWatcher(options.poll_interval)


def forget(alias: str, store_hash: str, key_hashes: Sequence[str]) -> None:
    """Drop keys from every memory of database ``alias``: this process's
    writes, read back at once by every backend configured on it."""
    for near in _memories:
        if near.alias == alias:
            near.forget(store_hash, key_hashes)


def entry_written(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    """post_save/post_delete of an Entry (the admin's edits, any ORM write):
    its key leaves this process's memories now and when the write commits.
    Other processes learn of it as of any write."""
    if not _memories:
        return
    store_hash, key_hashes = instance.store_hash, (instance.key_hash,)
    forget(using, store_hash, key_hashes)
    transaction.on_commit(lambda: forget(using, store_hash, key_hashes), using=using)


def forget_store(alias: str, store_hash: str | None) -> None:
    """Drop a store's keys (every store's, for None) from every memory of
    database ``alias``."""
    for near in _memories:
        if near.alias == alias:
            if store_hash is None:
                near.forget_all()
            else:
                near.forget_store(store_hash)


def reset() -> None:
    """Close every watcher and empty every memory; the next near read builds
    them anew. For tests, and a process that changes its databases."""
    global _memories
    with _registry_lock:
        for watcher in _watchers.values():
            close = getattr(watcher, "close", None)
            if close is not None:
                close()
        for memory in _memories:
            memory.forget_all()
            memory.watcher = _Closed()
            memory.retired = True
        _watchers.clear()
        _nears.clear()
        _memories = ()


class _Closed:
    """The watcher of a memory :func:`reset` retired: never current."""

    vendor = "closed"
    lease: float | None = None

    def current(self) -> bool:
        return False

    def attach(self, near: NearCache) -> None:
        pass


def _after_fork() -> None:
    """A forked child has none of its parent's threads or connections: it
    starts with empty memories and new watchers."""
    global _registry_lock
    _registry_lock = threading.Lock()
    # The parent's watchers are kept, never closed here: their connections
    # and maps belong to the parent.
    _orphans.extend(_watchers.values())
    _watchers.clear()
    for near in _memories:
        near._lock = threading.Lock()
        near._entries.clear()
        near._generation += 1
        near.watcher = _watcher(near.alias, near.watcher.vendor, near.options)
        near.watcher.attach(near)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
