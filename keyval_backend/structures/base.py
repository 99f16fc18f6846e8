"""What every structure command shares: finding a structure by its key,
creating it, writing and reading its members, and dropping it when empty.

The command mixins (hashes, sets, sorted sets, locks, expiry, patterns) are
combined with the backend core into :class:`~keyval_backend.cache.KeyValCache`;
this base class names the part of the core they use.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.cache.backends.base import BaseCache
from django.db import IntegrityError, connections, transaction

from .. import db
from ..codec import FIELD_FORMAT, INT_FORMAT, RowCodec, member_hash, wrong_type_message
from ..exceptions import WrongTypeError
from ..sql.structures import MEMBER_READ, StructureSQL, flatten, structure_sql
from .steps import Atomic, InThread, Result, Statement, Steps, adrive, drive

if TYPE_CHECKING:
    from ..aio import Driver
    from ..cache import KeyPages
    from ..sql import Dialect

# A member's parameters, in the order of sql.structures.MEMBER_COLUMNS.
MemberRow = tuple[str, str, bytes, bytes, str, bytes, int | None, float | None]
# What identifies a member's signature: the store, not the key, so that
# members copied between keys in SQL (smove, sunionstore) still verify. The
# suffix is not hex, so no key's identity can equal it.
_MEMBER_IDENTITY = "~members~members~members~member~"
# Members fetched per round trip when a structure is read whole.
MEMBER_PAGE = 1000
# Members written per statement.
MEMBER_BATCH = 500
# A write that finds its structure missing creates it and runs again; other
# processes deleting it meanwhile can make that happen again, not forever.
WRITE_ATTEMPTS = 5
FLOAT_FORMAT = "float"
_F = TypeVar("_F", bound=Callable[..., Any])
T = TypeVar("T")


class StructureCommands(BaseCache):
    """Helpers of the structure commands, over the backend core's state."""

    if TYPE_CHECKING:
        _store_hash: str
        _store_bytes: bytes
        _codec: RowCodec

        def _get_dialect(self) -> Dialect: ...
        def _native(self) -> Driver[Any] | None: ...
        def _identify(self, made_key: str) -> tuple[bytes, str]: ...
        def _key_hash(self, key: Any, version: int | None) -> str: ...
        def _near_written(self, key_hashes: Sequence[str]) -> None: ...
        def _pages(
            self,
            prefix: str,
            version: int | None,
            values: bool,
            match: re.Pattern[str] | None = None,
            key_prefix: str | None = None,
            page_size: int | None = None,
        ) -> Iterator[tuple[str, str, Any]]: ...
        def _apages(
            self,
            prefix: str,
            version: int | None,
            match: re.Pattern[str] | None,
            page_size: int | None,
        ) -> AsyncIterator[tuple[str, str]]: ...
        def _key_pages(
            self,
            prefix: str,
            version: int | None,
            values: bool = False,
            match: re.Pattern[str] | None = None,
            key_prefix: str | None = None,
            page_size: int | None = None,
        ) -> KeyPages: ...

    def _structures(self) -> tuple[StructureSQL, str]:
        dialect = self._get_dialect()
        return structure_sql(dialect), dialect.alias

    def _member_identity(self) -> bytes:
        return (self._store_hash + _MEMBER_IDENTITY).encode()

    # -- the structure's row ---------------------------------------------------
    # Each helper is steps (see .steps), driven by the sync wrapper after it
    # or, from a command's body, by ``yield from``.

    def _drive(self, steps: Steps[T]) -> T:
        return drive(self._structures()[1], steps)

    def _kind_steps(self, key_hash: str) -> Steps[tuple[int, str] | None]:
        """``(id, format)`` of the live row of a key, or None."""
        sql, _ = self._structures()
        rows, _ = yield Statement(sql.kind_sql, (self._store_hash, key_hash, time.time()))
        return None if not rows else (int(rows[0][0]), rows[0][1])

    def _kind(self, key_hash: str) -> tuple[int, str] | None:
        return self._drive(self._kind_steps(key_hash))

    def _check_kind_steps(self, key_hash: str, kind: str) -> Steps[int | None]:
        """The id of the live ``kind`` structure of a key, None if the key is
        absent; WrongTypeError if it holds something else."""
        found = yield from self._kind_steps(key_hash)
        if found is None:
            return None
        if found[1] != kind:
            raise WrongTypeError(wrong_type_message(found[1], kind))
        return found[0]

    def _check_kind(self, key_hash: str, kind: str) -> int | None:
        return self._drive(self._check_kind_steps(key_hash, kind))

    def _ensure_steps(self, key_bytes: bytes, key_hash: str, kind: str) -> Steps[tuple[int, bool]]:
        """``(id, created)`` of the key's ``kind`` structure, made empty if the
        key is absent. An expired row of the key goes first (and its members
        with it), so a new structure never inherits anything."""
        sql, _ = self._structures()
        while True:
            existing = yield from self._check_kind_steps(key_hash, kind)
            if existing is not None:
                return existing, False
            now = time.time()
            row = (
                self._store_bytes,
                key_bytes,
                self._store_hash,
                key_hash,
                kind,
                b"",
                None,
                None,
                now,
                now,
            )
            yield Statement(sql.drop_dead_sql, (self._store_hash, key_hash, now), False, True)
            yield Statement(sql.create_sql, row, False, True)
            created = yield from self._check_kind_steps(key_hash, kind)
            if created is not None:
                return created, True
            # Deleted again at once by another process: make it again.

    def _ensure(self, key_bytes: bytes, key_hash: str, kind: str) -> tuple[int, bool]:
        return self._drive(self._ensure_steps(key_bytes, key_hash, kind))

    def _drop_if_empty_steps(self, key_hash: str, kind: str) -> Steps[None]:
        """Delete a structure that has lost its last member, as Redis does.

        The row is locked first where the database can, so a member being
        added concurrently either commits before the check (and keeps the
        structure) or waits and then finds it gone (and creates a new one).
        """
        sql, _ = self._structures()
        found = yield from self._kind_steps(key_hash)
        if found is None or found[1] != kind:
            return
        entry_id = found[0]
        drop = Statement(sql.drop_if_empty_sql, (entry_id, entry_id), False, True)
        if sql.lock_row_sql is None:
            yield drop
        else:
            yield Atomic((Statement(sql.lock_row_sql, (entry_id,)), drop))

    def _drop_if_empty(self, key_hash: str, kind: str) -> None:
        self._drive(self._drop_if_empty_steps(key_hash, kind))

    # -- members -----------------------------------------------------------------

    def _where(self, key: Any, version: int | None, kind: str) -> tuple[str, list[Any]]:
        """The key's hash and the parameters that select its live ``kind`` row."""
        key_hash = self._key_hash(key, version)
        return key_hash, [self._store_hash, key_hash, kind, time.time()]

    def _read_steps(
        self, key_hash: str, kind: str, sql_text: str, params: Sequence[Any]
    ) -> Steps[list[Any]]:
        """Rows of a member read; an empty result is checked for WRONGTYPE."""
        rows, _ = yield Statement(sql_text, params)
        if not rows:
            yield from self._check_kind_steps(key_hash, kind)
        return list(rows)

    def _read(self, key_hash: str, kind: str, sql_text: str, params: Sequence[Any]) -> list[Any]:
        return self._drive(self._read_steps(key_hash, kind, sql_text, params))

    def _count_steps(self, key: Any, version: int | None, kind: str) -> Steps[int]:
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, kind)
        rows = yield from self._read_steps(key_hash, kind, sql.count_sql, where)
        count = int(rows[0][0])
        if not count:
            yield from self._check_kind_steps(key_hash, kind)
        return count

    def _count(self, key: Any, version: int | None, kind: str) -> int:
        return self._drive(self._count_steps(key, version, kind))

    def _all_members_steps(self, key: Any, version: int | None, kind: str) -> Steps[list[Any]]:
        """Every member row of a structure (as :meth:`_member_pages` gives
        them), read a page per statement, into one list."""
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, kind)
        members: list[Any] = []
        after = 0
        while True:
            rows, _ = yield Statement(sql.page_sql, [*where, after, MEMBER_PAGE])
            if not members and not rows:
                yield from self._check_kind_steps(key_hash, kind)
            members.extend(row[1:] for row in rows)
            if len(rows) < MEMBER_PAGE:
                return members
            after = rows[-1][0]

    def _member_pages(self, key: Any, version: int | None, kind: str) -> Any:
        """Every member row of a structure, a page at a time, in the order
        they were added (constant memory at any size)."""
        sql, alias = self._structures()
        key_hash, where = self._where(key, version, kind)
        after = 0
        first = True
        while True:
            with db.cursor(alias) as cursor:
                cursor.execute(sql.page_sql, [*where, after, MEMBER_PAGE])
                rows = cursor.fetchall()
            if first and not rows:
                self._check_kind(key_hash, kind)
            first = False
            for row in rows:
                yield row[1:]
            if len(rows) < MEMBER_PAGE:
                return
            after = rows[-1][0]

    def _write_members_steps(
        self,
        key: Any,
        version: int | None,
        kind: str,
        members: Sequence[MemberRow],
        clause: str,
        clause_params: Sequence[Any] = (),
    ) -> Steps[list[Any]]:
        """Write members into the key's ``kind`` structure in one statement,
        creating the structure first if it is missing; returns ``(writes,
        format, number, score)`` of each member written (writes 1: a new
        member). More than MEMBER_BATCH members take one statement per batch,
        in one transaction, in Django's thread."""
        sql, _ = self._structures()
        if len(members) > MEMBER_BATCH:
            batches: list[Any] = yield InThread(
                self._write_batches, (key, version, kind, members, clause, clause_params)
            )
            return batches
        made_key = self.make_and_validate_key(key, version)
        key_bytes, key_hash = self._identify(made_key)
        text = sql.write_members(len(members), clause)
        # True once the structure is known to exist before a run: an empty
        # result is then the answer (a guard refused the write).
        known = False
        for _ in range(WRITE_ATTEMPTS):
            params = [*flatten(members), self._store_hash, key_hash, kind, time.time()]
            params.extend(clause_params)
            written = yield from self._into_structure_steps(Statement(text, params, True, True))
            rows: list[Any] = []
            if written is None:  # the structure went: make it again
                known = False
            else:
                rows = written[0]
            if rows or known:
                return list(rows)
            if (yield from self._check_kind_steps(key_hash, kind)) is None:
                yield from self._ensure_steps(key_bytes, key_hash, kind)
            known = True
        raise WrongTypeError(f"{kind} {key!r} kept disappearing while being written")

    def _into_structure_steps(self, request: Statement | Atomic) -> Steps[Result | None]:
        """Run a write that inserts members into a structure's live row; None
        if another process deleted that row between the INSERT's SELECT and
        its foreign key check (nothing was written: the caller looks again).
        Inside a transaction that is the caller's to retry (PostgreSQL has
        aborted it), as for any write conflict, so it is raised there."""
        try:
            result: Result = yield request
        except IntegrityError:
            if connections[self._structures()[1]].in_atomic_block:
                raise
            return None
        return result

    def _write_members(
        self,
        key: Any,
        version: int | None,
        kind: str,
        members: Sequence[MemberRow],
        clause: str,
        clause_params: Sequence[Any] = (),
    ) -> list[Any]:
        return self._drive(
            self._write_members_steps(key, version, kind, members, clause, clause_params)
        )

    def _write_batches(
        self,
        key: Any,
        version: int | None,
        kind: str,
        members: Sequence[MemberRow],
        clause: str,
        clause_params: Sequence[Any],
    ) -> list[Any]:
        # SQLite allows 500 terms in a compound SELECT, PostgreSQL 65,535
        # parameters in a statement.
        _, alias = self._structures()
        with transaction.atomic(using=alias):
            return [
                row
                for start in range(0, len(members), MEMBER_BATCH)
                for row in self._write_members(
                    key, version, kind, members[start : start + MEMBER_BATCH], clause, clause_params
                )
            ]

    def _delete_members_steps(
        self, key: Any, version: int | None, kind: str, hashes: Iterable[str]
    ) -> Steps[int]:
        """Delete members by hash; drop the structure if it is left empty."""
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, kind)
        members = list(hashes)
        text = sql.delete_in + sql.placeholders(len(members))
        return (yield from self._remove_steps(key_hash, kind, text, [*where, *members]))

    def _delete_members(
        self, key: Any, version: int | None, kind: str, hashes: Iterable[str]
    ) -> int:
        return self._drive(self._delete_members_steps(key, version, kind, hashes))

    def _remove_steps(
        self, key_hash: str, kind: str, text: str, params: Sequence[Any]
    ) -> Steps[int]:
        """Run a statement that deletes members; return how many it deleted.
        A structure left empty goes; nothing deleted is checked for WRONGTYPE."""
        _, deleted = yield Statement(text, params, False, True)
        if deleted:
            yield from self._drop_if_empty_steps(key_hash, kind)
        else:
            yield from self._check_kind_steps(key_hash, kind)
        return int(deleted)

    def _remove(self, key_hash: str, kind: str, text: str, params: Sequence[Any]) -> int:
        return self._drive(self._remove_steps(key_hash, kind, text, params))

    def _field_row(self, field: Any, value: Any) -> MemberRow:
        """A hash field and its value as member parameters."""
        member_format, payload, signature = _field(field)
        fmt, data, number, score = self._encode_value(value)
        return (
            member_hash((member_format, payload, signature)),
            member_format,
            payload,
            signature,
            fmt,
            data,
            number,
            score,
        )

    def _member_row(self, value: Any, score: float | None = None) -> MemberRow:
        """A set or sorted set member as member parameters."""
        stored = self._codec.encode_member(self._member_identity(), value)
        return (member_hash(stored), *stored, "", b"", None, score)

    def _member_hash(self, value: Any) -> str:
        return member_hash(self._codec.encode_member(self._member_identity(), value))

    def _encode_value(self, value: Any) -> tuple[str, bytes, int | None, float | None]:
        """A hash value: integers and floats as numbers (so hincrby and
        hincrbyfloat run in SQL), anything else as the cache stores values."""
        if type(value) is float:
            return FLOAT_FORMAT, b"", None, value
        fmt, data, number = self._codec.encode(self._member_identity(), value)
        return fmt, data, number, None

    def _decode_member(self, row: Sequence[Any]) -> Any:
        """The member (or hash field) of a row read with MEMBER_READ."""
        return self._codec.decode_member(self._member_identity(), row[0], row[1], row[2])

    def _decode_value(self, row: Sequence[Any]) -> Any:
        """The hash value of a row read with MEMBER_READ."""
        fmt, data, number, score = row[3], row[4], row[5], row[6]
        if fmt == FLOAT_FORMAT:
            return float(score)
        if fmt == INT_FORMAT:
            return int(number)
        return self._codec.decode(self._member_identity(), fmt, data, number)


