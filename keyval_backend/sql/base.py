"""The statements every vendor shares, and the contract of a vendor dialect.

A dialect is built once per database alias (``dialect_for``); its statement
texts are plain strings with every identifier quoted by the connection's
``quote_name``. Each single-key operation is one statement. The base class
implements the upserts with ``INSERT ... ON CONFLICT ... RETURNING``
(SQLite >= 3.35, PostgreSQL); :mod:`.mysql` overrides what MySQL lacks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from ..codec import INT64_MAX, INT64_MIN, INT_FORMAT, STRUCTURE_FORMATS
from ..db import Cursor

# The columns of an inserted row, in the order of the parameters of a row.
ROW_COLUMNS = (
    "store",
    "key",
    "store_hash",
    "key_hash",
    "format",
    "value",
    "number",
    "expires",
    "created",
    "updated",
)
# Parameters of one row: (store, key, store_hash, key_hash, format, value,
# number, expires, created, updated); ``created`` and ``updated`` are "now".
Row = tuple[bytes, bytes, str, str, str, bytes, int | None, float | None, float, float]
# A native driver's statement runner: (rows, rowcount) of (sql, params).
Run = Callable[[str, Sequence[Any]], Awaitable[tuple[list[Any], int]]]
# (format, value, number) of a stored row.
Stored = tuple[str, bytes, int | None]
# (format, value, number, expires, id, created, updated, writes) of a popped
# row: enough to put it back exactly as it was.
Popped = tuple[str, bytes, int | None, float | None, int, float, float, int]

# The formats of rows that own members, as an SQL list.
_KINDS = "(" + ", ".join(f"'{kind}'" for kind in STRUCTURE_FORMATS) + ")"

# Bytes of a key's head that the key index holds (migration 0003).
HEAD_BYTES = 255

# Rows per batch statement, whatever the vendor's parameter limit allows: large
# enough to amortise a round trip, small enough to keep one statement's memory low.
MAX_BATCH_ROWS = 1000
# What a row adds to a batch statement besides its names and value: two hex
# digests, the format tag, numbers, separators.
ROW_OVERHEAD_BYTES = 128


class Dialect:
    """Statement texts and vendor-only steps for one database alias."""

    # Bytes of rows per batch statement, for drivers that build a statement's
    # text on the client (None: no limit but the parameter count).
    max_batch_bytes: int | None = None

    def __init__(self, connection: BaseDatabaseWrapper, table: str) -> None:
        qn = connection.ops.quote_name
        self.alias = connection.alias
        self.vendor = connection.vendor
        self.max_params = connection.features.max_query_params or 65535
        t = self.table = qn(table)
        c = {name: qn(name) for name in (*ROW_COLUMNS, "id", "writes")}
        self.c = c
        self.live = f"({c['expires']} IS NULL OR {c['expires']} > %s)"
        where_key = f"{c['store_hash']} = %s AND {c['key_hash']} = %s"
        self.where_key_live = f"{where_key} AND {self.live}"
        self.insert_head = (
            f"INSERT INTO {t} ({', '.join(c[name] for name in ROW_COLUMNS)}, {c['writes']}) VALUES "
        )
        self.row_placeholders = f"({', '.join(['%s'] * len(ROW_COLUMNS))}, 1)"

        stored_columns = f"{c['format']}, {c['value']}, {c['number']}"
        self.get_sql = f"SELECT {stored_columns} FROM {t} WHERE {self.where_key_live}"
        # get() with a near cache, which keeps the expiry beside the value.
        self.near_get_sql = (
            f"SELECT {stored_columns}, {c['expires']} FROM {t} WHERE {self.where_key_live}"
        )
        self.get_versioned_sql = (
            f"SELECT {c['id']}, {c['writes']}, {c['format']}, {c['value']}, {c['number']} "
            f"FROM {t} WHERE {self.where_key_live}"
        )
        self.has_key_sql = f"SELECT 1 FROM {t} WHERE {self.where_key_live}"
        self.touch_sql = f"UPDATE {t} SET {c['expires']} = %s WHERE {self.where_key_live}"
        self.persist_sql = (
            f"UPDATE {t} SET {c['expires']} = NULL WHERE {self.where_key_live} "
            f"AND {c['expires']} IS NOT NULL"
        )
        # A write only over a live key (set with xx=True).
        self.replace_sql = (
            f"UPDATE {t} SET {c['format']} = %s, {c['value']} = %s, {c['number']} = %s, "
            f"{c['expires']} = %s, {c['updated']} = %s, {c['writes']} = {c['writes']} + 1 "
            f"WHERE {self.where_key_live}"
        )
        self.delete_sql = f"DELETE FROM {t} WHERE {self.where_key_live}"
        self.replace_value_sql = (
            f"UPDATE {t} SET {c['format']} = %s, {c['value']} = %s, {c['number']} = %s, "
            f"{c['updated']} = %s, {c['writes']} = {c['writes']} + 1 "
            f"WHERE {c['id']} = %s AND {c['writes']} = %s"
        )
        self.expires_sql = f"SELECT {c['expires']} FROM {t} WHERE {self.where_key_live}"
        self.clear_sql = f"DELETE FROM {t} WHERE {c['store_hash']} = %s"
        self.flush_all_sql = f"DELETE FROM {t}"
        in_range = f"{c['key']} >= %s AND {c['key']} < %s"
        self.count_sql = (
            f"SELECT COUNT(*) FROM {t} WHERE {c['store_hash']} = %s AND {self.live} AND {in_range}"
        )
        self.count_all_sql = f"SELECT COUNT(*) FROM {t} WHERE {c['store_hash']} = %s"
        self.stores_sql = (
            f"SELECT {c['store']}, COUNT(*) FROM {t} WHERE {self.live} "
            f"GROUP BY {c['store_hash']}, {c['store']}"
        )
        self.purge_store_sql = (
            f"DELETE FROM {t} WHERE {c['store_hash']} = %s AND {c['expires']} <= %s"
        )
        # Keyset pagination, no cursor open between pages. Where the vendor
        # indexes the head of the key (migration 0003), pages follow
        # (store_hash, head, key_hash): a prefix is a range of that index, so
        # listing "user:*" reads only the keys that start with "user:".
        # Otherwise they follow the unique (store_hash, key_hash) index.
        head = self.head = self.key_head()
        if head is None:
            page_where = (
                f"FROM {t} WHERE {c['store_hash']} = %s AND {c['key_hash']} > %s AND {self.live} "
                f"AND {in_range} ORDER BY {c['key_hash']} LIMIT %s"
            )
            tail = ""
        else:
            page_where = (
                f"FROM {t} WHERE {c['store_hash']} = %s AND ({head}, {c['key_hash']}) > (%s, %s) "
                f"AND {self.live} AND {in_range} AND {head} >= %s AND {head} <= %s "
                f"ORDER BY {head}, {c['key_hash']} LIMIT %s"
            )
            tail = f", {head}"
        self.page_sql = (
            f"SELECT {c['key_hash']}, {c['key']}, {c['format']}, {c['value']}, {c['number']}"
            f"{tail} " + page_where
        )
        self.page_keys_sql = f"SELECT {c['key_hash']}, {c['key']}{tail} " + page_where
        self.set_many_sql_clause = self.set_many_clause()
        self.upsert_sql = self.insert_head + self.row_placeholders + self.upsert_clause()
        self.add_sql = self.insert_head + self.row_placeholders + self.add_clause()
        self.incr_sql = self.incr_statement()
        self.incr_or_create_sql = self.incr_or_create_statement()
        self.popped_columns = (
            f"{stored_columns}, {c['expires']}, {c['id']}, {c['created']}, {c['updated']}, "
            f"{c['writes']}"
        )
        self.restore_sql = (
            f"INSERT INTO {t} ({c['id']}, {', '.join(c[name] for name in ROW_COLUMNS)}, "
            f"{c['writes']}) VALUES ({', '.join(['%s'] * (len(ROW_COLUMNS) + 2))})"
            + self.ignore_duplicate_clause()
        )
        # A hash, set or sorted set is never popped: deleting its row would
        # take its members with it before the value could be read.
        self.pop_sql = (
            f"DELETE FROM {t} WHERE {self.where_key_live} AND {c['format']} NOT IN {_KINDS} "
            f"RETURNING {self.popped_columns}"
        )
        self.purge_sql = self.purge_statement()
        self.cull_sql = self.cull_statement()
        self._in_list = lru_cache(maxsize=64)(self._in_list_uncached)

    # -- statement texts a vendor may override ------------------------------

    def key_head(self) -> str | None:
        """The indexed expression of a key's first HEAD_BYTES bytes, or None
        where the vendor indexes the key itself (MariaDB's prefix index)."""
        return f"substr({self.c['key']}, 1, {HEAD_BYTES})"

    def upsert_clause(self) -> str:
        """``ON CONFLICT`` clause of a set: overwrite, and return ``writes``,
        which is 1 exactly when no live row was there (new, or expired)."""
        c, t = self.c, self.table
        expired = f"{t}.{c['expires']} <= excluded.{c['updated']}"
        return (
            f" ON CONFLICT ({c['store_hash']}, {c['key_hash']}) DO UPDATE SET "
            f"{c['format']} = excluded.{c['format']}, {c['value']} = excluded.{c['value']}, "
            f"{c['number']} = excluded.{c['number']}, {c['expires']} = excluded.{c['expires']}, "
            f"{c['updated']} = excluded.{c['updated']}, "
            f"{c['created']} = CASE WHEN {expired} THEN excluded.{c['created']} "
            f"ELSE {t}.{c['created']} END, "
            f"{c['writes']} = CASE WHEN {expired} THEN 1 ELSE {t}.{c['writes']} + 1 END "
            f"RETURNING {c['writes']}"
        )

    def add_clause(self) -> str:
        """``ON CONFLICT`` clause of an add: replace only an expired row; a row
        comes back exactly when the add won."""
        c, t = self.c, self.table
        return (
            f" ON CONFLICT ({c['store_hash']}, {c['key_hash']}) DO UPDATE SET "
            f"{c['format']} = excluded.{c['format']}, {c['value']} = excluded.{c['value']}, "
            f"{c['number']} = excluded.{c['number']}, {c['expires']} = excluded.{c['expires']}, "
            f"{c['created']} = excluded.{c['created']}, {c['updated']} = excluded.{c['updated']}, "
            f"{c['writes']} = 1 "
            f"WHERE {t}.{c['expires']} <= excluded.{c['updated']} RETURNING {c['writes']}"
        )

    def ignore_duplicate_clause(self) -> str:
        """Make an INSERT a no-op when the key (or id) exists."""
        return " ON CONFLICT DO NOTHING"

    def set_many_clause(self) -> str:
        """``ON CONFLICT`` clause of a batch set (no result needed)."""
        return self.upsert_clause().rsplit(" RETURNING ", 1)[0]

    def incr_statement(self) -> str:
        """Add to a native integer in place, keeping its expiry; returns the
        new value. The range guard leaves overflow to the Python path."""
        c, t = self.c, self.table
        return (
            f"UPDATE {t} SET {c['number']} = {c['number']} + %s, {c['updated']} = %s, "
            f"{c['writes']} = {c['writes']} + 1 WHERE {self.where_key_live} "
            f"AND {c['format']} = '{INT_FORMAT}' AND {c['number']} BETWEEN %s AND %s "
            f"RETURNING {c['number']}"
        )

    def incr_or_create_statement(self) -> str | None:
        """Add to a native integer, or create it at the amount where the key
        is absent or expired (django-redis's ``ignore_key_check``), keeping a
        live key's expiry; returns the new value. None: the vendor has none."""
        c, t = self.c, self.table
        expired = f"{t}.{c['expires']} <= excluded.{c['updated']}"
        return (
            self.insert_head + self.row_placeholders
            + f" ON CONFLICT ({c['store_hash']}, {c['key_hash']}) DO UPDATE SET "
            f"{c['number']} = CASE WHEN {expired} THEN excluded.{c['number']} "
            f"ELSE {t}.{c['number']} + excluded.{c['number']} END, "
            f"{c['expires']} = CASE WHEN {expired} THEN NULL ELSE {t}.{c['expires']} END, "
            f"{c['created']} = CASE WHEN {expired} THEN excluded.{c['created']} "
            f"ELSE {t}.{c['created']} END, "
            f"{c['format']} = excluded.{c['format']}, {c['value']} = excluded.{c['value']}, "
            f"{c['updated']} = excluded.{c['updated']}, {c['writes']} = {t}.{c['writes']} + 1 "
            f"WHERE {expired} OR ({t}.{c['format']} = '{INT_FORMAT}' "
            f"AND {t}.{c['number']} BETWEEN %s AND %s) RETURNING {c['number']}"
        )  # fmt: skip

    def purge_statement(self) -> str:
        """Delete at most N expired rows of any store."""
        c, t = self.c, self.table
        # The condition is repeated outside the subquery: PostgreSQL re-checks
        # only the outer WHERE of a row updated meanwhile, and a concurrent set
        # may have made it live again.
        return (
            f"DELETE FROM {t} WHERE {c['id']} IN (SELECT {c['id']} FROM {t} "
            f"WHERE {c['expires']} <= %s LIMIT %s) AND {c['expires']} <= %s"
        )

    def cull_statement(self) -> str:
        """Delete the N least recently written rows of one store."""
        c, t = self.c, self.table
        return (
            f"DELETE FROM {t} WHERE {c['id']} IN (SELECT {c['id']} FROM {t} "
            f"WHERE {c['store_hash']} = %s ORDER BY {c['updated']}, {c['id']} LIMIT %s)"
        )

    # -- pages of keys ---------------------------------------------------------

    def page_query(
        self,
        values: bool,
        store_hash: str,
        after: Any,
        now: float,
        low: bytes,
        high: bytes,
        size: int,
    ) -> tuple[str, tuple[Any, ...]]:
        """The statement of the page of keys in ``[low, high)`` after the row
        that :meth:`page_after` made ``after`` (None: the first page)."""
        sql = self.page_sql if values else self.page_keys_sql
        if self.head is None:
            return sql, (store_hash, after or "", now, low, high, size)
        after_head, after_hash = after or (b"", "")
        head_low, head_high = low[:HEAD_BYTES], high[:HEAD_BYTES]
        return sql, (store_hash, after_head, after_hash, now, low, high, head_low, head_high, size)

    def page_after(self, row: Sequence[Any]) -> Any:
        """Where the page after ``row`` starts."""
        return row[0] if self.head is None else (bytes(row[-1]), row[0])

    # -- vendor-only steps ----------------------------------------------------

    def upsert(self, cursor: Cursor, row: Row) -> bool:
        """Write a row; True if no live row was there before."""
        cursor.execute(self.upsert_sql, row)
        return bool(cursor.fetchone()[0] == 1)

    def add(self, cursor: Cursor, row: Row) -> bool:
        """Insert a row unless a live one is there; True if it was written."""
        cursor.execute(self.add_sql, row)
        return cursor.fetchone() is not None

    def incr(
        self, cursor: Cursor, store_hash: str, key_hash: str, delta: int, now: float
    ) -> int | None:
        """The new value, or None when the row is missing, expired, not a
        native integer, or the sum would leave the 64-bit range."""
        low, high = incr_bounds(delta)
        cursor.execute(self.incr_sql, (delta, now, store_hash, key_hash, now, low, high))
        row = cursor.fetchone()
        return None if row is None else int(row[0])

    def incr_or_create(self, cursor: Cursor, row: Row, delta: int) -> int | None:
        """The new value, or None when a live value is not a native integer,
        the sum would leave 64 bits, or the vendor has no such statement."""
        if self.incr_or_create_sql is None:
            return None
        cursor.execute(self.incr_or_create_sql, (*row, *incr_bounds(delta)))
        found = cursor.fetchone()
        return None if found is None else int(found[0])

    def pop(self, cursor: Cursor, store_hash: str, key_hash: str, now: float) -> Popped | None:
        """Delete a live row and return what it held, in one statement."""
        cursor.execute(self.pop_sql, (store_hash, key_hash, now))
        row = cursor.fetchone()
        return None if row is None else tuple(row)

    def purge_expired(self, cursor: Cursor, now: float, limit: int) -> int:
        cursor.execute(self.purge_sql, self.purge_params(now, limit))
        return int(cursor.rowcount)

    def purge_params(self, now: float, limit: int) -> tuple[float | int, ...]:
        return (now, limit, now)

    # -- the same steps for a native async driver (keyval_backend.aio) -------
    # Twins of the steps above, for the vendors whose steps are these base
    # ones (SQLite, PostgreSQL); ``run`` is the driver's ``run``.

    async def aupsert(self, run: Run, row: Row) -> bool:
        rows, _ = await run(self.upsert_sql, row)
        return bool(rows[0][0] == 1)

    async def aadd(self, run: Run, row: Row) -> bool:
        rows, _ = await run(self.add_sql, row)
        return bool(rows)

    async def aincr(
        self, run: Run, store_hash: str, key_hash: str, delta: int, now: float
    ) -> int | None:
        low, high = incr_bounds(delta)
        rows, _ = await run(self.incr_sql, (delta, now, store_hash, key_hash, now, low, high))
        return int(rows[0][0]) if rows else None

    async def aincr_or_create(self, run: Run, row: Row, delta: int) -> int | None:
        if self.incr_or_create_sql is None:
            return None
        rows, _ = await run(self.incr_or_create_sql, (*row, *incr_bounds(delta)))
        return int(rows[0][0]) if rows else None

    async def apop(self, run: Run, store_hash: str, key_hash: str, now: float) -> Popped | None:
        rows, _ = await run(self.pop_sql, (store_hash, key_hash, now))
        return tuple(rows[0]) if rows else None

    async def apurge_expired(self, run: Run, now: float, limit: int) -> int:
        _, count = await run(self.purge_sql, self.purge_params(now, limit))
        return count

    def has_native_steps(self) -> bool:
        """True if this vendor's steps are the base ones that have twins."""
        cls = type(self)
        return all(
            getattr(cls, name) is getattr(Dialect, name)
            for name in ("upsert", "add", "incr", "incr_or_create", "pop", "purge_expired")
        )

    def cull(self, cursor: Cursor, store_hash: str, count: int) -> None:
        cursor.execute(self.cull_sql, (store_hash, count))

    # -- batches ----------------------------------------------------------------

    def batch_size(self, params_per_row: int, fixed_params: int = 0) -> int:
        return max(1, min(MAX_BATCH_ROWS, (self.max_params - fixed_params) // params_per_row))

    def row_batches(self, rows: Sequence[Row]) -> list[Sequence[Row]]:
        """``rows`` cut into the batches that each make one statement: at most
        as many rows as the parameter limit allows and, where the dialect
        says so, about ``max_batch_bytes`` of names and values."""
        limit = self.batch_size(len(ROW_COLUMNS))
        budget = self.max_batch_bytes
        if budget is None:
            return [rows[start : start + limit] for start in range(0, len(rows), limit)]
        batches: list[Sequence[Row]] = []
        start = size = 0
        for index, row in enumerate(rows):
            row_bytes = len(row[0]) + len(row[1]) + len(row[5]) + ROW_OVERHEAD_BYTES
            if index > start and (index - start == limit or size + row_bytes > budget):
                batches.append(rows[start:index])
                start, size = index, 0
            size += row_bytes
        if start < len(rows):
            batches.append(rows[start:])
        return batches

    def _in_list_uncached(self, n: int) -> str:
        return ", ".join(["%s"] * n)

    # Each batch statement comes as (sql, params), so that the benchmark's
    # raw-driver floor runs exactly what the backend runs.

    def get_many_query(
        self, store_hash: str, hashes: Sequence[str], now: float
    ) -> tuple[str, list[Any]]:
        """Select ``(key_hash, format, value, number)`` of the live rows among
        ``hashes``."""
        c = self.c
        sql = (
            f"SELECT {c['key_hash']}, {c['format']}, {c['value']}, {c['number']} FROM {self.table} "
            f"WHERE {c['store_hash']} = %s AND {c['key_hash']} IN ({self._in_list(len(hashes))}) "
            f"AND {self.live}"
        )
        return sql, [store_hash, *hashes, now]

    def delete_many_query(self, store_hash: str, hashes: Sequence[str]) -> tuple[str, list[Any]]:
        c = self.c
        sql = (
            f"DELETE FROM {self.table} WHERE {c['store_hash']} = %s "
            f"AND {c['key_hash']} IN ({self._in_list(len(hashes))})"
        )
        return sql, [store_hash, *hashes]

    def insert_rows_query(self, rows: Sequence[Row], clause: str) -> tuple[str, list[Any]]:
        """Insert rows (distinct keys) in one statement ending with ``clause``
        (an upsert, add or set_many clause)."""
        sql = self.insert_head + ", ".join([self.row_placeholders] * len(rows)) + clause
        params: list[Any] = []
        for row in rows:
            params.extend(row)
        return sql, params

    def set_many_query(self, rows: Sequence[Row]) -> tuple[str, list[Any]]:
        """Upsert rows (distinct keys) in one statement."""
        return self.insert_rows_query(rows, self.set_many_sql_clause)


def incr_bounds(delta: int) -> tuple[int, int]:
    """The values a native integer may hold for ``+ delta`` to stay in 64 bits."""
    if delta >= 0:
        return INT64_MIN, INT64_MAX - delta
    return INT64_MIN - delta, INT64_MAX
