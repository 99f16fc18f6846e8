"""SQLite: statements run inline in the event loop, and in a thread only
when the database is busy.

SQLite is a library: a statement on a connection of the loop's own takes
microseconds and needs no I/O the loop could wait for, so it runs inline,
with a busy timeout of zero. In WAL mode a read never waits for a writer; a
statement that finds the database locked (a write while another connection
writes, any statement outside WAL mode while a writer commits) fails at once
with SQLITE_BUSY instead of blocking the loop, and goes to a second
connection of the loop's, in a worker thread, with Django's busy timeout.

Writes run inline only where a commit does not wait for the disk: WAL with
``synchronous=NORMAL`` or ``OFF``. Elsewhere every commit is an fsync, and
every write goes to the thread. The inline connection never checkpoints the
WAL (an fsync of the database file); the thread's connection does, after
every ``CHECKPOINT_EVERY`` inline writes.

In-memory databases have no native path: another connection would see
another database.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from django.db import connections

from .base import Driver, LoopState, Result, translated

# Inline writes between two passive checkpoints run in the thread.
CHECKPOINT_EVERY = 1000
# Seconds of inline statements one turn of the event loop may run before the
# statement's task yields to the others (a task awaiting statement after
# statement would otherwise never let the loop run anything else).
TURN_BUDGET = 0.00025
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SQLiteState(LoopState):
    def __init__(self, inline: sqlite3.Connection, params: dict[str, Any], connect: Any) -> None:
        self.inline = inline
        self.cursor = inline.cursor()
        journal = inline.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = inline.execute("PRAGMA synchronous").fetchone()[0]
        self.inline_writes = journal.lower() == "wal" and int(synchronous) <= 1
        if self.inline_writes:
            inline.execute("PRAGMA wal_autocheckpoint = 0")
        self._params = params
        self._connect = connect
        self._worker: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self.writes = 0
        self.handed_off = 0  # statements that ran in the thread
        self._checkpoint: asyncio.Task[Any] | None = None
        self._loop = asyncio.get_running_loop()
        self._turn_started: float | None = None

    async def take_turn(self) -> None:
        """Before an inline statement: yield to the loop's other tasks if
        this turn of the loop has run inline statements for TURN_BUDGET."""
        now = time.perf_counter()
        if self._turn_started is not None:
            if now - self._turn_started <= TURN_BUDGET:
                return
            await asyncio.sleep(0)
            now = time.perf_counter()
        self._turn_started = now
        # Run at the loop's next turn: a new budget.
        self._loop.call_soon(self._new_turn)

    def _new_turn(self) -> None:
        self._turn_started = None

    async def in_thread(self, sql: str, params: Sequence[Any]) -> Result:
        """Run a statement on the thread's connection, waiting for the lock
        as long as Django's busy timeout allows."""
        return await self.in_thread_atomic([(sql, params)], atomic=False)

    async def in_thread_atomic(
        self, statements: Sequence[tuple[str, Sequence[Any]]], atomic: bool = True
    ) -> Result:
        """Run statements on the thread's connection, in one transaction
        (``BEGIN IMMEDIATE``: the write lock first) when ``atomic``."""
        self.handed_off += 1
        await self._lock.acquire()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self._run_worker, statements, atomic)
        # Released when the thread is done, not when the awaiting task is:
        # a cancelled caller must not let another statement onto the
        # connection while this one still runs.
        future.add_done_callback(lambda _: self._lock.release())
        return await asyncio.shield(future)

    def _run_worker(self, statements: Sequence[tuple[str, Sequence[Any]]], atomic: bool) -> Result:
        if self._worker is None:
            self._worker = self._connect(self._params)
        cursor = self._worker.cursor()
        try:
            if atomic:
                cursor.execute("BEGIN IMMEDIATE")
            try:
                result: Result = ([], -1)
                for sql, params in statements:
                    cursor.execute(sql, params)
                    result = cursor.fetchall(), cursor.rowcount
            except BaseException:
                if atomic:
                    self._worker.rollback()
                raise
            if atomic:
                cursor.execute("COMMIT")
            return result
        finally:
            cursor.close()

    def wrote(self) -> None:
        """Count an inline write; start a checkpoint in the thread when due."""
        self.writes += 1
        if self.writes >= CHECKPOINT_EVERY and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self.writes = 0
            self._checkpoint = asyncio.get_running_loop().create_task(self._checkpoint_in_thread())

    async def _checkpoint_in_thread(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # the next one will catch up
            await self.in_thread("PRAGMA wal_checkpoint(PASSIVE)", ())

    async def aclose(self) -> None:
        if self._checkpoint is not None and not self._checkpoint.done():
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        async with self._lock:
            if self._worker is not None:
                self._worker.close()
        self.cursor.close()
        self.inline.close()


class SQLiteDriver(Driver[SQLiteState]):
    vendor = "sqlite"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # %s -> ?, and whether the statement writes, once per text.
        self._texts: dict[str, tuple[str, bool]] = {}

    async def _open_state(self) -> SQLiteState:
        wrapper: Any = connections[self.alias]
        params = wrapper.get_connection_params()
        # Django's own set-up (pragmas, functions, init_command) without its
        # refusal to run in an event loop, which guards Django's connection.
        new_connection = type(wrapper).get_new_connection.__wrapped__

        def connect(conn_params: dict[str, Any]) -> sqlite3.Connection:
            connection: sqlite3.Connection = new_connection(wrapper, conn_params)
            connection.isolation_level = None  # autocommit, as Django's
            return connection

        return SQLiteState(connect({**params, "timeout": 0}), params, connect)

    async def run(self, sql: str, params: Sequence[Any]) -> Result:
        translated_sql, writes = self._texts.get(sql) or self._text(sql)
        state = await self._state()
        try:
            if writes and not state.inline_writes:
                return await state.in_thread(translated_sql, params)
            await state.take_turn()
            cursor = state.cursor
            try:
                cursor.execute(translated_sql, params)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in _BUSY:
                    raise
                # Nothing ran: a busy statement fails before it changes anything.
                return await state.in_thread(translated_sql, params)
            result = cursor.fetchall(), cursor.rowcount
            if writes:
                state.wrote()
            return result
        except sqlite3.Error as exc:
            error = translated(exc, sqlite3, self.alias)
            raise error from error.__cause__

    async def run_atomic(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> Result:
        """In the thread: a transaction may wait for the write lock."""
        state = await self._state()
        texts = [(self._text(sql)[0], params) for sql, params in statements]
        try:
            return await state.in_thread_atomic(texts)
        except sqlite3.Error as exc:
            error = translated(exc, sqlite3, self.alias)
            raise error from error.__cause__

    def _text(self, sql: str) -> tuple[str, bool]:
        """``sql`` with ``?`` placeholders, and whether it writes."""
        text = self._texts.get(sql)
        if text is None:
            text = self._texts[sql] = (
                sql.replace("%s", "?"),
                not sql.lstrip().upper().startswith("SELECT"),
            )
        return text
