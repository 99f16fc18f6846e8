"""PostgreSQL: one listening connection a process, in a thread of its own.

Migration 0004's statement triggers send ``NOTIFY keyval_backend_near`` with
the store and keys each statement wrote, in the writer's transaction: a
rolled-back write notifies nobody, a committed one reaches every listener
after its commit. The thread drops what it hears of.

Memory is trusted only while this thread knows it hears everything:

- It starts by keeping the sequence ``keyval_backend_near_until`` (the
  deadline until which the triggers send) an hour ahead, then waits until
  every transaction that may have checked that deadline before it was set has
  ended, and only then empties memory and trusts it.
- Every second it notifies itself on a channel of its own; a ping unheard for
  two seconds (a pooler in transaction mode, which does not deliver
  notifications, or a silent network) counts as a lost connection.
- On any error it distrusts and empties memory, and connects again after a
  back-off (at most 30 seconds), saying why in the ``keyval_backend`` log.

The connection is made from the ``DATABASES`` entry as Django makes its own
(``OPTIONS["NEAR_CACHE"]["LISTEN_DATABASE"]`` names another alias, for a
direct connection where requests go through a pooler).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any

from django.db import connections

from ..sql import near as sql

if TYPE_CHECKING:
    import psycopg

    from . import NearCache

logger = logging.getLogger("keyval_backend")
HEARTBEAT = 1.0
# A ping unheard for this long means notifications no longer arrive.
PING_TIMEOUT = 2.0
DEADLINE_AHEAD = 3600
EXTEND_BELOW = DEADLINE_AHEAD / 2
MAX_BACKOFF = 30.0
# How the listening connection shows in pg_stat_activity.
APPLICATION_NAME = "keyval_backend near cache"


class _Lost(Exception):
    """Notifications stopped arriving."""


class PostgreSQLListener:
    vendor = "postgresql"
    lease: float | None = None

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._nears: weakref.WeakSet[NearCache] = weakref.WeakSet()
        self._listening = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._ping_channel = f"{sql.CHANNEL}_ping_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        # For monitoring and tests: when it last started listening, and how
        # many times it had to connect again.
        self.connected_at: float | None = None
        self.reconnects = 0
        self.connection: psycopg.Connection[Any] | None = None

    def attach(self, near: NearCache) -> None:
        self._nears.add(near)

    def current(self) -> bool:
        if self._listening:
            return True
        if self._thread is None:
            self._start()
        return False

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"keyval-near-listener-{self.alias}", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """End the thread; memory is distrusted from now on."""
        self._stop.set()
        self._distrust()
        connection = self.connection
        if connection is not None:
            connection.pgconn.finish()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the thread --------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:
                self._distrust()
                if self._stop.is_set():
                    return
                logger.warning(
                    "Near cache of database %r: listening for writes failed (%s: %s); "
                    "its memory is emptied and not used until it listens again, "
                    "in %.1f s",
                    self.alias,
                    type(exc).__name__,
                    str(exc).strip() or "no message",
                    backoff,
                )
                self.reconnects += 1
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            else:
                backoff = 0.1

    def _listen(self) -> None:
        import psycopg

        wrapper: Any = connections[self.alias]
        params = wrapper.get_connection_params()
        params.pop("cursor_factory", None)
        params["autocommit"] = True
        params["application_name"] = APPLICATION_NAME
        with psycopg.connect(**params) as connection:
            self.connection = connection
            try:
                self._serve(connection)
            finally:
                self.connection = None
                self._distrust()

    def _serve(self, connection: psycopg.Connection[Any]) -> None:
        connection.execute(sql.LISTEN_SQL)
        connection.execute(f'LISTEN "{self._ping_channel}"')
        session = self._session(connection)
        if session[0] != connection.info.backend_pid:
            # The process id the server gave at connection start is not the
            # one serving this statement: a pooler (PgBouncer, pgcat,
            # Supavisor...) stands between, which makes up its own; a plain
            # TCP proxy passes the server's through.
            raise _Lost(
                "the connection goes through a connection pooler, which does not deliver "
                "notifications reliably: point OPTIONS['NEAR_CACHE']['LISTEN_DATABASE'] at "
                "an alias that connects to the server directly"
            )
        connection.execute(sql.EXTEND_SQL, (DEADLINE_AHEAD,))
        xmax = connection.execute(sql.XMAX_SQL).fetchone()[0]  # type: ignore[index]
        while connection.execute(sql.XMIN_SQL).fetchone()[0] < xmax:  # type: ignore[index]
            # Writers that may not have notified are still running: what they
            # write is not yet visible either, so waiting is enough.
            self._drain(connection, 0.01)
            if self._stop.is_set():
                return
        for near in list(self._nears):
            near.forget_all()
        self._listening = True
        self.connected_at = time.monotonic()
        ping = 0
        answered = 0
        sent_at = time.monotonic()
        while not self._stop.is_set():
            for notify in connection.notifies(timeout=HEARTBEAT):
                if notify.channel == self._ping_channel:
                    answered = max(answered, int(notify.payload))
                else:
                    self._heard(notify.payload)
            now = time.monotonic()
            if answered < ping and now - sent_at > PING_TIMEOUT:
                raise _Lost(
                    f"a heartbeat was not heard back within {PING_TIMEOUT:.0f} s (is the "
                    "connection through a pooler in transaction mode? Point "
                    "OPTIONS['NEAR_CACHE']['LISTEN_DATABASE'] at a direct connection)"
                )
            if self._session(connection) != session:
                raise _Lost(
                    "the connection's server session changed under it, as behind a pooler "
                    "in transaction mode, which does not deliver notifications: point "
                    "OPTIONS['NEAR_CACHE']['LISTEN_DATABASE'] at a direct connection"
                )
            if answered == ping:
                ping += 1
                sent_at = now
                connection.execute(sql.PING_SQL, (self._ping_channel, str(ping)))
                left = connection.execute(sql.DEADLINE_SQL).fetchone()[0]  # type: ignore[index]
                if left < EXTEND_BELOW:
                    connection.execute(sql.EXTEND_SQL, (DEADLINE_AHEAD,))

    def _session(self, connection: psycopg.Connection[Any]) -> tuple[Any, ...]:
        """The server process this connection talks to, and whether it still
        listens: a pooler hands out another, or one whose LISTEN is gone."""
        row = connection.execute(sql.SESSION_SQL, (self._ping_channel,)).fetchone()
        assert row is not None
        return tuple(row)

    def _drain(self, connection: psycopg.Connection[Any], timeout: float) -> None:
        for notify in connection.notifies(timeout=timeout):
            if notify.channel != self._ping_channel:
                self._heard(notify.payload)

    def _heard(self, payload: str) -> None:
        """Drop what a notification names: ``*`` (everything), a store, or a
        store and its keys."""
        nears = list(self._nears)
        if payload == "*":
            for near in nears:
                near.forget_all()
            return
        store_hash, _, keys = payload.partition(" ")
        for near in nears:
            if keys:
                near.forget(store_hash, keys.split(","))
            else:
                near.forget_store(store_hash)

    def _distrust(self) -> None:
        self._listening = False
        for near in list(self._nears):
            near.forget_all()
