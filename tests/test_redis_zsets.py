"""Sorted sets, with django-redis 7's SortedSetMixin signatures: zadd and
its flags, scores and score bounds, ranges and ranks (negative from the
end), pops and removals."""

from __future__ import annotations

from typing import Any

import pytest

from .redis_reference import WrongType, ours_only

SCORES = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0}
NO_WITHSCORE = "ZRANK WITHSCORE needs Redis 7.2; the reference server is 7.0"


@pytest.fixture
def five(rcache: Any) -> Any:
    rcache.zadd("z", SCORES)
    return rcache


# -- zadd ---------------------------------------------------------------------------


def test_zadd_counts_new_members(rcache: Any) -> None:
    added = rcache.zadd("z", {"a": 1.0, "b": 2.0})
    assert added == 2
    assert type(added) is int
    assert rcache.zadd("z", {"a": 10.0, "c": 3.0}) == 1
    assert rcache.zscore("z", "a") == 10.0
    assert rcache.zcard("z") == 3


def test_zadd_ch_counts_changed_members(rcache: Any) -> None:
    rcache.zadd("z", {"a": 1.0, "b": 2.0})
    assert rcache.zadd("z", {"a": 1.5, "b": 2.0, "c": 3.0}, ch=True) == 2
    assert rcache.zadd("z", {"a": 1.5}, ch=True) == 0


def test_zadd_nx_only_adds(rcache: Any) -> None:
    rcache.zadd("z", {"a": 1.0})
    assert rcache.zadd("z", {"a": 20.0, "b": 2.0}, nx=True) == 1
    assert rcache.zscore("z", "a") == 1.0
    assert rcache.zscore("z", "b") == 2.0


def test_zadd_xx_only_updates(rcache: Any) -> None:
    rcache.zadd("z", {"a": 1.0})
    assert rcache.zadd("z", {"a": 5.0, "b": 2.0}, xx=True) == 0
    assert rcache.zscore("z", "a") == 5.0
    assert rcache.zscore("z", "b") is None
    assert rcache.zadd("z", {"a": 6.0}, xx=True, ch=True) == 1
    assert rcache.zadd("missing", {"a": 1.0}, xx=True) == 0
    assert rcache.has_key("missing") is False


def test_zadd_gt_only_raises_scores(rcache: Any) -> None:
    rcache.zadd("z", {"a": 5.0, "b": 5.0})
    assert rcache.zadd("z", {"a": 3.0, "b": 7.0, "c": 1.0}, gt=True) == 1
    assert rcache.zscore("z", "a") == 5.0
    assert rcache.zscore("z", "b") == 7.0
    assert rcache.zscore("z", "c") == 1.0
    assert rcache.zadd("z", {"a": 4.0, "b": 8.0}, gt=True, ch=True) == 1


def test_zadd_lt_only_lowers_scores(rcache: Any) -> None:
    rcache.zadd("z", {"a": 5.0, "b": 5.0})
    assert rcache.zadd("z", {"a": 3.0, "b": 7.0}, lt=True, ch=True) == 1
    assert rcache.zscore("z", "a") == 3.0
    assert rcache.zscore("z", "b") == 5.0


def test_zadd_gt_with_xx_adds_nothing(rcache: Any) -> None:
    rcache.zadd("z", {"a": 5.0})
    assert rcache.zadd("z", {"a": 6.0, "b": 1.0}, gt=True, xx=True, ch=True) == 1
    assert rcache.zscore("z", "b") is None


def test_zadd_incr(rcache: Any) -> None:
    score = rcache.zadd("z", {"a": 2.5}, incr=True)
    assert score == 2.5
    assert type(score) is float
    assert rcache.zadd("z", {"a": 1.0}, incr=True) == 3.5
    assert rcache.zadd("z", {"a": 1.0}, incr=True, nx=True) is None
    assert rcache.zadd("z", {"b": 1.0}, incr=True, xx=True) is None
    assert rcache.zscore("z", "b") is None
    assert rcache.zadd("z", {"a": -10.0}, incr=True, gt=True) is None
    assert rcache.zscore("z", "a") == 3.5


