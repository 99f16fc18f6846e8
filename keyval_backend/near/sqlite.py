"""SQLite: every commit to the database file is seen by the next read.

In WAL mode a commit updates the WAL index header in the ``-shm`` file before
it returns, whichever process made it. The watcher maps that file and compares
its first 96 bytes (the header's two copies, which a writer updates one after
the other) with what it saw at its last catch-up: equal means nothing was
committed since, at the cost of a memory compare. When they differ it reads
the change log that migration 0004's triggers keep (the keys written after the
last change it saw) and drops those keys.

Its own connection, never used by a request, reads that log; kept open, it
also keeps the ``-shm`` file from being deleted and made anew under the map.
Outside WAL mode it asks ``PRAGMA data_version`` of that connection instead,
which changes with every commit of any other connection (this process's
included, since this connection never writes): a few microseconds more a hit.
"""

from __future__ import annotations

import logging
import mmap
import sqlite3
import threading
import weakref
from typing import TYPE_CHECKING, Any

from django.db import connections

from ..sql.near import CHANGES_SQL, LAST_CHANGE_SQL

if TYPE_CHECKING:
    from . import NearCache

logger = logging.getLogger("keyval_backend")
HEADER_BYTES = 96
HALF = HEADER_BYTES // 2


class SQLiteWatcher:
    vendor = "sqlite"
    lease: float | None = None

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._nears: weakref.WeakSet[NearCache] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._map: mmap.mmap | None = None
        self._seen: bytes | None = None  # the WAL index header at the last catch-up
        self._seen_first: bytes | None = None  # its first copy
        self._data_version: int | None = None
        self._last_change: int | None = None
        self._usable = True

    def attach(self, near: NearCache) -> None:
        self._nears.add(near)

    def current(self) -> bool:
        # The header's first copy is the one a writer updates last, so an
        # unchanged first copy means no commit has finished since.
        shared = self._map
        if shared is not None and shared[:HALF] == self._seen_first:
            return True
        return self._catch_up()

    def _catch_up(self) -> bool:
        with self._lock:
            if not self._usable:
                return False
            try:
                connection = self._connection or self._open()
                if connection is None:
                    return False
                shared = self._map
                if shared is not None:
                    header = shared[:HEADER_BYTES]
                    if header == self._seen:
                        return True  # another thread caught up meanwhile
                else:
                    version = connection.execute("PRAGMA data_version").fetchone()[0]
                    if version == self._data_version:
                        return True
                self._read_changes(connection)
            except sqlite3.Error:
                logger.warning(
                    "The near cache could not read the change log of database %r; "
                    "reading from the database until it can",
                    self.alias,
                    exc_info=True,
                )
                self._seen = self._seen_first = self._data_version = None
                return False
            if shared is not None:
                # A header caught mid-update (its copies differ) is not kept:
                # the next read catches up again.
                self._seen = header if header[:HALF] == header[HALF:] else None
                self._seen_first = None if self._seen is None else header[:HALF]
            else:
                self._data_version = version
            return True

    def _open(self) -> sqlite3.Connection | None:
        wrapper: Any = connections[self.alias]
        if wrapper.is_in_memory_db():
            name = str(wrapper.settings_dict["NAME"])
            if "mode=memory" not in name or "cache=shared" not in name:
                # Each connection has its own database: nothing to share.
                self._usable = False
                return None
        params = wrapper.get_connection_params()
        connection = sqlite3.connect(
            params["database"],
            uri=params.get("uri", False),
            timeout=params.get("timeout", 5),
            check_same_thread=False,
            isolation_level=None,
        )
        connection.execute("PRAGMA query_only = 1")
        self._last_change = None
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        path = connection.execute("PRAGMA database_list").fetchone()[2]
        self._map = None
        if str(mode).lower() == "wal" and path:
            # The read above opened the WAL index; this connection keeps it.
            try:
                with open(f"{path}-shm", "rb") as shm:
                    self._map = mmap.mmap(shm.fileno(), HEADER_BYTES, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                self._map = None  # no -shm file (exclusive locking mode): data_version
        self._connection = connection
        return connection

    def _read_changes(self, connection: sqlite3.Connection) -> None:
        """Drop what was written since the last change seen (everything, if
        that can no longer be told)."""
        last = self._last_change
        if last is None:
            # First look: memory holds nothing this log could vouch for.
            self._last_change = connection.execute(LAST_CHANGE_SQL).fetchone()[0]
            self._forget_all()
            return
        rows = connection.execute(CHANGES_SQL, (last,)).fetchall()
        if not rows:
            if last:
                self._forget_all()  # the log was emptied by hand
            self._last_change = 0
            return
        oldest, newest = rows[0][0], rows[-1][0]
        if newest < last or oldest > last + 1:
            self._forget_all()  # trimmed past what we saw, or started over
        else:
            by_store: dict[str, list[str]] = {}
            for change_id, store_hash, key_hash in rows:
                if change_id > last:
                    by_store.setdefault(store_hash, []).append(key_hash)
            for near in list(self._nears):
                for store_hash, key_hashes in by_store.items():
                    near.forget(store_hash, key_hashes)
        self._last_change = newest

    def _forget_all(self) -> None:
        for near in list(self._nears):
            near.forget_all()

    def close(self) -> None:
        with self._lock:
            if self._map is not None:
                self._map.close()
            if self._connection is not None:
                self._connection.close()
            self._map = self._connection = None
            self._seen = self._seen_first = self._data_version = None
