"""Native async drivers: the ``a*`` methods' statements without a thread hop.

One driver a vendor that has one (:mod:`.sqlite`, :mod:`.postgresql`), one
driver an alias. MariaDB and MySQL have none: their ``a*`` methods take
Django's thread, as :func:`driver` says by returning None. So does every call
that :func:`~.base.native_allowed` sends there.
"""

from __future__ import annotations

from typing import Any

from django.db import connections

from ..sql import Dialect
from .base import Driver, NativeTransactionError, native_allowed, retry_on_deadlock

_drivers: dict[tuple[str, str], Driver[Any] | None] = {}


def driver(dialect: Dialect) -> Driver[Any] | None:
    """The driver that runs this call's statements in the event loop, or
    None when the call takes Django's thread."""
    key = (dialect.alias, dialect.table)
    try:
        found = _drivers[key]
    except KeyError:
        found = _drivers[key] = _new_driver(dialect)
    if found is None or not native_allowed(dialect.alias):
        return None
    return found


def _new_driver(dialect: Dialect) -> Driver[Any] | None:
    if not dialect.has_native_steps():
        return None
    if dialect.vendor == "sqlite":
        wrapper: Any = connections[dialect.alias]
        if wrapper.is_in_memory_db():
            return None
        from .sqlite import SQLiteDriver

        return SQLiteDriver(dialect)
    if dialect.vendor == "postgresql":
        from django.db.backends.postgresql.psycopg_any import is_psycopg3

        if not is_psycopg3:
            return None
        try:
            from .postgresql import PostgreSQLDriver
        except ImportError:  # psycopg_pool is not installed
            return None
        return PostgreSQLDriver(dialect)
    return None


async def aclose(dialect: Dialect) -> None:
    """Close the resources of the driver of ``dialect`` in the running loop."""
    found = _drivers.get((dialect.alias, dialect.table))
    if found is not None:
        await found.aclose()


async def aclose_all() -> None:
    """Close every driver's resources in the running event loop."""
    for found in list(_drivers.values()):
        if found is not None:
            await found.aclose()


__all__ = [
    "Driver",
    "NativeTransactionError",
    "aclose",
    "aclose_all",
    "driver",
    "native_allowed",
    "retry_on_deadlock",
]
