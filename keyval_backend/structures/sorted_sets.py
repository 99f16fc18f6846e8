"""Sorted sets: ``zadd``, ``zrange``, ``zrank``, ``zpopmin``, ... (Redis's
sorted set commands).

A sorted set is its key's row (format ``zset``) and one member row per member
with its score; members order by score, then by their stored bytes, and the
``(structure, score)`` index serves ranges by rank and by score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction

from ..sql.structures import score_in, score_out
from .base import StructureCommands, async_twins
from .steps import InThread, Statement, Steps, command

ZSET = "zset"
INF = float("inf")
# LIMIT of a range with no upper end.
_ALL = 2**62


@async_twins(
    "zadd", "zrem", "zscore", "zincrby", "zcard", "zcount", "zrange", "zrevrange",
    "zrangebyscore", "zrevrangebyscore", "zrank", "zrevrank", "zpopmin", "zpopmax",
    "zremrangebyscore",
)  # fmt: skip
class SortedSetCommands(StructureCommands):
    @command
    def zadd(
        self,
        key: Any,
        mapping: Mapping[Any, float],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
        gt: bool = False,
        lt: bool = False,
        version: int | None = None,
    ) -> Steps[Any]:
        """Add members with scores (Redis's ZADD and its flags): the number of
        new members (with ``ch``, of new and changed ones), or with ``incr``
        the member's new score (None if a flag kept it from changing)."""
        if not mapping:
            raise ValueError("zadd needs at least one member and score")
        if nx and xx:
            raise ValueError("ZADD allows either 'nx' or 'xx', not both")
        if incr and len(mapping) != 1:
            raise ValueError(
                "ZADD option 'incr' only works when passing a single element/score pair"
            )
        if (nx and (gt or lt)) or (gt and lt):
            raise ValueError("Only one of 'nx', 'lt', or 'gt' may be defined.")
        scores = {}
        for member, score in mapping.items():
            row = self._member_row(member, self._score_in(_score(score)))
            scores[row[0]] = row
        rows = list(scores.values())
        sql, _ = self._structures()
        if incr and not (nx or xx or gt or lt):
            member, amount = next(iter(mapping.items()))
            return (yield from self._zincrby_steps(key, amount, member, version))
        if not (nx or xx or gt or lt or ch or incr):
            written = yield from self._write_members_steps(key, version, ZSET, rows, sql.set_score)
            return sum(1 for row in written if row[0] == 1)
        # Several statements in one transaction: in Django's thread.
        flagged = (key, version, rows, nx, xx, ch, incr, gt, lt)
        return (yield InThread(self._zadd_with_flags, flagged))

    def _zadd_with_flags(
        self, key: Any, version: int | None, rows: list[Any],
        nx: bool, xx: bool, ch: bool, incr: bool, gt: bool, lt: bool,
    ) -> Any:  # fmt: skip
        """ZADD's conditional forms: the current scores of the members
        concerned are read (locked where the database can) and only the
        members the flags allow are written, in one transaction."""
        sql, alias = self._structures()
        key_hash, where = self._where(key, version, ZSET)
        text = sql.hashes_in + sql.placeholders(len(rows))
        if sql.lock_row_sql is not None:
            text += " FOR UPDATE"
        with transaction.atomic(using=alias):
            current = {
                row[0]: self._score_out(row[7])
                for row in self._read(key_hash, ZSET, text, [*where, *[r[0] for r in rows]])
            }
            writes, added, changed = [], 0, 0
            result, applied = None, False
            for row in rows:
                old = current.get(row[0])
                new = self._score_out(row[7])
                if incr and old is not None:
                    new += old
                if old is None:
                    if xx:
                        continue
                    added += 1
                elif nx or (gt and new <= old) or (lt and new >= old):
                    continue
                elif new == old:
                    result, applied = new, True
                    continue
                else:
                    changed += 1
                result, applied = new, True
                writes.append((*row[:7], self._score_in(new)))
            if writes:
                self._write_members(key, version, ZSET, writes, sql.set_score)
        if incr:
            return result if applied else None
        return added + changed if ch else added

    @command
    def zincrby(
        self, key: Any, amount: float, value: Any, version: int | None = None
    ) -> Steps[float]:
        """Add ``amount`` to the member's score (a new member starts at 0), in
        one statement; return the new score."""
        return (yield from self._zincrby_steps(key, amount, value, version))

    def _zincrby_steps(
        self, key: Any, amount: float, value: Any, version: int | None
    ) -> Steps[float]:
        sql, _ = self._structures()
        row = self._member_row(value, self._score_in(_score(amount)))
        written = yield from self._write_members_steps(key, version, ZSET, [row], sql.add_score)
        return self._score_out(written[0][3])

    @command
    def zrem(self, key: Any, *values: Any, version: int | None = None) -> Steps[int]:
        if not values:
            raise ValueError("zrem needs at least one member")
        hashes = list({self._member_hash(v): None for v in values})
        return (yield from self._delete_members_steps(key, version, ZSET, hashes))

    @command
    def zscore(self, key: Any, value: Any, version: int | None = None) -> Steps[float | None]:
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, ZSET)
        rows = yield from self._read_steps(
            key_hash, ZSET, sql.member_sql, [*where, self._member_hash(value)]
        )
        return self._score_out(rows[0][6]) if rows else None

    @command
    def zcard(self, key: Any, version: int | None = None) -> Steps[int]:
        return (yield from self._count_steps(key, version, ZSET))

    @command
    def zcount(self, key: Any, min: Any, max: Any, version: int | None = None) -> Steps[int]:
        sql, _ = self._structures()
        bounds, params = sql.score_bounds(_bound(min), _bound(max))
        key_hash, where = self._where(key, version, ZSET)
        text = sql.score_count_sql.format(bounds=bounds)
        rows = yield from self._read_steps(key_hash, ZSET, text, [*where, *params])
        count = int(rows[0][0])
        if not count:
            yield from self._check_kind_steps(key_hash, ZSET)
        return count

    def _score_in(self, score: float) -> float:
        return score_in(self._structures()[0].finite_scores, score)

    def _score_out(self, score: float) -> float:
        return score_out(self._structures()[0].finite_scores, score)

    # -- ranges ---------------------------------------------------------------------

    @command
    def zrange(
        self,
        key: Any,
        start: int,
        end: int,
        desc: bool = False,
        withscores: bool = False,
        score_cast_func: Callable[[float], Any] = float,
        version: int | None = None,
    ) -> Steps[list[Any]]:
        """Members from rank ``start`` to ``end`` inclusive (negative ranks
        count from the end), lowest score first unless ``desc``."""
        return (yield from self._range(key, start, end, desc, withscores, score_cast_func, version))

    def _range(
        self, key: Any, start: int, end: int, desc: bool, withscores: bool,
        score_cast_func: Callable[[float], Any], version: int | None,
    ) -> Steps[list[Any]]:  # fmt: skip
        if type(start) is not int or type(end) is not int:
            raise TypeError("zrange's start and end are ints")
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, ZSET)
        if start < 0 or end < 0:
            size = yield from self._count_steps(key, version, ZSET)
            start = max(start + size, 0) if start < 0 else start
            end = end + size if end < 0 else end
        if end < start:
            yield from self._check_kind_steps(key_hash, ZSET)
            return []
        rows = yield from self._read_steps(
            key_hash, ZSET, sql.range_sql[desc], [*where, end - start + 1, start]
        )
        return self._ranked(rows, withscores, score_cast_func)

    @command
    def zrevrange(
        self,
        key: Any,
        start: int,
        end: int,
        withscores: bool = False,
        score_cast_func: Callable[[float], Any] = float,
        version: int | None = None,
    ) -> Steps[list[Any]]:
        return (yield from self._range(key, start, end, True, withscores, score_cast_func, version))

    @command
    def zrangebyscore(
        self,
        key: Any,
        min: Any,
        max: Any,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Callable[[float], Any] = float,
        version: int | None = None,
    ) -> Steps[list[Any]]:
        """Members with scores from ``min`` to ``max`` (numbers, ``"-inf"``,
        ``"+inf"``, ``"(x"`` for exclusive), lowest first; ``start``/``num``
        page the result."""
        return (
            yield from self._by_score(
                key, min, max, start, num, withscores, score_cast_func, version, False
            )
        )

    @command
    def zrevrangebyscore(
        self,
        key: Any,
        max: Any,
        min: Any,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Callable[[float], Any] = float,
        version: int | None = None,
    ) -> Steps[list[Any]]:
        return (
            yield from self._by_score(
                key, min, max, start, num, withscores, score_cast_func, version, True
            )
        )

    def _by_score(
        self, key: Any, min: Any, max: Any, start: int | None, num: int | None,
        withscores: bool, score_cast_func: Callable[[float], Any], version: int | None, desc: bool,
    ) -> Steps[list[Any]]:  # fmt: skip
        if (start is None) != (num is None):
            raise ValueError("``start`` and ``num`` must both be specified")
        sql, _ = self._structures()
        bounds, params = sql.score_bounds(_bound(min), _bound(max))
        key_hash, where = self._where(key, version, ZSET)
        limit = _ALL if num is None or num < 0 else num
        text = sql.score_range_sql.format(bounds=bounds, order=sql.order[desc])
        rows = yield from self._read_steps(
            key_hash, ZSET, text, [*where, *params, limit, start or 0]
        )
        return self._ranked(rows, withscores, score_cast_func)

    def _ranked(self, rows: list[Any], withscores: bool, cast: Callable[[float], Any]) -> list[Any]:
        if withscores:
            return [(self._decode_member(row), cast(self._score_out(row[6]))) for row in rows]
        return [self._decode_member(row) for row in rows]

    @command
    def zrank(
        self, key: Any, value: Any, withscore: bool = False, version: int | None = None
    ) -> Steps[Any]:
        """The member's rank, lowest score first (None if absent); with
        ``withscore``, ``[rank, score]``."""
        return (yield from self._rank(key, value, withscore, version, False))

    @command
    def zrevrank(
        self, key: Any, value: Any, withscore: bool = False, version: int | None = None
    ) -> Steps[Any]:
        return (yield from self._rank(key, value, withscore, version, True))

    def _rank(
        self, key: Any, value: Any, withscore: bool, version: int | None, desc: bool
    ) -> Steps[Any]:
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, ZSET)
        rows = yield from self._read_steps(
            key_hash, ZSET, sql.rank_sql[desc], [*where, self._member_hash(value)]
        )
        if not rows:
            return None
        score, rank = rows[0]
        return [int(rank), self._score_out(score)] if withscore else int(rank)

    # -- removals ---------------------------------------------------------------

    @command
    def zpopmin(self, key: Any, count: int | None = None, version: int | None = None) -> Steps[Any]:
        """Remove and return the member with the lowest score as
        ``(member, score)`` (None if empty), or a list of up to ``count``."""
        return (yield from self._pop(key, count, version, False))

    @command
    def zpopmax(self, key: Any, count: int | None = None, version: int | None = None) -> Steps[Any]:
        return (yield from self._pop(key, count, version, True))

    def _pop(self, key: Any, count: int | None, version: int | None, desc: bool) -> Steps[Any]:
        if count is not None and (type(count) is not int or count < 0):
            raise ValueError(f"count must be a positive int, not {count!r}")
        sql, _ = self._structures()
        key_hash, where = self._where(key, version, ZSET)
        wanted = 1 if count is None else count
        rows: list[Any] = []
        if wanted:
            popped, _ = yield Statement(sql.pop_sql[desc], [*where, wanted], True, True)
            rows = list(popped)
        if rows:
            yield from self._drop_if_empty_steps(key_hash, ZSET)
        else:
            yield from self._check_kind_steps(key_hash, ZSET)
        rows.sort(key=lambda row: (row[6], bytes(row[1])), reverse=desc)
        popped = [(self._decode_member(row), self._score_out(row[6])) for row in rows]
        if count is None:
            return popped[0] if popped else None
        return popped

    @command
    def zremrangebyscore(
        self, key: Any, min: Any, max: Any, version: int | None = None
    ) -> Steps[int]:
        sql, _ = self._structures()
        bounds, params = sql.score_bounds(_bound(min), _bound(max), qualified=False)
        key_hash, where = self._where(key, version, ZSET)
        text = sql.delete_scores_sql.format(bounds=bounds)
        return (yield from self._remove_steps(key_hash, ZSET, text, [*where, *params]))


def _score(value: Any) -> float:
    """A member's score: a number that is not NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"score is not a valid float: {value!r}") from None
    score = float(value)
    if math.isnan(score):
        raise ValueError("score is not a valid float: nan")
    return score


def _bound(value: Any) -> tuple[float, bool]:
    """A score bound of Redis: a number, ``"-inf"``/``"+inf"``, or
    ``"(x"`` for an exclusive one; ``(value, exclusive)``."""
    if isinstance(value, str | bytes):
        text = value.decode() if isinstance(value, bytes) else value
        exclusive = text.startswith("(")
        body = text[1:] if exclusive else text
        lowered = body.strip().lower()
        if lowered in {"-inf", "-infinity"}:
            return -INF, exclusive
        if lowered in {"+inf", "inf", "+infinity", "infinity"}:
            return INF, exclusive
        try:
            return float(body), exclusive
        except ValueError:
            raise ValueError(f"min or max is not a float: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"min or max is a number or a str, not {type(value).__name__}")
    return float(value), False


__all__ = ["SortedSetCommands"]
