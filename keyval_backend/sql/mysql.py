"""MariaDB and MySQL: ``ON DUPLICATE KEY UPDATE`` and ``LAST_INSERT_ID(expr)``.

Neither has ``INSERT ... ON CONFLICT ... RETURNING``, and Django connects with
``CLIENT_FOUND_ROWS``, so an upsert's row count cannot tell "new" from
"overwritten with the same value". Each statement therefore passes its answer
back through ``LAST_INSERT_ID(expr)``, which the server returns with the OK
packet (``cursor.lastrowid``): still one statement, still atomic.

``ON DUPLICATE KEY UPDATE`` assignments run left to right and later ones see
earlier results, so the ones that test the old ``expires`` come first.
MariaDB has ``DELETE ... RETURNING``; MySQL pops in a short locking transaction
(two statements).
"""

from __future__ import annotations

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ..codec import INT_FORMAT
from ..db import Cursor
from .base import _KINDS, Dialect, Popped, Row, incr_bounds
from .structures import structure_sql

# Added to LAST_INSERT_ID by an upsert that replaced a structure.
RETYPED = 2**62


def _signed(value: int) -> int:
    """LAST_INSERT_ID is unsigned 64-bit: read it back as two's complement."""
    return value - 2**64 if value >= 2**63 else value


class MySQLDialect(Dialect):
    # mysqlclient writes every parameter into the statement's text on the
    # client. A batch of 1,000 rows makes a text of several hundred KB, above
    # glibc's threshold for handing large blocks back to the system (128 KB,
    # raised after the first is freed), so each batch left holes in the heap:
    # a 1,000,000-entry load peaked 20 MB higher than a 100,000-entry one.
    # Under 100 KB a batch is still hundreds of small rows, and a big value
    # stays far from max_allowed_packet.
    max_batch_bytes = 96 * 1024

    def __init__(self, connection: BaseDatabaseWrapper, table: str) -> None:
        self.has_delete_returning = bool(getattr(connection, "mysql_is_mariadb", False))
        super().__init__(connection, table)

    def key_head(self) -> str | None:
        # The index holds a prefix of the key column itself, which range
        # conditions on the key use directly.
        return None

    def upsert_clause(self) -> str:
        c = self.c
        expired = f"{c['expires']} <= VALUES({c['updated']})"
        writes = f"IF({expired}, 1, {c['writes']} + 1)"
        # LAST_INSERT_ID also says whether the row held a hash, set or sorted
        # set (RETYPED is added), whose members must then go: MariaDB cannot
        # have the trigger that does it on the other databases, since any
        # trigger on the table stops UPDATE reporting LAST_INSERT_ID.
        return (
            " ON DUPLICATE KEY UPDATE "
            f"{c['writes']} = {writes} + 0 * LAST_INSERT_ID("
            f"{writes} + IF({c['format']} IN {_KINDS}, {RETYPED}, 0)), "
            f"{c['created']} = IF({expired}, VALUES({c['created']}), {c['created']}), "
            f"{c['format']} = VALUES({c['format']}), {c['value']} = VALUES({c['value']}), "
            f"{c['number']} = VALUES({c['number']}), {c['updated']} = VALUES({c['updated']}), "
            f"{c['expires']} = VALUES({c['expires']})"
        )

    def add_clause(self) -> str:
        c = self.c
        expired = f"{c['expires']} <= VALUES({c['updated']})"
        # A live row is left as it is and LAST_INSERT_ID(0) reports the loss.
        return (
            " ON DUPLICATE KEY UPDATE "
            f"{c['writes']} = IF({expired}, 1, {c['writes']} + LAST_INSERT_ID(0)), "
            + ", ".join(
                f"{c[name]} = IF({expired}, VALUES({c[name]}), {c[name]})"
                for name in ("format", "value", "number", "created", "updated", "expires")
            )
        )

    def set_many_clause(self) -> str:
        return self.upsert_clause()

    def ignore_duplicate_clause(self) -> str:
        c = self.c
        return f" ON DUPLICATE KEY UPDATE {c['id']} = {c['id']}"

    def incr_statement(self) -> str:
        c = self.c
        # The writes assignment sees the new number; ``| 0`` makes it unsigned
        # so that LAST_INSERT_ID accepts negative values.
        return (
            f"UPDATE {self.table} SET {c['number']} = {c['number']} + %s, {c['updated']} = %s, "
            f"{c['writes']} = {c['writes']} + 1 + 0 * LAST_INSERT_ID({c['number']} | 0) "
            f"WHERE {self.where_key_live} AND {c['format']} = '{INT_FORMAT}' "
            f"AND {c['number']} BETWEEN %s AND %s"
        )

    def incr_or_create_statement(self) -> str | None:
        # ON DUPLICATE KEY UPDATE has no WHERE to refuse a non-integer: the
        # backend adds or increments in two atomic steps instead.
        return None

    def purge_statement(self) -> str:
        c = self.c
        return f"DELETE FROM {self.table} WHERE {c['expires']} <= %s LIMIT %s"

    def purge_params(self, now: float, limit: int) -> tuple[float | int, ...]:
        return (now, limit)

    def cull_statement(self) -> str:
        c = self.c
        return (
            f"DELETE FROM {self.table} WHERE {c['store_hash']} = %s "
            f"ORDER BY {c['updated']}, {c['id']} LIMIT %s"
        )

    def upsert(self, cursor: Cursor, row: Row) -> bool:
        # 1 row affected: inserted. 2: updated, and LAST_INSERT_ID holds the
        # new ``writes``, which is 1 when the row it replaced had expired.
        cursor.execute(self.upsert_sql, row)
        if cursor.rowcount == 1:
            return True
        writes = int(cursor.lastrowid)
        if writes >= RETYPED:
            cursor.execute(structure_sql(self).drop_members_sql, (row[2], row[3]))
            writes -= RETYPED
        return writes == 1

    def add(self, cursor: Cursor, row: Row) -> bool:
        # Inserted: 1 row and the new id; expired row replaced: 2 rows; a live
        # row kept: 1 row (CLIENT_FOUND_ROWS) and LAST_INSERT_ID(0).
        cursor.execute(self.add_sql, row)
        return cursor.rowcount == 2 or (cursor.rowcount == 1 and cursor.lastrowid != 0)

    def incr(
        self, cursor: Cursor, store_hash: str, key_hash: str, delta: int, now: float
    ) -> int | None:
        low, high = incr_bounds(delta)
        cursor.execute(self.incr_sql, (delta, now, store_hash, key_hash, now, low, high))
        return _signed(cursor.lastrowid) if cursor.rowcount == 1 else None

    def pop(self, cursor: Cursor, store_hash: str, key_hash: str, now: float) -> Popped | None:
        if self.has_delete_returning:
            return super().pop(cursor, store_hash, key_hash, now)
        with transaction.atomic(using=self.alias):
            cursor.execute(
                f"SELECT {self.popped_columns} FROM {self.table} "
                f"WHERE {self.where_key_live} AND {self.c['format']} NOT IN {_KINDS} FOR UPDATE",
                (store_hash, key_hash, now),
            )
            row = cursor.fetchone()
            if row is None:
                return None
            cursor.execute(self.delete_sql, (store_hash, key_hash, now))
        return tuple(row)