def test_zadd_int_scores_are_floats(rcache: Any) -> None:
    rcache.zadd("z", {"a": 3})
    score = rcache.zscore("z", "a")
    assert score == 3.0
    assert type(score) is float


def test_zscore(five: Any) -> None:
    assert five.zscore("z", "c") == 3.0
    assert five.zscore("z", "missing") is None
    assert five.zscore("missing", "a") is None


def test_zincrby(rcache: Any) -> None:
    rcache.zadd("z", {"a": 100.0})
    score = rcache.zincrby("z", 50.0, "a")
    assert score == 150.0
    assert type(score) is float
    assert rcache.zincrby("z", -0.5, "a") == 149.5
    assert rcache.zincrby("z", 25, "new") == 25.0
    assert rcache.zincrby("fresh", 1.0, "m") == 1.0
    assert rcache.zcard("fresh") == 1


def test_zcard(five: Any) -> None:
    assert five.zcard("z") == 5
    assert five.zcard("missing") == 0


def test_infinite_and_negative_scores(rcache: Any) -> None:
    rcache.zadd("z", {"top": float("inf"), "bottom": float("-inf"), "cold": -10.0, "zero": 0.0})
    assert rcache.zscore("z", "top") == float("inf")
    assert rcache.zrange("z", 0, -1) == ["bottom", "cold", "zero", "top"]
    assert rcache.zcount("z", "-inf", "+inf") == 4
    assert rcache.zcount("z", "(-inf", "(+inf") == 2


def test_float_scores_keep_their_precision(rcache: Any) -> None:
    rcache.zadd("z", {"a": 1.1, "b": 1.2, "c": 1.15, "d": 0.1 + 0.2})
    assert rcache.zrange("z", 0, -1, withscores=True) == [
        ("d", 0.1 + 0.2),
        ("a", 1.1),
        ("c", 1.15),
        ("b", 1.2),
    ]


def test_equal_scores_order_by_member(rcache: Any) -> None:
    rcache.zadd("z", {"c": 1.0, "a": 1.0, "b": 1.0, "z": 0.0})
    assert rcache.zrange("z", 0, -1) == ["z", "a", "b", "c"]
    assert rcache.zrevrange("z", 0, -1) == ["c", "b", "a", "z"]
    assert rcache.zrangebyscore("z", 1, 1) == ["a", "b", "c"]
    assert rcache.zrank("z", "b") == 2


def test_members_of_other_types(rcache: Any) -> None:
    rcache.zadd("z", {7: 1.0, "seven": 2.0, 7.5: 3.0, None: 4.0})
    assert rcache.zrange("z", 0, -1) == [7, "seven", 7.5, None]
    assert type(rcache.zrange("z", 0, 0)[0]) is int
    assert rcache.zscore("z", 7) == 1.0
    assert rcache.zscore("z", "7") is None
    assert rcache.zrank("z", None) == 3


@pytest.mark.pickle_only("a tuple member: JSON gives it back as a list")
def test_tuple_members(rcache: Any) -> None:
    rcache.zadd("z", {("tuple", "key"): 1.0, "string": 2.0})
    assert rcache.zrange("z", 0, -1) == [("tuple", "key"), "string"]


# -- ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, -1, ["a", "b", "c", "d", "e"]),
        (0, 1, ["a", "b"]),
        (1, 3, ["b", "c", "d"]),
        (-2, -1, ["d", "e"]),
        (-1, -1, ["e"]),
        (-100, 1, ["a", "b"]),
        (3, 100, ["d", "e"]),
        (3, 2, []),
        (5, 10, []),
        (-1, -2, []),
        (0, -6, []),
        (0, 0, ["a"]),
    ],
)
def test_zrange_by_rank(five: Any, start: int, end: int, expected: list) -> None:
    assert five.zrange("z", start, end) == expected
    assert (
        five.zrange("z", start, end, desc=True)
        == list(reversed(SCORES))[slice(*_python_range(start, end))]
    )
    assert (
        five.zrevrange("z", start, end) == list(reversed(SCORES))[slice(*_python_range(start, end))]
    )


