"""SQLite: the shared ``ON CONFLICT ... RETURNING`` statements as they are.

RETURNING needs SQLite 3.35 (2021); the ``keyval.E004`` check says so when the
library is older. Every statement is a single write in autocommit mode, so a
writer never holds a read snapshot that a concurrent commit could invalidate
("database is locked" regardless of the busy timeout).
"""

from __future__ import annotations

import sqlite3

from django.db.backends.base.base import BaseDatabaseWrapper

from .base import Dialect

MIN_VERSION = (3, 35, 0)


class SQLiteDialect(Dialect):
    def __init__(self, connection: BaseDatabaseWrapper, table: str) -> None:
        super().__init__(connection, table)
        # Django 5.2 assumes the pre-3.32 limit of 999 variables; the library
        # says what it really allows (32766 by default), so batches of 100
        # rows stay one statement.
        connection.ensure_connection()
        self.max_params = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
