"""PostgreSQL: psycopg 3's async connections in pipeline mode, a small pool
per event loop.

The connections are made from the alias's ``DATABASES`` entry as Django makes
its own (``get_connection_params``: host, port, user, password, ``OPTIONS``
including ``assume_role``, Django's adapters), in autocommit mode.

Each connection is in libpq's pipeline mode, and the loop reads its socket
whenever it is readable (one reader for the connection's life): statements go
out back to back and their answers come back in order, each to its sender.
Every statement has a sync point of its own, so it runs and commits alone and
its error is its own. Statements are sent as psycopg's server-binding cursor
sends them (the extended protocol, parameters dumped and rows loaded by the
connection's adapters), unnamed, or prepared by name once a text has run
``OPTIONS["prepare_threshold"]`` times on a connection (Django's default:
never, for poolers in transaction mode).

- A read goes to the connection with the fewest statements in flight, or to a
  new one while the pool has room: 1,000 concurrent ``aget`` share the pool's
  connections instead of queueing for them one statement at a time.
- A write, and a transaction, takes a connection to itself: a write may wait
  for a row lock, and nothing should queue behind it. When every connection
  is taken, it claims the least busy one; reads stop going there, and the
  write runs once the reads in flight on it are answered.
- A cancelled read's answer is dropped when it arrives, and its connection
  keeps serving. A connection whose own statement was cancelled (a write, a
  transaction) is closed at once, without waiting for the server, as is one
  that broke; the statements in flight on it fail with Django's
  ``OperationalError``.

The pool holds at most ``OPTIONS["pool"]["max_size"]`` connections (Django's
own pool option; 10 without it) and has no task of its own: a call that finds
no connection opens one itself, or waits for one. That is why it is not
``psycopg_pool.AsyncConnectionPool``: its maintenance workers replace a broken
connection in the background, and a worker busy connecting when
``asyncio.run`` ends swallows the loop's cancellation, so the run never
returns (measured with psycopg_pool 3.3: a task cancelled mid-statement, then
the end of the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import psycopg
from django.db import connections
from psycopg import errors as psycopg_errors
from psycopg import sql as psycopg_sql
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ConnStatus, DiagnosticField, ExecStatus, TransactionStatus
from psycopg.pq.abc import PGresult

from .base import Driver, LoopState, Result, translated

DEFAULT_MAX_SIZE = 10

_SYNC = ExecStatus.PIPELINE_SYNC
_FATAL = ExecStatus.FATAL_ERROR
_TUPLES = ExecStatus.TUPLES_OK
# A prepared statement's key: its text and its parameters' types.
_Key = tuple[str, tuple[int, ...]]
_NAMES = itertools.count()
_NO_STATEMENT = b"26000"  # invalid_sql_statement_name: no such prepared statement


class _Prepare:
    """In Connection.in_flight: a PREPARE sent ahead of its statement."""

    __slots__ = ("key",)

    def __init__(self, key: _Key) -> None:
        self.key = key


class Connection:
    """One server connection in pipeline mode, read by the loop."""

    __slots__ = (
        "_answered",
        "_connection",
        "_encoding",
        "_fd",
        "_loop",
        "_names",
        "_outcome",
        "_pool",
        "_sync_due",
        "_threshold",
        "_tx",
        "_uses",
        "_writing",
        "claims",
        "closed",
        "exclusive",
        "in_flight",
        "pgconn",
    )

    def __init__(
        self, pool: Pool, connection: psycopg.AsyncConnection[Any], threshold: int | None
    ) -> None:
        self._pool = pool
        self._connection = connection  # its adapters dump and load
        self.pgconn = connection.pgconn
        self._encoding = connection.info.encoding
        self._tx = Transformer(connection)
        self._threshold = threshold
        self._uses: dict[_Key, int] = {}
        self._names: dict[_Key, bytes] = {}
        # What was sent and is not answered yet, in order: each statement's
        # future (after a _Prepare if it is prepared on the way), and the sync
        # points (None) that end each group of them.
        self.in_flight: deque[Any] = deque()
        self._outcome: PGresult | None = None  # in_flight[0]'s answer so far
        # Answers of the current group, handed out at its sync point (when
        # the server has committed them).
        self._answered: list[tuple[asyncio.Future[PGresult], PGresult]] = []
        self._sync_due = False
        self.exclusive = False
        # Writes waiting to have this connection to themselves, in turn.
        self.claims: deque[asyncio.Future[Connection | None]] = deque()
        self.closed = False
        self._writing = False
        self._loop = asyncio.get_running_loop()
        self._fd = self.pgconn.socket
        self.pgconn.nonblocking = 1
        self.pgconn.enter_pipeline_mode()
        self._loop.add_reader(self._fd, self._readable)

    async def read(self, sql: str, params: Sequence[Any]) -> tuple[PGresult, _Key | None]:
        """A read, in one group with the other reads sent to this connection
        in the same turn of the loop: one sync point, one flush, for them
        all. Its answer, and the key for :meth:`rows`."""
        future, key = self.send(sql, params)
        if not self._sync_due:
            self._sync_due = True
            self._loop.call_soon(self.sync)
        return await future, key

    def send(self, sql: str, params: Sequence[Any]) -> tuple[asyncio.Future[PGresult], _Key | None]:
        """Send one statement: the future of its answer, and the key it was
        prepared under (for :meth:`rows`). It goes out at the next
        :meth:`sync`."""
        tx, pgconn = self._tx, self.pgconn
        if params:
            values: Sequence[Any] | None = tx.dump_sequence(params, _auto(len(params)))
            types, formats = tx.types, tx.formats
        else:
            values = types = formats = None
        try:
            key, name = self._prepared(sql, types or ())
            if name is None:
                pgconn.send_query_params(
                    _query(sql), values, param_types=types, param_formats=formats
                )
            else:
                pgconn.send_query_prepared(name, values, param_formats=formats)
        except psycopg.Error as exc:
            self._break(exc)
            raise
        future: asyncio.Future[PGresult] = self._loop.create_future()
        self.in_flight.append(future)
        return future, key

    def sync(self) -> None:
        """End the group of statements sent since the last sync point, and
        send it."""
        self._sync_due = False
        if self.closed or not self.in_flight or self.in_flight[-1] is None:
            return
        try:
            self.pgconn.pipeline_sync()  # flushes what it can
            self.in_flight.append(None)
            if not self._writing and self.pgconn.flush():
                # The rest goes when the socket can take it.
                self._writing = True
                self._loop.add_writer(self._fd, self._writable)
        except psycopg.Error as exc:
            self._break(exc)

    def _prepared(self, sql: str, types: tuple[int, ...]) -> tuple[_Key | None, bytes | None]:
        """The name to send ``sql`` by, preparing it now if it has run
        ``prepare_threshold`` times (psycopg's rule); (None, None) to send
        it unnamed."""
        if self._threshold is None:
            return None, None
        key = (sql, types)
        name = self._names.get(key)
        if name is None:
            uses = self._uses.get(key, 0)
            if uses < self._threshold:
                self._uses[key] = uses + 1
                return None, None
            name = self._names[key] = f"_keyval_{next(_NAMES)}".encode()
            self.pgconn.send_prepare(name, _query(sql), param_types=types)
            self.in_flight.append(_Prepare(key))
        return key, name

    def rows(self, answer: PGresult, key: _Key | None) -> Result:
        """An answer's rows and row count, or its error raised."""
        status = answer.status
        if status != _TUPLES and status != ExecStatus.COMMAND_OK:
            if key is not None and answer.error_field(DiagnosticField.SQLSTATE) == _NO_STATEMENT:
                # The server no longer has it (a pooler's DISCARD): prepare
                # it anew. After any other error it is still there.
                self._names.pop(key, None)
                self._uses.pop(key, None)
            if status == _FATAL:
                raise psycopg_errors.error_from_result(answer, encoding=self._encoding)
            raise psycopg.OperationalError(
                f"unexpected answer from the server: {ExecStatus(status).name}"
            )
        rows: list[Any] = []
        if status == _TUPLES:
            self._tx.set_pgresult(answer)
            rows = self._tx.load_rows(0, answer.ntuples, tuple)
        count = answer.command_tuples
        return rows, -1 if count is None else count

    def _readable(self) -> None:
        pgconn = self.pgconn
        try:
            pgconn.consume_input()
            nulls = 0
            while self.in_flight and not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:  # the end of one statement's results
                    if self._outcome is None:
                        # Only ever once in a row (libpq's end of a group);
                        # again would mean libpq has nothing we wait for.
                        if nulls:
                            raise psycopg.InterfaceError("lost track of the server's answers")
                        nulls += 1
                        continue
                    nulls = 0
                    head = self.in_flight.popleft()
                    if isinstance(head, _Prepare):
                        if self._outcome.status != ExecStatus.COMMAND_OK:
                            # Not prepared (failed, or skipped in an aborted
                            # group): the next use prepares it anew.
                            self._names.pop(head.key, None)
                            self._uses.pop(head.key, None)
                        # A failed PREPARE is the answer of its statement.
                        if self._outcome.status != _FATAL:
                            self._outcome = None
                        continue
                    if head is None:
                        raise psycopg.InterfaceError("a sync point came before its answer")
                    self._answered.append((head, self._outcome))
                    self._outcome = None
                elif result.status == _SYNC:
                    nulls = 0
                    self.in_flight.popleft()
                    answered, self._answered = self._answered, []
                    for future, outcome in answered:
                        if not future.done():  # not cancelled
                            future.set_result(outcome)
                    if not self.in_flight:
                        self._pool.settled(self)
                else:
                    nulls = 0
                    if self._outcome is None or self._outcome.status != _FATAL:
                        self._outcome = result  # the first error, else the last result
            if pgconn.status == ConnStatus.BAD:
                raise psycopg.OperationalError("the connection to the server was lost")
        except psycopg.Error as exc:
            self._break(exc)
        except Exception as exc:  # a bug here must fail the waiting calls, not hang them
            self._break(psycopg.InterfaceError(f"reading the server's answers failed: {exc!r}"))

    def _writable(self) -> None:
        try:
            if not self.pgconn.flush():
                self._writing = False
                self._loop.remove_writer(self._fd)
        except psycopg.Error as exc:
            self._break(exc)

    def _break(self, exc: BaseException) -> None:
        self._fail(exc)
        self._pool.discard(self)

    def _fail(self, exc: BaseException) -> None:
        failed, self.in_flight = self.in_flight, deque()
        answered, self._answered = self._answered, []
        for future in [*(future for future, _ in answered), *failed]:
            if isinstance(future, asyncio.Future) and not future.done():
                future.set_exception(exc)

    def idle(self) -> bool:
        """True when nothing is in flight, outside any transaction."""
        return (
            not self.closed
            and not self.in_flight
            and self.pgconn.transaction_status == TransactionStatus.IDLE
        )

    def close(self) -> None:
        """Closed at once for the loop, without waiting for the server. If it
        may still be running a statement (whose task was cancelled), a thread
        asks the server to cancel it and then closes the socket: a closed
        socket alone leaves the backend running the statement to its end,
        holding its locks (and committing a write the caller gave up on,
        which the cancel usually stops), and PgBouncer forwards a cancel
        request only while its client is connected."""
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
        cancel = None
        if self.in_flight or self.pgconn.transaction_status == TransactionStatus.ACTIVE:
            with contextlib.suppress(psycopg.Error):
                cancel = self.pgconn.get_cancel()
        self._fail(psycopg.OperationalError("the connection was closed"))
        if cancel is None:
            self.pgconn.finish()
        else:
            threading.Thread(target=_cancel, args=(cancel, self.pgconn), daemon=True).start()


class Pool(LoopState):
    """At most ``max_size`` connections of one event loop."""

    def __init__(
        self,
        params: dict[str, Any],
        role: str | None,
        max_size: int,
        prepare_threshold: int | None,
    ) -> None:
        self._params = params
        self._role = role
        self.max_size = max_size
        self._threshold = prepare_threshold
        self.connections: list[Connection] = []
        self.size = 0  # connections open or opening
        self.most = 0  # the most that were ever open at once
        self.closed = False
        # Calls waiting for a connection to open or to be free.
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def read(self, sql: str, params: Sequence[Any]) -> Result:
        """A statement that never waits for a lock, on a shared connection."""
        while True:
            connection = self._shared()
            while connection is None:
                if self.size < self.max_size:
                    connection = await self._open(exclusive=False)
                else:
                    await self._wait()
                    connection = self._shared()
            answer, key = await connection.read(sql, params)
            # Aborted: another read of its group failed (the server skips
            # the rest of a group after an error). It goes again.
            if answer.status != ExecStatus.PIPELINE_ABORTED:
                return connection.rows(answer, key)

    async def run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> Result:
        """Statements on a connection of their own, in one transaction when
        there are several; the last one's rows and row count."""
        connection = await self._exclusive()
        try:
            if len(statements) > 1:
                statements = [("BEGIN", ()), *statements, ("COMMIT", ())]
            sent = []
            for sql, params in statements:
                sent.append(connection.send(sql, params))
                connection.sync()
            answers = [await future for future, _ in sent]
        except BaseException:
            # Cancelled mid-statement, or the connection broke.
            self.discard(connection)
            raise
        self.release(connection)
        # The first error is the one to raise: after it the transaction was
        # aborted, and its COMMIT rolled it back.
        results = [
            connection.rows(answer, key) for answer, (_, key) in zip(answers, sent, strict=True)
        ]
        return results[0] if len(results) == 1 else results[-2]

    def _shared(self) -> Connection | None:
        """The connection a read goes to, or None: open one (while the pool
        has room and every connection is busy) or wait."""
        best = None
        for connection in self.connections:
            if not connection.exclusive and not connection.claims:
                if not connection.in_flight:
                    return connection
                if best is None or len(connection.in_flight) < len(best.in_flight):
                    best = connection
        return None if self.size < self.max_size else best

    async def _exclusive(self) -> Connection:
        while True:
            for connection in self.connections:
                if not connection.exclusive and not connection.claims and connection.idle():
                    connection.exclusive = True
                    return connection
            if self.size < self.max_size:
                return await self._open(exclusive=True)
            if not self.connections:  # all still opening
                await self._wait()
                continue
            target = min(
                self.connections,
                # Not behind a write (it may wait for a lock), then the
                # fewest writes waiting, then the fewest reads in flight.
                key=lambda c: (c.exclusive, len(c.claims), len(c.in_flight)),
            )
            claim: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
            target.claims.append(claim)
            try:
                granted = await claim
            except BaseException:
                if claim in target.claims:
                    target.claims.remove(claim)
                elif claim.done() and not claim.cancelled() and claim.result() is target:
                    self.release(target)  # granted as the task was cancelled
                raise
            if granted is not None and not granted.closed:
                return granted
            # The connection went away; look again.

    def settled(self, connection: Connection) -> None:
        """Called when ``connection`` has nothing left in flight."""
        if not connection.exclusive:
            self._hand_on(connection)

    def release(self, connection: Connection) -> None:
        """The end of a connection's exclusive use."""
        connection.exclusive = False
        if self.closed or not connection.idle():
            self.discard(connection)
        else:
            self._hand_on(connection)

    def _hand_on(self, connection: Connection) -> None:
        """To the next write that claimed it, else back to the reads."""
        while connection.claims:
            claim = connection.claims.popleft()
            if not claim.done():
                connection.exclusive = True
                claim.set_result(connection)
                return
        self._wake()

    def discard(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
            self.size -= 1
        connection.close()
        claims, connection.claims = connection.claims, deque()
        for claim in claims:
            if not claim.done():
                claim.set_result(None)
        self._wake()

    async def _open(self, exclusive: bool) -> Connection:
        if self.closed:
            raise psycopg.OperationalError("the event loop's connection pool is closed")
        self.size += 1
        self.most = max(self.most, self.size)
        raw = None
        try:
            raw = await psycopg.AsyncConnection.connect(**self._params)
            if self._role:
                await raw.execute(
                    psycopg_sql.SQL("SET ROLE {}").format(psycopg_sql.Identifier(self._role))
                )
            if self.closed:
                raise psycopg.OperationalError("the event loop's connection pool is closed")
            connection = Connection(self, raw, self._threshold)
        except BaseException:
            self.size -= 1
            if raw is not None:
                raw.pgconn.finish()
            self._wake()
            raise
        connection.exclusive = exclusive
        self.connections.append(connection)
        self._wake()
        return connection

    async def _wait(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        finally:
            if not waiter.done():
                self._waiting.remove(waiter)

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, deque()
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(None)

    async def aclose(self) -> None:
        self.closed = True
        for connection in list(self.connections):
            self.discard(connection)


class PostgreSQLDriver(Driver[Pool]):
    vendor = "postgresql"

    async def _open_state(self) -> Pool:
        wrapper: Any = connections[self.alias]
        options = wrapper.settings_dict["OPTIONS"]
        params = wrapper.get_connection_params()
        # Django's sync cursor classes; statements are sent as above.
        params.pop("cursor_factory", None)
        params["autocommit"] = True
        threshold = params.pop("prepare_threshold", None)
        pool_options = options.get("pool")
        max_size = DEFAULT_MAX_SIZE
        if isinstance(pool_options, dict):
            max_size = int(pool_options.get("max_size") or pool_options.get("min_size") or max_size)
        return Pool(params, options.get("assume_role"), max_size, threshold)

    async def run(self, sql: str, params: Sequence[Any]) -> Result:
        return await self._call(False, [(sql, params)])

    async def read(self, sql: str, params: Sequence[Any]) -> Result:
        return await self._call(True, [(sql, params)])

    async def run_atomic(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> Result:
        return await self._call(False, statements)

    async def _call(self, read: bool, statements: Sequence[tuple[str, Sequence[Any]]]) -> Result:
        pool = self._states.get(asyncio.get_running_loop()) or await self._state()
        try:
            if read:
                return await pool.read(*statements[0])
            return await pool.run(statements)
        except psycopg.Error as exc:
            error = translated(exc, psycopg, self.alias)
            raise error from error.__cause__

    def pool(self) -> Pool | None:
        """This loop's pool, if it has one."""
        return self._states.get(asyncio.get_running_loop())


def _cancel(cancel: Any, pgconn: Any) -> None:
    """Send a cancel request (a connection of its own to the server), then
    close the connection whose statement it cancels (no longer the loop's)."""
    try:
        with contextlib.suppress(psycopg.Error):
            cancel.cancel()
    finally:
        pgconn.finish()


@lru_cache(maxsize=1024)
def _query(sql: str) -> bytes:
    """Django's ``%s`` placeholders as PostgreSQL's ``$1, $2, ...`` (``%%``
    is a literal ``%``)."""
    parts = sql.split("%%")
    number = 0
    converted = []
    for part in parts:
        pieces = part.split("%s")
        text = pieces[0]
        for piece in pieces[1:]:
            number += 1
            text += f"${number}{piece}"
        converted.append(text)
    return "%".join(converted).encode()


@lru_cache(maxsize=64)
def _auto(count: int) -> list[PyFormat]:
    return [PyFormat.AUTO] * count
