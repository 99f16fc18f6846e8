"""Per-vendor SQL: one dialect module a database vendor, one dialect an alias."""

from __future__ import annotations

from django.db import connections

from .base import Dialect
from .mysql import MySQLDialect
from .postgresql import PostgreSQLDialect
from .sqlite import SQLiteDialect

DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SQLiteDialect,
    "postgresql": PostgreSQLDialect,
    "mysql": MySQLDialect,
}

_by_alias: dict[tuple[str, str, str], Dialect] = {}


def dialect_for(alias: str, table: str) -> Dialect:
    """The dialect of a database alias, built on first use and kept."""
    connection = connections[alias]
    cache_key = (alias, connection.vendor, table)
    dialect = _by_alias.get(cache_key)
    if dialect is None:
        try:
            cls = DIALECTS[connection.vendor]
        except KeyError:
            raise NotImplementedError(
                f"keyval_backend does not support the {connection.vendor!r} database "
                f"of alias {alias!r}; supported: {', '.join(DIALECTS)}"
            ) from None
        dialect = _by_alias[cache_key] = cls(connection, table)
    return dialect


def built_dialect(alias: str, table: str) -> Dialect | None:
    """The dialect of ``alias`` if it has been built (no query, no connection)."""
    return _by_alias.get((alias, connections[alias].vendor, table))


__all__ = ["Dialect", "built_dialect", "dialect_for"]