def _python_range(start: int, end: int, size: int = 5) -> tuple[int, int]:
    """Redis's inclusive, clamped rank range as a slice of a list of ``size``."""
    start = max(start + size if start < 0 else start, 0)
    end = end + size if end < 0 else end
    return start, max(min(end, size - 1) + 1, start)


def test_zrange_withscores(five: Any) -> None:
    assert five.zrange("z", 0, 1, withscores=True) == [("a", 1.0), ("b", 2.0)]
    assert five.zrange("z", 0, 1, desc=True, withscores=True) == [("e", 5.0), ("d", 4.0)]
    assert five.zrevrange("z", -1, -1, withscores=True) == [("a", 1.0)]


def test_score_cast_func(five: Any) -> None:
    scored = five.zrange("z", 0, 1, withscores=True, score_cast_func=int)
    assert scored == [("a", 1), ("b", 2)]
    assert all(type(score) is int for _, score in scored)
    assert five.zrevrange("z", 0, 0, withscores=True, score_cast_func=int) == [("e", 5)]
    assert five.zrangebyscore("z", 2, 3, withscores=True, score_cast_func=int) == [
        ("b", 2),
        ("c", 3),
    ]


def test_zrange_of_a_missing_key(rcache: Any) -> None:
    assert rcache.zrange("missing", 0, -1) == []
    assert rcache.zrevrange("missing", 0, -1, withscores=True) == []
    assert rcache.zrangebyscore("missing", "-inf", "+inf") == []


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (2, 4, ["b", "c", "d"]),
        (2.0, 4.0, ["b", "c", "d"]),
        ("2", "4", ["b", "c", "d"]),
        ("(2", 4, ["c", "d"]),
        (2, "(4", ["b", "c"]),
        ("(2", "(4", ["c"]),
        ("(2", "(3", []),
        ("-inf", 2, ["a", "b"]),
        ("-inf", "+inf", ["a", "b", "c", "d", "e"]),
        ("-inf", "inf", ["a", "b", "c", "d", "e"]),
        (float("-inf"), float("inf"), ["a", "b", "c", "d", "e"]),
        ("(4", "+inf", ["e"]),
        (4.5, 100, ["e"]),
        (3, 3, ["c"]),
        (4, 2, []),
        (10, 20, []),
        ("(1.5", "(2.5", ["b"]),
    ],
)
def test_score_bounds(five: Any, low: Any, high: Any, expected: list) -> None:
    assert five.zrangebyscore("z", low, high) == expected
    assert five.zrevrangebyscore("z", high, low) == list(reversed(expected))
    assert five.zcount("z", low, high) == len(expected)


def test_zrangebyscore_withscores(five: Any) -> None:
    assert five.zrangebyscore("z", 1, 2, withscores=True) == [("a", 1.0), ("b", 2.0)]
    assert five.zrevrangebyscore("z", 5, "(3", withscores=True) == [("e", 5.0), ("d", 4.0)]


def test_zrangebyscore_pages(five: Any) -> None:
    assert five.zrangebyscore("z", "-inf", "+inf", start=1, num=2) == ["b", "c"]
    assert five.zrangebyscore("z", 2, 5, start=0, num=1) == ["b"]
    assert five.zrangebyscore("z", 2, 5, start=2, num=10) == ["d", "e"]
    assert five.zrangebyscore("z", 2, 5, start=10, num=2) == []
    assert five.zrangebyscore("z", 2, 5, start=1, num=-1) == ["c", "d", "e"]
    assert five.zrevrangebyscore("z", "+inf", "-inf", start=1, num=2) == ["d", "c"]
    assert five.zrevrangebyscore("z", 4, 1, start=1, num=2, withscores=True) == [
        ("c", 3.0),
        ("b", 2.0),
    ]


