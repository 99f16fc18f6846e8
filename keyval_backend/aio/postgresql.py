"""PostgreSQL: psycopg 3's async connections, one pool per event loop.

The connections are made from the alias's ``DATABASES`` entry as Django makes
its own (``get_connection_params``: host, port, user, password, ``OPTIONS``
including ``prepare_threshold``, ``assume_role``, and Django's adapters), in
autocommit mode. Parameters are bound on the server, as the lean cursor binds
them whatever ``server_side_binding`` says (see :mod:`keyval_backend.db`).

The pool is ``psycopg_pool.AsyncConnectionPool``, sized by
``OPTIONS["pool"]`` when that is a dict (Django's own pool options:
``min_size``, ``max_size``, ``timeout``, ``max_idle``, ``max_lifetime``),
else ``min_size=1, max_size=10``. A task cancelled mid-statement hands its
connection back in a state the pool recognises (an active query, a broken
transaction): the pool rolls it back or replaces it, so no later task meets it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import connections
from psycopg import sql as psycopg_sql
from psycopg.pq import ExecStatus
from psycopg_pool import AsyncConnectionPool

from .base import Driver, LoopState, Result, translated

DEFAULT_POOL = {"min_size": 1, "max_size": 10}
_POOL_OPTIONS = ("min_size", "max_size", "timeout", "max_idle", "max_lifetime", "max_waiting")


class PostgreSQLState(LoopState):
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def aclose(self) -> None:
        await self.pool.close()


class PostgreSQLDriver(Driver[PostgreSQLState]):
    vendor = "postgresql"

    async def _open_state(self) -> PostgreSQLState:
        wrapper: Any = connections[self.alias]
        settings_options = wrapper.settings_dict["OPTIONS"]
        params = wrapper.get_connection_params()
        # Django's sync cursor classes; every async cursor binds on the server.
        params.pop("cursor_factory", None)
        params["autocommit"] = True
        role = settings_options.get("assume_role")
        pool_options = settings_options.get("pool")
        sizes = (
            {name: pool_options[name] for name in _POOL_OPTIONS if name in pool_options}
            if isinstance(pool_options, dict)
            else {}
        )

        async def configure(connection: psycopg.AsyncConnection[Any]) -> None:
            if role:
                await connection.execute(
                    psycopg_sql.SQL("SET ROLE {}").format(psycopg_sql.Identifier(role))
                )

        pool: AsyncConnectionPool = AsyncConnectionPool(
            kwargs=params,
            open=False,
            configure=configure if role else None,
            name=f"keyval_backend:{self.alias}",
            **{**DEFAULT_POOL, **sizes},
        )
        await pool.open()
        return PostgreSQLState(pool)

    async def run(self, sql: str, params: Sequence[Any]) -> Result:
        state = self._states.get(asyncio.get_running_loop()) or await self._state()
        try:
            async with state.pool.connection() as connection:
                cursor = connection.cursor()
                await cursor.execute(sql, params)
                result = cursor.pgresult
                rows = (
                    await cursor.fetchall()
                    if result is not None and result.status == ExecStatus.TUPLES_OK
                    else []
                )
                return rows, cursor.rowcount
        except psycopg.Error as exc:
            raise translated(exc, psycopg) from exc

    def pool(self) -> AsyncConnectionPool | None:
        """This loop's pool, if it has one (for tests and benchmarks)."""
        state = self._states.get(asyncio.get_running_loop())
        return None if state is None else state.pool