def _field(field: Any) -> tuple[str, bytes, bytes]:
    """A hash field: a str, or what redis-py sends for an int, float or bytes
    field (its text)."""
    if isinstance(field, str):
        text = field
    elif isinstance(field, bytes):
        text = field.decode("utf-8", "surrogatepass")
    elif isinstance(field, int | float) and not isinstance(field, bool):
        text = repr(field)
    else:
        raise TypeError(f"hash fields are str, bytes, int or float, not {type(field).__name__}")
    return FIELD_FORMAT, text.encode("utf-8", "surrogatepass"), b""


def async_twins(*names: str) -> Callable[[type], type]:
    """Give a mixin ``a<name>`` coroutines for its methods ``names``: the
    method's steps driven in the event loop where the alias has a native
    driver (:func:`~.steps.command`), else the method run in Django's thread
    for the database (the same connection and transaction as the sync
    methods)."""

    def decorate(cls: type) -> type:
        for name in names:
            setattr(cls, f"a{name}", _async_twin(getattr(cls, name)))
        return cls

    return decorate


def _async_twin(method: _F) -> _F:
    body = getattr(method, "steps", None)

    @wraps(method)
    async def twin(self: Any, *args: Any, **kwargs: Any) -> Any:
        driver = self._native() if body is not None else None
        if body is None or driver is None:
            return await sync_to_async(method, thread_sensitive=True)(self, *args, **kwargs)
        return await adrive(driver, body(self, *args, **kwargs))

    twin.__name__ = twin.__qualname__ = f"a{method.__name__}"
    twin.__doc__ = f"Async :meth:`{method.__name__}`."
    return twin  # type: ignore[return-value]


__all__ = ["MEMBER_READ", "MemberRow", "StructureCommands", "async_twins"]
