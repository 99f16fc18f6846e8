"""PostgreSQL: psycopg 3's async connections, a small pool per event loop.

The connections are made from the alias's ``DATABASES`` entry as Django makes
its own (``get_connection_params``: host, port, user, password, ``OPTIONS``
including ``prepare_threshold`` and ``assume_role``, Django's adapters), in
autocommit mode. Parameters are bound on the server, as the lean cursor binds
them whatever ``server_side_binding`` says (see :mod:`keyval_backend.db`).

The pool holds at most ``OPTIONS["pool"]["max_size"]`` connections (Django's
own pool option; 10 without it) and has no task of its own: a call that finds
no idle connection opens one itself, or waits for one. That is why it is not
``psycopg_pool.AsyncConnectionPool``: its maintenance workers replace a
broken connection in the background, and a worker busy connecting when
``asyncio.run`` ends swallows the loop's cancellation, so the run never
returns (measured with psycopg_pool 3.3: a task cancelled mid-statement, then
the end of the loop). A connection handed back in any state but idle (a
task cancelled mid-statement, a failed connection) is closed, never reused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import connections
from psycopg import sql as psycopg_sql
from psycopg.pq import ExecStatus, TransactionStatus

from .base import Driver, LoopState, Result, translated

DEFAULT_MAX_SIZE = 10


class Pool(LoopState):
    """At most ``max_size`` connections of one event loop."""

    def __init__(self, params: dict[str, Any], role: str | None, max_size: int) -> None:
        self._params = params
        self._role = role
        self.max_size = max_size
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(max_size)
        self.size = 0  # connections open, idle or in use
        self.most = 0  # the most that were ever open at once
        self.closed = False

    async def acquire(self) -> psycopg.AsyncConnection[Any]:
        await self._slots.acquire()
        try:
            if self._idle:
                return self._idle.pop()
            connection = await psycopg.AsyncConnection.connect(**self._params)
            self.size += 1
            self.most = max(self.most, self.size)
            if self._role:
                await connection.execute(
                    psycopg_sql.SQL("SET ROLE {}").format(psycopg_sql.Identifier(self._role))
                )
            return connection
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if (
            not self.closed
            and not connection.closed
            and connection.pgconn.transaction_status == TransactionStatus.IDLE
        ):
            self._idle.append(connection)
        else:
            self._discard(connection)
        self._slots.release()

    def _discard(self, connection: psycopg.AsyncConnection[Any]) -> None:
        # Closed at once, without waiting for the server (it may be running a
        # statement whose task was cancelled).
        connection.pgconn.finish()
        self.size -= 1

    async def aclose(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)


class PostgreSQLDriver(Driver[Pool]):
    vendor = "postgresql"

    async def _open_state(self) -> Pool:
        wrapper: Any = connections[self.alias]
        options = wrapper.settings_dict["OPTIONS"]
        params = wrapper.get_connection_params()
        # Django's sync cursor classes; every async cursor binds on the server.
        params.pop("cursor_factory", None)
        params["autocommit"] = True
        pool_options = options.get("pool")
        max_size = DEFAULT_MAX_SIZE
        if isinstance(pool_options, dict):
            max_size = int(pool_options.get("max_size") or pool_options.get("min_size") or max_size)
        return Pool(params, options.get("assume_role"), max_size)

    async def run(self, sql: str, params: Sequence[Any]) -> Result:
        pool = self._states.get(asyncio.get_running_loop()) or await self._state()
        try:
            connection = await pool.acquire()
            try:
                return await _execute(connection, sql, params)
            finally:
                pool.release(connection)
        except psycopg.Error as exc:
            error = translated(exc, psycopg, self.alias)
            raise error from error.__cause__

    async def run_atomic(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> Result:
        pool = self._states.get(asyncio.get_running_loop()) or await self._state()
        try:
            connection = await pool.acquire()
            try:
                result: Result = ([], -1)
                async with connection.transaction():
                    for sql, params in statements:
                        result = await _execute(connection, sql, params)
                return result
            finally:
                pool.release(connection)
        except psycopg.Error as exc:
            error = translated(exc, psycopg, self.alias)
            raise error from error.__cause__

    def pool(self) -> Pool | None:
        """This loop's pool, if it has one."""
        return self._states.get(asyncio.get_running_loop())


async def _execute(
    connection: psycopg.AsyncConnection[Any], sql: str, params: Sequence[Any]
) -> Result:
    cursor = connection.cursor()
    await cursor.execute(sql, params)
    result = cursor.pgresult
    rows = (
        await cursor.fetchall()
        if result is not None and result.status == ExecStatus.TUPLES_OK
        else []
    )
    return rows, cursor.rowcount
