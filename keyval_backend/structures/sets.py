"""Sets: ``sadd``, ``smembers``, ``spop``, ``sinter``, ... (Redis's set commands).

A set is its key's row (format ``set``) and one member row per member. Members
are any value the cache stores, compared by their stored form (integers as
their digits, anything else serialized), as Redis compares bytes.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from django.db import transaction

from .. import db
from ..codec import member_hash
from ..exceptions import WrongTypeError
from ..patterns import compile_glob
from .base import WRITE_ATTEMPTS, MemberRow, StructureCommands, async_twins
from .steps import Atomic, InThread, Statement, Steps, command

SET = "set"


@async_twins(
    "sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop", "srandmember",
    "smove", "sdiff", "sinter", "sunion", "sdiffstore", "sinterstore", "sunionstore", "sscan",
)  # fmt: skip
class SetCommands(StructureCommands):
    @command
    def sadd(self, key: Any, *values: Any, version: int | None = None) -> Steps[int]:
        """Add members; return how many were new."""
        if not values:
            raise ValueError("sadd needs at least one member")
        rows = list({row[0]: row for row in map(self._member_row, values)}.values())
        sql, _ = self._structures()
        written = yield from self._write_members_steps(key, version, SET, rows, sql.keep_existing)
        return sum(1 for row in written if row[0] == 1)

    @command
    def srem(self, key: Any, *members: Any, version: int | None = None) -> Steps[int]:
        """Remove members; return how many were there. The set goes when its
        last member does."""
        if not members:
            raise ValueError("srem needs at least one member")
        hashes = list({self._member_hash(member): None for member in members})
        return (yield from self._delete_members_steps(key, version, SET, hashes))

    @command
    def smembers(self, key: Any, version: int | None = None) -> Steps[set[Any]]:
        rows = yield from self._all_members_steps(key, version, SET)
        return {self._decode_member(row) for row in rows}

    @command
    def sismember(self, key: Any, member: Any, version: int | None = None) -> Steps[bool]:
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, SET)
        rows = yield from self._read_steps(
            key_hash, SET, sql.member_sql, [*where, self._member_hash(member)]
        )
        return bool(rows)

    @command
    def smismember(self, key: Any, *members: Any, version: int | None = None) -> Steps[list[bool]]:
        if len(members) == 1 and isinstance(members[0], list | tuple):
            members = tuple(members[0])
        if not members:
            raise ValueError("smismember needs at least one member")
        hashes = [self._member_hash(member) for member in members]
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, SET)
        text = sql.hashes_in + sql.placeholders(len(set(hashes)))
        rows = yield from self._read_steps(key_hash, SET, text, [*where, *set(hashes)])
        found = {row[0] for row in rows}
        return [h in found for h in hashes]

    @command
    def scard(self, key: Any, version: int | None = None) -> Steps[int]:
        return (yield from self._count_steps(key, version, SET))

    @command
    def spop(self, key: Any, count: int | None = None, version: int | None = None) -> Steps[Any]:
        """Remove and return a random member (None if the set is empty), or
        a set of up to ``count`` members. Of several processes popping, each
        member goes to exactly one."""
        wanted = 1 if count is None else _non_negative(count, "spop")
        popped = (yield from self._random(key, version, wanted, remove=True)) if wanted else []
        members = [self._decode_member(row) for row in popped]
        if count is None:
            return members[0] if members else None
        return set(members)

    @command
    def srandmember(
        self, key: Any, count: int | None = None, version: int | None = None
    ) -> Steps[Any]:
        """A random member (None if empty); with ``count``, a list of up to
        ``count`` distinct members, or of ``-count`` members that may repeat."""
        if count is None:
            rows = yield from self._random(key, version, 1, remove=False)
            return self._decode_member(rows[0]) if rows else None
        if type(count) is not int:
            raise TypeError(f"count is an int, not {type(count).__name__}")
        rows = yield from self._random(key, version, abs(count), remove=False)
        members = [self._decode_member(row) for row in rows]
        if count >= 0:
            return members
        return [random.choice(members) for _ in range(-count)] if members else []

    def _random(self, key: Any, version: int | None, count: int, remove: bool) -> Steps[list[Any]]:
        """Up to ``count`` member rows from a random point of the member hash
        order (wrapping round), read or deleted in one statement each."""
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, SET)
        start = secrets.token_hex(16)
        rows: list[Any] = []
        for low in (start, ""):
            if len(rows) >= count:
                break
            if remove:
                popped, _ = yield Statement(
                    sql.pop_sql["random"], [*where, low, count - len(rows)], True, True
                )
                rows.extend(popped)
            else:
                found, _ = yield Statement(sql.random_sql, [*where, low, count])
                seen = {row[0] for row in rows}
                rows.extend(row for row in found if row[0] not in seen)
                rows = rows[:count]
        if not remove:
            rows = [row[1:] for row in rows]
        if remove and rows:
            yield from self._drop_if_empty_steps(key_hash, SET)
        elif not rows:
            yield from self._check_kind_steps(key_hash, SET)
        return rows

    @command
    def smove(
        self, source: Any, destination: Any, member: Any, version: int | None = None
    ) -> Steps[bool]:
        """Move ``member`` from ``source`` to ``destination`` atomically; False
        if ``source`` does not have it. As in Redis, a missing source is
        False before any type is checked. The move is one transaction of two
        fixed statements (copied in while the source has it, deleted out once
        the destination has it), so it runs natively too; a destination it
        had to create and then did not fill is dropped again."""
        sql, _ = self._structures()
        source_hash = self._key_hash(source, version)
        if (yield from self._check_kind_steps(source_hash, SET)) is None:
            return False
        dest_bytes, dest_hash = self._identify(self.make_and_validate_key(destination, version))
        yield from self._check_kind_steps(dest_hash, SET)
        row = self._member_row(member)
        for _ in range(WRITE_ATTEMPTS):
            now = time.time()
            in_source = [self._store_hash, source_hash, SET, now, row[0]]
            if not (yield from self._read_steps(source_hash, SET, sql.member_sql, in_source)):
                return False
            if source_hash == dest_hash:
                return True
            _, created = yield from self._ensure_steps(dest_bytes, dest_hash, SET)
            dest_where = [self._store_hash, dest_hash, SET, now]
            moves = (
                Statement(sql.move_in_sql, [*row, *dest_where, *in_source], False, True),
                Statement(sql.move_out_sql, [*in_source, *dest_where, row[0]], False, True),
            )
            written = yield from self._into_structure_steps(Atomic(moves))
            if written is not None and written[1]:
                yield from self._drop_if_empty_steps(source_hash, SET)
                return True
            if created:
                yield from self._drop_if_empty_steps(dest_hash, SET)
            # Moved away by another process meanwhile, or the destination was
            # deleted before the member reached it: look again.
        raise WrongTypeError(f"set {destination!r} kept disappearing while being written")

    # -- set algebra ------------------------------------------------------------

    def _rows_of_steps(self, key: Any, version: int | None) -> Steps[dict[str, MemberRow]]:
        """Every member of a set as member parameters, by member hash."""
        rows = yield from self._all_members_steps(key, version, SET)
        return {
            _hash_of(row): (
                _hash_of(row),
                row[0],
                bytes(row[1]),
                bytes(row[2]),
                "",
                b"",
                None,
                None,
            )
            for row in rows
        }

    def _combine_steps(
        self,
        keys: tuple[Any, ...],
        version: int | None,
        op: Callable[[set[str], set[str]], set[str]],
    ) -> Steps[dict[str, MemberRow]]:
        if not keys:
            raise ValueError("at least one key is needed")
        result = yield from self._rows_of_steps(keys[0], version)
        chosen = set(result)
        for other in keys[1:]:
            rows = yield from self._rows_of_steps(other, version)
            result.update(rows)
            chosen = op(chosen, set(rows))
        return {h: result[h] for h in chosen}

    @command
    def sdiff(self, *keys: Any, version: int | None = None) -> Steps[set[Any]]:
        return self._decoded((yield from self._combine_steps(keys, version, set.difference)))

    @command
    def sinter(self, *keys: Any, version: int | None = None) -> Steps[set[Any]]:
        return self._decoded((yield from self._combine_steps(keys, version, set.intersection)))

    @command
    def sunion(self, *keys: Any, version: int | None = None) -> Steps[set[Any]]:
        return self._decoded((yield from self._combine_steps(keys, version, set.union)))

    @command
    def sdiffstore(
        self,
        dest: Any,
        *keys: Any,
        version_dest: int | None = None,
        version_keys: int | None = None,
    ) -> Steps[int]:
        rows = yield from self._combine_steps(keys, version_keys, set.difference)
        return (yield InThread(self._store_result, (dest, version_dest, rows)))  # type: ignore[no-any-return]

    @command
    def sinterstore(self, dest: Any, *keys: Any, version: int | None = None) -> Steps[int]:
        rows = yield from self._combine_steps(keys, version, set.intersection)
        return (yield InThread(self._store_result, (dest, version, rows)))  # type: ignore[no-any-return]

    @command
    def sunionstore(self, destination: Any, *keys: Any, version: int | None = None) -> Steps[int]:
        rows = yield from self._combine_steps(keys, version, set.union)
        return (yield InThread(self._store_result, (destination, version, rows)))  # type: ignore[no-any-return]

    def _decoded(self, rows: dict[str, MemberRow]) -> set[Any]:
        return {self._decode_member(row[1:4]) for row in rows.values()}

    def _store_result(self, dest: Any, version: int | None, rows: dict[str, MemberRow]) -> int:
        """Replace ``dest`` (whatever it held) with a set of ``rows``, in one
        transaction; an empty result leaves no key, as in Redis."""
        sql, alias = self._structures()
        dest_hash = self._key_hash(dest, version)
        with transaction.atomic(using=alias):
            with db.cursor(alias) as cursor:
                cursor.execute(sql.drop_key_sql, (self._store_hash, dest_hash))
            members = list(rows.values())
            if members:
                self._write_members(dest, version, SET, members, sql.keep_existing)
            self._near_written((dest_hash,))
        return len(members)

    # -- scanning ------------------------------------------------------------------

    def sscan_iter(
        self, key: Any, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> Iterator[Any]:
        """Every member (that is a str matching the glob ``match``, if given),
        read a page at a time."""
        matches = _matcher(match)
        for row in self._member_pages(key, version, SET):
            member = self._decode_member(row)
            if matches(member):
                yield member

    async def asscan_iter(
        self, key: Any, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> AsyncIterator[Any]:
        """Async :meth:`sscan_iter` (the members are read before the first
        one is yielded)."""
        for member in await self.asscan(key, match, count, version):  # type: ignore[attr-defined]
            yield member

    @command
    def sscan(
        self, key: Any, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> Steps[set[Any]]:
        matches = _matcher(match)
        rows = yield from self._all_members_steps(key, version, SET)
        return {member for member in map(self._decode_member, rows) if matches(member)}


def _matcher(match: str | None) -> Callable[[Any], bool]:
    """Whether a member is kept by the scan: every member without ``match``,
    else a str that matches the glob."""
    if match is None:
        return lambda member: True
    regex = compile_glob(match)[1]
    return lambda member: isinstance(member, str) and regex.fullmatch(member) is not None


def _hash_of(row: Any) -> str:
    return member_hash((row[0], bytes(row[1]), bytes(row[2])))


def _non_negative(count: Any, name: str) -> int:
    if type(count) is not int:
        raise TypeError(f"count is an int, not {type(count).__name__}")
    if count < 0:
        raise ValueError(f"{name} count must be positive, not {count}")
    return count


__all__ = ["SetCommands"]
