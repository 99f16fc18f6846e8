"""Hashes: ``hset``, ``hget``, ``hincrby``, ... (Redis's hash commands).

A hash is its key's row (format ``hash``) and one member row per field. Fields
are text, as in Redis and django-redis; values are anything the cache stores,
with integers and floats kept as numbers so that ``hincrby`` and
``hincrbyfloat`` add in SQL, in one statement.

Every command is steps (see :mod:`.steps`): its async twin runs the same body
natively in the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import DataError, OperationalError

from ..codec import INT_FORMAT, member_hash
from ..sql.structures import int_guard
from .base import FLOAT_FORMAT, MemberRow, StructureCommands, _field, async_twins
from .steps import Steps, command

HASH = "hash"


@async_twins(
    "hset", "hsetnx", "hget", "hmget", "hgetall", "hdel", "hlen", "hkeys", "hvals",
    "hexists", "hincrby", "hincrbyfloat",
)  # fmt: skip
class HashCommands(StructureCommands):
    @command
    def hset(
        self,
        key: Any,
        field: Any = None,
        value: Any = None,
        mapping: Mapping[Any, Any] | None = None,
        version: int | None = None,
    ) -> Steps[int]:
        """Set ``field`` to ``value`` (and every pair of ``mapping``); return
        how many fields are new."""
        pairs: dict[str, Any] = {}
        if field is not None:
            pairs[_field_hash(field)] = (field, value)
        if mapping:
            for name, item in mapping.items():
                pairs[_field_hash(name)] = (name, item)
        if not pairs:
            raise ValueError("hset needs a field and a value, or a mapping")
        rows = [self._field_row(name, item) for name, item in pairs.values()]
        sql, _ = self._structures()
        written = yield from self._write_members_steps(key, version, HASH, rows, sql.set_value)
        return sum(1 for row in written if row[0] == 1)

    @command
    def hsetnx(self, key: Any, field: Any, value: Any, version: int | None = None) -> Steps[bool]:
        """Set ``field`` only if the hash does not have it; True if set."""
        sql, _ = self._structures()
        row = self._field_row(field, value)
        written = yield from self._write_members_steps(key, version, HASH, [row], sql.keep_existing)
        return any(item[0] == 1 for item in written)

    @command
    def hget(self, key: Any, field: Any, version: int | None = None) -> Steps[Any]:
        """The value of ``field``, or None."""
        return (yield from self._hget_steps(key, field, version))

    def _hget_steps(self, key: Any, field: Any, version: int | None) -> Steps[Any]:
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, HASH)
        rows = yield from self._read_steps(
            key_hash, HASH, sql.member_sql, [*where, _field_hash(field)]
        )
        return self._decode_value(rows[0]) if rows else None

    @command
    def hmget(
        self, key: Any, fields: Any, *args: Any, version: int | None = None
    ) -> Steps[list[Any]]:
        """The values of ``fields`` (a list, or several arguments), None for
        each missing one."""
        names = (
            [fields, *args] if isinstance(fields, str | bytes | int | float) else [*fields, *args]
        )
        hashes = [_field_hash(name) for name in names]
        if not hashes:
            return []
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, HASH)
        text = sql.hashes_in + sql.placeholders(len(hashes))
        rows = yield from self._read_steps(key_hash, HASH, text, [*where, *hashes])
        found = {row[0]: row[1:] for row in rows}
        return [self._decode_value(found[h]) if h in found else None for h in hashes]

    @command
    def hgetall(self, key: Any, version: int | None = None) -> Steps[dict[str, Any]]:
        """Every field and value, in the order the fields were added."""
        rows = yield from self._all_members_steps(key, version, HASH)
        return {self._decode_member(row): self._decode_value(row) for row in rows}

    @command
    def hdel(self, key: Any, *fields: Any, version: int | None = None) -> Steps[int]:
        """Delete fields; return how many existed. The hash goes when its
        last field does."""
        if not fields:
            raise ValueError("hdel needs at least one field")
        hashes = list({_field_hash(name): None for name in fields})
        return (yield from self._delete_members_steps(key, version, HASH, hashes))

    @command
    def hlen(self, key: Any, version: int | None = None) -> Steps[int]:
        return (yield from self._count_steps(key, version, HASH))

    @command
    def hkeys(self, key: Any, version: int | None = None) -> Steps[list[str]]:
        rows = yield from self._all_members_steps(key, version, HASH)
        return [self._decode_member(row) for row in rows]

    @command
    def hvals(self, key: Any, version: int | None = None) -> Steps[list[Any]]:
        rows = yield from self._all_members_steps(key, version, HASH)
        return [self._decode_value(row) for row in rows]

    @command
    def hexists(self, key: Any, field: Any, version: int | None = None) -> Steps[bool]:
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, HASH)
        rows = yield from self._read_steps(
            key_hash, HASH, sql.member_sql, [*where, _field_hash(field)]
        )
        return bool(rows)

    @command
    def hincrby(
        self, key: Any, field: Any, amount: int = 1, version: int | None = None
    ) -> Steps[int]:
        """Add ``amount`` to an integer field (a missing field counts as 0),
        atomically, in one statement; return the new value."""
        if type(amount) is not int:
            raise TypeError(f"hincrby adds an int, not {type(amount).__name__}")
        sql, _ = self._structures()
        row = self._number_row(field, INT_FORMAT, amount, None)
        guard = [] if sql.mysql else list(int_guard(amount))
        try:
            written = yield from self._write_members_steps(
                key, version, HASH, [row], sql.add_number, guard
            )
        except (DataError, OperationalError) as exc:
            if "out of range" not in str(exc):
                raise
            written = []
        if written and written[0][1] == INT_FORMAT:
            return int(written[0][2])
        value = yield from self._hget_steps(key, field, version)
        if type(value) is int:
            raise ValueError("increment or decrement would overflow")
        raise ValueError(_not_a_number(key, field, value, "an integer"))

    @command
    def hincrbyfloat(
        self, key: Any, field: Any, amount: float = 1.0, version: int | None = None
    ) -> Steps[float]:
        """Add ``amount`` to a numeric field (a missing field counts as 0),
        atomically, in one statement; return the new value."""
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise TypeError(f"hincrbyfloat adds a number, not {type(amount).__name__}")
        sql, _ = self._structures()
        row = self._number_row(field, FLOAT_FORMAT, None, float(amount))
        written = yield from self._write_members_steps(key, version, HASH, [row], sql.add_float)
        if written and written[0][1] == FLOAT_FORMAT:
            return float(written[0][3])
        value = yield from self._hget_steps(key, field, version)
        raise ValueError(_not_a_number(key, field, value, "a float"))

    def _number_row(
        self, field: Any, fmt: str, number: int | None, score: float | None
    ) -> MemberRow:
        """A field and an amount to add, as member parameters."""
        stored = _field(field)
        return (member_hash(stored), *stored, fmt, b"", number, score)


def _not_a_number(key: Any, field: Any, value: Any, kind: str) -> str:
    return f"hash value is not {kind}: field {field!r} of {key!r} holds {type(value).__name__}"


def _field_hash(field: Any) -> str:
    """The member hash of a hash field (what a lookup by field needs; its
    value is not encoded)."""
    return member_hash(_field(field))


__all__ = ["HashCommands"]
