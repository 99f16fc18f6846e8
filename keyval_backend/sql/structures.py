"""Statements of hashes, sets, sorted sets and locks, for one database alias.

A structure is its key's row in the entry table (format ``hash``, ``set`` or
``zset``; it carries the expiry) plus one row of the member table per field or
member. Reads join the two on the key, so a read is one statement whatever the
structure's state. A write of members is one ``INSERT ... SELECT`` from the
structure's live entry row: it writes nothing when the structure does not
exist yet (the caller then creates it and runs the same statement again), so
the common case is one statement and no collection is ever read, changed in
Python and written back.

The texts need ``RETURNING`` on ``INSERT`` and ``DELETE`` (SQLite >= 3.35,
PostgreSQL, MariaDB >= 10.5); MySQL has neither, and structures are refused
there with one clear error.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from django.db import NotSupportedError, connections

from ..codec import INT64_MAX, INT64_MIN, INT_FORMAT
from .base import ROW_COLUMNS, Dialect

MEMBER_TABLE = "keyval_backend_member"
# StructureSQL by dialect (dialects are built once per alias and kept).
_built: dict[int, tuple[Dialect, StructureSQL]] = {}
ENTRY_TABLE = "keyval_backend_entry"
# The columns a member write fills, in the order of a member's parameters
# (after the entry id, which comes from the structure's row).
MEMBER_COLUMNS = (
    "member_hash",
    "member_format",
    "member",
    "signature",
    "format",
    "value",
    "number",
    "score",
)
# What a member read returns, in this order.
MEMBER_READ = ("member_format", "member", "signature", "format", "value", "number", "score")
# PostgreSQL types of the member parameters: a SELECT list does not take the
# types of the columns it is inserted into.
_PG_TYPES = {
    "member_hash": "varchar",
    "member_format": "varchar",
    "member": "bytea",
    "signature": "bytea",
    "format": "varchar",
    "value": "bytea",
    "number": "bigint",
    "score": "double precision",
}
# The database's clock, in Unix seconds: lock expiry is decided by one clock
# for every client, so hosts with skewed clocks cannot both hold a lock.
_CLOCK = {
    "postgresql": "EXTRACT(EPOCH FROM clock_timestamp())::double precision",
    "mysql": "UNIX_TIMESTAMP(NOW(6))",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


def structure_sql(dialect: Dialect) -> StructureSQL:
    """The structure statements of ``dialect``, built on first use and kept."""
    built = _built.get(id(dialect))
    if built is None or built[0] is not dialect:
        built = _built[id(dialect)] = (dialect, StructureSQL(dialect, connections[dialect.alias]))
    return built[1]


class StructureSQL:
    """The structure statements of one dialect (see :func:`structure_sql`)."""

    def __init__(self, dialect: Dialect, connection: Any) -> None:
        if dialect.vendor == "mysql" and not getattr(connection, "mysql_is_mariadb", False):
            raise NotSupportedError(
                "hashes, sets, sorted sets and locks need INSERT/DELETE ... RETURNING: "
                "MariaDB >= 10.5, PostgreSQL or SQLite >= 3.35; MySQL has no RETURNING"
            )
        qn = connection.ops.quote_name
        self.vendor = dialect.vendor
        self.pg = dialect.vendor == "postgresql"
        self.mysql = dialect.vendor == "mysql"
        e, m = dialect.table, qn(MEMBER_TABLE)
        c = dialect.c
        mc = {name: qn(name) for name in (*MEMBER_COLUMNS, "id", "entry_id", "writes")}
        self.mc = mc
        self.member_table = m
        live = f"({e}.{c['expires']} IS NULL OR {e}.{c['expires']} > %s)"
        # Parameters: store_hash, key_hash, kind, now.
        self.where_structure = (
            f"{e}.{c['store_hash']} = %s AND {e}.{c['key_hash']} = %s "
            f"AND {e}.{c['format']} = %s AND {live}"
        )
        structure_id = f"(SELECT {e}.{c['id']} FROM {e} WHERE {self.where_structure})"
        read = ", ".join(f"{m}.{mc.get(name) or qn(name)}" for name in MEMBER_READ)
        self.read_columns = read
        joined = (
            f"FROM {m} JOIN {e} ON {m}.{mc['entry_id']} = {e}.{c['id']} "
            f"WHERE {self.where_structure}"
        )
        self.joined = joined
        self.clock = _CLOCK[dialect.vendor]
        # MariaDB's DOUBLE has no infinities: they are stored as the largest
        # finite doubles, which no finite score can pass.
        self.finite_scores = self.mysql

        # -- the structure's own row ------------------------------------------
        self.kind_sql = f"SELECT {c['id']}, {c['format']} FROM {e} WHERE {dialect.where_key_live}"
        self.drop_dead_sql = (
            f"DELETE FROM {e} WHERE {c['store_hash']} = %s AND {c['key_hash']} = %s "
            f"AND {c['expires']} <= %s"
        )
        self.create_sql = (
            dialect.insert_head + dialect.row_placeholders + dialect.ignore_duplicate_clause()
        )
        self.lock_row_sql = (
            f"SELECT {c['id']} FROM {e} WHERE {c['id']} = %s FOR UPDATE"
            if connection.features.has_select_for_update
            else None
        )
        self.drop_if_empty_sql = (
            f"DELETE FROM {e} WHERE {c['id']} = %s AND NOT EXISTS "
            f"(SELECT 1 FROM {m} WHERE {mc['entry_id']} = %s)"
        )
        self.drop_key_sql = f"DELETE FROM {e} WHERE {c['store_hash']} = %s AND {c['key_hash']} = %s"
        self.drop_members_sql = (
            f"DELETE FROM {m} WHERE {mc['entry_id']} = (SELECT {c['id']} FROM {e} "
            f"WHERE {c['store_hash']} = %s AND {c['key_hash']} = %s)"
        )

        # -- member reads (params: store_hash, key_hash, kind, now, ...) -------
        self.count_sql = f"SELECT COUNT(*) {joined}"
        self.member_sql = f"SELECT {read} {joined} AND {m}.{mc['member_hash']} = %s"
        self.page_sql = (
            f"SELECT {m}.{mc['id']}, {read} {joined} AND {m}.{mc['id']} > %s "
            f"ORDER BY {m}.{mc['id']} LIMIT %s"
        )
        self.score_range_sql = (
            f"SELECT {read} {joined} AND {{bounds}} ORDER BY {{order}} LIMIT %s OFFSET %s"
        )
        self.score_count_sql = f"SELECT COUNT(*) {joined} AND {{bounds}}"
        self.hashes_in = (
            f"SELECT {m}.{mc['member_hash']}, {read} {joined} AND {m}.{mc['member_hash']} IN "
        )
        order = f"{m}.{mc['score']}, {m}.{qn('member')}"
        order_desc = f"{m}.{mc['score']} DESC, {m}.{qn('member')} DESC"
        self.range_sql = {
            False: f"SELECT {read} {joined} ORDER BY {order} LIMIT %s OFFSET %s",
            True: f"SELECT {read} {joined} ORDER BY {order_desc} LIMIT %s OFFSET %s",
        }
        self.order = {False: order, True: order_desc}
        # The rank of a member: how many members sort before it (or after it).
        m2 = qn("m2")
        rank = {}
        for desc, (lt, gt) in {False: ("<", "<"), True: (">", ">")}.items():
            rank[desc] = (
                f"SELECT {m}.{mc['score']}, (SELECT COUNT(*) FROM {m} {m2} "
                f"WHERE {m2}.{mc['entry_id']} = {m}.{mc['entry_id']} AND "
                f"({m2}.{mc['score']} {lt} {m}.{mc['score']} OR ({m2}.{mc['score']} = "
                f"{m}.{mc['score']} AND {m2}.{qn('member')} {gt} {m}.{qn('member')}))) "
                f"{joined} AND {m}.{mc['member_hash']} = %s"
            )
        self.rank_sql = rank
        self.random_sql = (
            f"SELECT {m}.{mc['member_hash']}, {read} {joined} AND {m}.{mc['member_hash']} >= %s "
            f"ORDER BY {m}.{mc['member_hash']} LIMIT %s"
        )

        # -- member writes -------------------------------------------------------
        insert_into = (
            f"INSERT INTO {m} ({mc['entry_id']}, "
            f"{', '.join(mc[name] for name in MEMBER_COLUMNS)}, {mc['writes']}) "
        )
        self.insert_into = insert_into
        self.from_structure = (
            f" FROM {e} CROSS JOIN ({{rows}}) {qn('x')} WHERE {self.where_structure}"
        )
        self.select_head = (
            f"SELECT {e}.{c['id']}, "
            + ", ".join(f"{qn('x')}.{mc[name]}" for name in MEMBER_COLUMNS)
            + ", 1"
        )
        conflict = f"({mc['entry_id']}, {mc['member_hash']})"

        def mine(name: str) -> str:
            return f"{m}.{mc[name]}"

        def new(name: str) -> str:
            return f"VALUES({mc[name]})" if self.mysql else f"excluded.{mc[name]}"

        if self.mysql:
            self.on_conflict = " ON DUPLICATE KEY UPDATE "
            # A new row has writes = 1; a row that was there returns more.
            self.keep_existing = f" ON DUPLICATE KEY UPDATE {mc['writes']} = {m}.{mc['writes']} + 1"
        else:
            self.on_conflict = f" ON CONFLICT {conflict} DO UPDATE SET "
            # Not DO NOTHING: a row comes back for every member, so an empty
            # result always means the structure was not there.
            self.keep_existing = f"{self.on_conflict}{mc['writes']} = {m}.{mc['writes']} + 1"
        writes = f"{mc['writes']} = {mine('writes')} + 1"
        self.set_value = (
            self.on_conflict
            + f"{writes}, "
            + ", ".join(
                f"{mc[name]} = {new(name)}" for name in ("format", "value", "number", "score")
            )
        )
        self.set_score = self.on_conflict + f"{writes}, {mc['score']} = {new('score')}"
        self.add_score = (
            self.on_conflict + f"{writes}, {mc['score']} = {mine('score')} + {new('score')}"
        )
        if self.mysql:
            # No WHERE on ON DUPLICATE KEY UPDATE: each assignment keeps the old
            # value unless the field is a number (assignments run left to
            # right, so the ones that read the old format come first). A sum
            # that leaves 64 bits is refused by the server (strict mode).
            is_int = f"{mine('format')} = '{INT_FORMAT}'"
            numeric = f"{mine('format')} IN ('{INT_FORMAT}', 'float')"
            self.add_number = (
                self.on_conflict
                + f"{mc['writes']} = IF({is_int}, {mine('writes')} + 1, {mine('writes')}), "
                + f"{mc['number']} = "
                + f"IF({is_int}, {mine('number')} + {new('number')}, {mine('number')})"
            )
            self.add_float = (
                self.on_conflict
                + f"{mc['score']} = IF({is_int}, {mine('number')} + {new('score')}, "
                + f"IF({mine('format')} = 'float', {mine('score')} + {new('score')}, "
                + f"{mine('score')})), "
                + f"{mc['number']} = IF({numeric}, NULL, {mine('number')}), "
                + f"{mc['format']} = IF({numeric}, 'float', {mine('format')})"
            )
        else:
            # The range guard leaves a sum that would leave 64 bits unwritten
            # (SQLite would silently make it a float).
            self.add_number = (
                self.on_conflict
                + f"{writes}, {mc['number']} = {mine('number')} + {new('number')} "
                + f"WHERE {mine('format')} = '{INT_FORMAT}' AND {mine('number')} BETWEEN %s AND %s"
            )
            self.add_float = (
                self.on_conflict
                + f"{writes}, {mc['score']} = CASE WHEN {mine('format')} = '{INT_FORMAT}' "
                + f"THEN {mine('number')} + {new('score')} "
                + f"ELSE {mine('score')} + {new('score')} END, "
                + f"{mc['number']} = NULL, {mc['format']} = 'float' "
                + f"WHERE {mine('format')} IN ('{INT_FORMAT}', 'float')"
            )
        self.returning = f" RETURNING {mc['writes']}, {mc['format']}, {mc['number']}, {mc['score']}"

        # -- member removals ---------------------------------------------------
        self.delete_in = (
            f"DELETE FROM {m} WHERE {mc['entry_id']} = {structure_id} AND {mc['member_hash']} IN "
        )
        self.delete_scores_sql = (
            f"DELETE FROM {m} WHERE {mc['entry_id']} = {structure_id} AND {{bounds}}"
        )
        popped = ", ".join(mc.get(name) or qn(name) for name in MEMBER_READ)
        self.popped = popped
        if self.mysql:
            # MariaDB's single-table DELETE takes ORDER BY and LIMIT.
            self.pop_sql: dict[Any, str] = {
                "random": (
                    f"DELETE FROM {m} WHERE {mc['entry_id']} = {structure_id} "
                    f"AND {mc['member_hash']} >= %s ORDER BY {mc['member_hash']} LIMIT %s "
                    f"RETURNING {popped}"
                ),
                **{
                    desc: f"DELETE FROM {m} WHERE {mc['entry_id']} = {structure_id} "
                    f"ORDER BY {self.order[desc].replace(m + '.', '')} LIMIT %s RETURNING {popped}"
                    for desc in (False, True)
                },
            }
        else:
            # Concurrent pops on PostgreSQL each take rows nobody else is taking.
            skip = " FOR UPDATE SKIP LOCKED" if self.pg else ""
            pick = (
                f"DELETE FROM {m} WHERE {mc['id']} IN (SELECT {m}.{mc['id']} {joined} {{extra}} "
                f"ORDER BY {{order}} LIMIT %s{skip}) RETURNING {popped}"
            )
            self.pop_sql = {
                "random": pick.format(
                    extra=f"AND {m}.{mc['member_hash']} >= %s", order=f"{m}.{mc['member_hash']}"
                ),
                **{desc: pick.format(extra="", order=self.order[desc]) for desc in (False, True)},
            }

        # -- a member moved between sets (smove) --------------------------------
        # One member of a live structure; params: store_hash, key_hash, kind,
        # now, member_hash.
        member_of = (
            f"SELECT 1 FROM {m} WHERE {mc['entry_id']} = {structure_id} "
            f"AND {mc['member_hash']} = %s"
        )
        locked = " FOR UPDATE" if connection.features.has_select_for_update else ""
        # Into the destination (member params, then the destination's and the
        # source member's) while the source has the member, which the check
        # locks: of several moves of one member only one finds it, and the row
        # it found is the one it deletes...
        self.move_in_sql = (
            insert_into
            + self.select_head
            + self.from_structure.format(rows=self.rows_source(1))
            + f" AND EXISTS ({member_of}{locked})"
            + self.keep_existing
        )
        # ...out of the source (the source member's params, then the
        # destination member's) once the destination has it.
        self.move_out_sql = (
            f"DELETE FROM {m} WHERE {mc['entry_id']} = {structure_id} "
            f"AND {mc['member_hash']} = %s AND EXISTS ({member_of})"
        )

        # -- locks (params use the database clock) -----------------------------
        now = self.clock
        lock_live = f"({c['expires']} IS NULL OR {c['expires']} > {now})"
        where_lock = f"{c['store_hash']} = %s AND {c['key_hash']} = %s"
        self.lock_drop_expired_sql = (
            f"DELETE FROM {e} WHERE {where_lock} AND {c['expires']} <= {now}"
        )
        values = ", ".join(
            {"expires": f"{now} + %s", "created": now, "updated": now}.get(name, "%s")
            for name in ROW_COLUMNS
        )
        values_persistent = ", ".join(
            {"expires": "NULL", "created": now, "updated": now}.get(name, "%s")
            for name in ROW_COLUMNS
        )
        head = dialect.insert_head
        tail = f"{dialect.ignore_duplicate_clause()} RETURNING {c['id']}, {c['value']}"
        self.lock_acquire_sql = {
            True: f"{head}({values}, 1){tail}",
            False: f"{head}({values_persistent}, 1){tail}",
        }
        owner = f"{where_lock} AND {c['format']} = 'lock' AND {c['value']} = %s AND {lock_live}"
        self.lock_release_sql = f"DELETE FROM {e} WHERE {owner}"
        self.lock_extend_sql = {
            False: f"UPDATE {e} SET {c['expires']} = {c['expires']} + %s WHERE {owner} "
            f"AND {c['expires']} IS NOT NULL",
            True: f"UPDATE {e} SET {c['expires']} = {now} + %s WHERE {owner}",
        }
        # PostgreSQL draws a row's id when the INSERT starts, before it waits
        # on a transaction that holds the key; a holding that began and ended
        # in that transaction may have drawn a larger one. The winner's id is
        # drawn again once it holds the lock, so its fencing token is larger
        # than every earlier holder's.
        self.lock_refence_sql = (
            f"UPDATE {e} SET {c['id']} = nextval(pg_get_serial_sequence('{ENTRY_TABLE}', 'id')) "
            f"WHERE {c['id']} = %s RETURNING {c['id']}"
            if self.pg
            else None
        )
        self.lock_delete_id_sql = f"DELETE FROM {e} WHERE {c['id']} = %s"
        self.lock_holder_sql = (
            f"SELECT {c['value']}, {c['format']} FROM {e} WHERE {where_lock} AND {lock_live}"
        )

    # -- statements with a variable number of members -------------------------------

    def rows_source(self, count: int) -> str:
        """``count`` rows of member parameters as a derived table."""
        if self.pg:
            first = ", ".join(
                f"%s::{_PG_TYPES[name]} AS {self.mc[name]}" for name in MEMBER_COLUMNS
            )
            other = ", ".join(["%s"] * len(MEMBER_COLUMNS))
        elif self.mysql:
            # mysqlclient quotes bytes as text in the connection's charset; in
            # a derived table that text would be decoded as UTF-8 (and
            # mangled), so the binary columns carry the _binary introducer.
            slots = [
                "_binary %s" if _PG_TYPES[name] == "bytea" else "%s" for name in MEMBER_COLUMNS
            ]
            first = ", ".join(
                f"{slot} AS {self.mc[name]}"
                for slot, name in zip(slots, MEMBER_COLUMNS, strict=True)
            )
            other = ", ".join(slots)
        else:
            first = ", ".join(f"%s AS {self.mc[name]}" for name in MEMBER_COLUMNS)
            other = ", ".join(["%s"] * len(MEMBER_COLUMNS))
        return " UNION ALL ".join([f"SELECT {first}"] + [f"SELECT {other}"] * (count - 1))

    def write_members(self, count: int, clause: str) -> str:
        """Insert ``count`` members into a live structure, with ``clause``
        deciding what happens to members that are there already; returns
        ``(writes, format, number, score)`` of each row written."""
        return (
            self.insert_into
            + self.select_head
            + self.from_structure.format(rows=self.rows_source(count))
            + clause
            + self.returning
        )

    def placeholders(self, count: int) -> str:
        return "(" + ", ".join(["%s"] * count) + ")"

    def score_bounds(
        self, low: tuple[float, bool], high: tuple[float, bool], qualified: bool = True
    ) -> tuple[str, list[float]]:
        """A WHERE condition on the score for Redis's ``min``/``max`` (each a
        value and whether it is exclusive); ``qualified`` for a joined read."""
        score = f"{self.member_table}.{self.mc['score']}" if qualified else self.mc["score"]
        parts, params = [], []
        # An inclusive infinite bound is no bound; an exclusive one leaves out
        # the members whose score is that infinity.
        if low[0] != -math.inf or low[1]:
            parts.append(f"{score} {'>' if low[1] else '>='} %s")
            params.append(score_in(self.finite_scores, low[0]))
        if high[0] != math.inf or high[1]:
            parts.append(f"{score} {'<' if high[1] else '<='} %s")
            params.append(score_in(self.finite_scores, high[0]))
        return (" AND ".join(parts) or "1 = 1"), params


def score_in(finite: bool, score: float) -> float:
    """A score as the database stores it."""
    if finite and math.isinf(score):
        return math.copysign(sys.float_info.max, score)
    return score


def score_out(finite: bool, score: float) -> float:
    """A stored score as Redis gives it."""
    score = float(score)
    if finite and abs(score) == sys.float_info.max:
        return math.copysign(math.inf, score)
    return score


def int_guard(delta: int) -> tuple[int, int]:
    """Bounds an integer may have for ``+ delta`` to stay in 64 bits."""
    if delta >= 0:
        return INT64_MIN, INT64_MAX - delta
    return INT64_MIN - delta, INT64_MAX


def flatten(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return [value for row in rows for value in row]