def test_zcount(five: Any) -> None:
    count = five.zcount("z", 2.0, 4.0)
    assert count == 3
    assert type(count) is int
    assert five.zcount("missing", "-inf", "+inf") == 0


# -- ranks ---------------------------------------------------------------------------


def test_zrank(five: Any) -> None:
    assert five.zrank("z", "a") == 0
    assert five.zrank("z", "c") == 2
    assert five.zrank("z", "e") == 4
    assert five.zrank("z", "missing") is None
    assert five.zrank("missing", "a") is None


@ours_only("django-redis 7's SortedSetMixin has no zrevrank")
def test_zrevrank(five: Any) -> None:
    assert five.zrevrank("z", "e") == 0
    assert five.zrevrank("z", "a") == 4
    assert five.zrevrank("z", "missing") is None
    assert five.zrevrank("missing", "a") is None


@ours_only(NO_WITHSCORE)
def test_zrank_withscore(five: Any) -> None:
    assert five.zrank("z", "c", withscore=True) == [2, 3.0]
    assert five.zrank("z", "missing", withscore=True) is None
    assert five.zrevrank("z", "c", withscore=True) == [2, 3.0]
    assert five.zrevrank("z", "e", withscore=True) == [0, 5.0]


def test_ranks_follow_score_changes(five: Any) -> None:
    five.zincrby("z", 10.0, "a")
    assert five.zrank("z", "a") == 4
    assert five.zrange("z", -1, -1) == ["a"]


# -- removals ---------------------------------------------------------------------------


def test_zrem(five: Any) -> None:
    removed = five.zrem("z", "b")
    assert removed == 1
    assert type(removed) is int
    assert five.zrem("z", "a", "c", "missing") == 2
    assert five.zrange("z", 0, -1) == ["d", "e"]
    assert five.zrem("missing", "a") == 0


def test_a_sorted_set_goes_with_its_last_member(five: Any) -> None:
    assert five.zrem("z", *SCORES) == 5
    assert five.has_key("z") is False
    assert five.keys("*") == []


def test_zremrangebyscore(five: Any) -> None:
    removed = five.zremrangebyscore("z", 2.0, 4.0)
    assert removed == 3
    assert type(removed) is int
    assert five.zrange("z", 0, -1) == ["a", "e"]
    assert five.zremrangebyscore("z", "(1", "(5") == 0
    assert five.zremrangebyscore("z", "-inf", "+inf") == 2
    assert five.has_key("z") is False
    assert five.zremrangebyscore("missing", "-inf", "+inf") == 0


def test_zpopmin(five: Any) -> None:
    popped = five.zpopmin("z")
    assert popped == ("a", 1.0)
    assert type(popped) is tuple
    assert five.zcard("z") == 4
    assert five.zpopmin("z", count=2) == [("b", 2.0), ("c", 3.0)]
    assert five.zpopmin("z", count=10) == [("d", 4.0), ("e", 5.0)]
    assert five.has_key("z") is False
    assert five.zpopmin("z") is None
    assert five.zpopmin("z", count=5) == []


def test_zpopmax(five: Any) -> None:
    assert five.zpopmax("z") == ("e", 5.0)
    popped = five.zpopmax("z", count=2)
    assert type(popped) is list
    assert popped == [("d", 4.0), ("c", 3.0)]
    assert five.zpopmax("z", count=1) == [("b", 2.0)]
    assert five.zpopmax("z") == ("a", 1.0)
    assert five.has_key("z") is False
    assert five.zpopmax("missing") is None
    assert five.zpopmax("missing", count=3) == []


def test_pops_of_equal_scores_go_by_member(rcache: Any) -> None:
    rcache.zadd("z", {"b": 1.0, "a": 1.0, "c": 1.0})
    assert rcache.zpopmin("z") == ("a", 1.0)
    assert rcache.zpopmax("z") == ("c", 1.0)


def test_a_large_sorted_set(rcache: Any) -> None:
    scores = {f"m{i:04}": float(i) for i in range(1500)}
    assert rcache.zadd("z", scores) == 1500
    assert rcache.zrange("z", -3, -1) == ["m1497", "m1498", "m1499"]
    assert rcache.zrange("z", 1000, 1001) == ["m1000", "m1001"]
    assert rcache.zrank("z", "m1234") == 1234
    assert rcache.zcount("z", "(100", 200) == 100
    assert rcache.zrangebyscore("z", 700, "+inf", start=500, num=3) == ["m1200", "m1201", "m1202"]
    assert rcache.zremrangebyscore("z", "-inf", "(1000") == 1000
    assert rcache.zpopmin("z") == ("m1000", 1000.0)
    assert rcache.zrem("z", *scores) == 499
    assert rcache.has_key("z") is False


# -- versions and kinds ---------------------------------------------------------------


def test_sorted_sets_are_per_version(rcache: Any) -> None:
    rcache.zadd("z", {"v1": 1.0}, version=1)
    rcache.zadd("z", {"v2": 2.0}, version=2)
    assert rcache.zcard("z", version=1) == 1
    assert rcache.zrange("z", 0, -1, version=1) == ["v1"]
    assert rcache.zrange("z", 0, -1, version=2) == ["v2"]
    assert rcache.zscore("z", "v2") is None
    assert rcache.zscore("z", "v2", version=2) == 2.0
    assert rcache.zincrby("z", 1.0, "v2", version=2) == 3.0
    assert rcache.zpopmax("z", version=2) == ("v2", 3.0)
    assert rcache.has_key("z", version=2) is False
    assert rcache.zrank("z", "v1", version=1) == 0


def test_sorted_sets_are_per_key_prefix(make_rcache: Any) -> None:
    one = make_rcache(KEY_PREFIX="one")
    two = make_rcache(KEY_PREFIX="two")
    one.zadd("z", {"a": 1.0})
    assert two.zcard("z") == 0
    two.zadd("z", {"b": 1.0})
    assert one.zrange("z", 0, -1) == ["a"]


@pytest.mark.parametrize("kind", ["plain", "hash", "set"])
def test_zset_verbs_on_another_kind_are_wrongtype(rcache: Any, kind: str) -> None:
    if kind == "plain":
        rcache.set("k", "value")
    elif kind == "hash":
        rcache.hset("k", "f", "v")
    else:
        rcache.sadd("k", "m")
    for call in (
        lambda: rcache.zadd("k", {"m": 1.0}),
        lambda: rcache.zadd("k", {"m": 1.0}, incr=True),
        lambda: rcache.zrem("k", "m"),
        lambda: rcache.zscore("k", "m"),
        lambda: rcache.zincrby("k", 1.0, "m"),
        lambda: rcache.zcard("k"),
        lambda: rcache.zcount("k", "-inf", "+inf"),
        lambda: rcache.zrange("k", 0, -1),
        lambda: rcache.zrevrange("k", 0, -1),
        lambda: rcache.zrangebyscore("k", "-inf", "+inf"),
        lambda: rcache.zrevrangebyscore("k", "+inf", "-inf"),
        lambda: rcache.zrank("k", "m"),
        lambda: rcache.zpopmin("k"),
        lambda: rcache.zpopmax("k", 2),
        lambda: rcache.zremrangebyscore("k", "-inf", "+inf"),
    ):
        with pytest.raises(WrongType, match=r"^WRONGTYPE"):
            call()
    assert rcache.has_key("k") is True
    if kind == "plain":
        assert rcache.get("k") == "value"
