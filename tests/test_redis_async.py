"""Every method of the django-redis API has an async twin, ``a<method>``,
that gives what the method gives.

Each scenario is a list of calls with the results they must give, run once
through the sync methods and once through their twins (the ``mode``
parameter), never copied. Under the reference only the sync run is made:
django-redis 7 has no async twins of its Redis methods, but the expected
results are checked against it there.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from .redis_reference import REFERENCE

# Methods that give an iterator (the twin an async iterator, or an awaitable
# of an iterable): both are read to the end as a list.
ITERATORS = {"iter_keys", "sscan_iter"}

Step = tuple[str, tuple[Any, ...], dict[str, Any], Any]


def _sorted(got: Any) -> Any:
    return sorted(got, key=repr)


class Sorted:
    """An expected result compared without its order."""

    def __init__(self, *items: Any) -> None:
        self.items = _sorted(items)

    def __eq__(self, got: object) -> bool:
        return isinstance(got, list | set | tuple) and _sorted(got) == self.items

    def __repr__(self) -> str:
        return f"Sorted{tuple(self.items)!r}"


def close_to(expected: float, slack: float) -> Any:
    return pytest.approx(expected, abs=slack)


def common_scenarios() -> dict[str, list[Step]]:
    now = int(time.time())
    return {
        "set with nx and xx, delete": [
            ("set", ("k", 1), {"nx": True}, True),
            ("set", ("k", 2), {"nx": True}, False),
            ("set", ("k", 3), {"xx": True}, True),
            ("set", ("other", 3), {"xx": True}, False),
            ("get", ("k",), {}, 3),
            ("delete", ("k",), {}, True),
            ("delete", ("k",), {}, False),
        ],
        "incr with ignore_key_check": [
            ("incr", ("n",), {"ignore_key_check": True}, 1),
            ("incr", ("n", 5), {}, 6),
            ("incr", ("n", 1), {"ignore_key_check": True}, 7),
            ("decr", ("n", 2), {}, 5),
        ],
        "expiry": [
            ("set", ("k", "v"), {"timeout": None}, True),
            ("ttl", ("k",), {}, None),
            ("pttl", ("k",), {}, None),
            ("ttl", ("missing",), {}, 0),
            ("pttl", ("missing",), {}, 0),
            ("expire", ("k", 100), {}, True),
            ("expire", ("missing", 100), {}, False),
            ("ttl", ("k",), {}, close_to(100, 1)),
            ("pttl", ("k",), {}, close_to(100_000, 1_000)),
            ("persist", ("k",), {}, True),
            ("persist", ("k",), {}, False),
            ("pexpire", ("k", 5_000), {}, True),
            ("pttl", ("k",), {}, close_to(5_000, 1_000)),
            ("expire_at", ("k", now + 1_000), {}, True),
            ("ttl", ("k",), {}, close_to(1_000, 2)),
            ("pexpire_at", ("k", (now + 2_000) * 1_000), {}, True),
            ("ttl", ("k",), {}, close_to(2_000, 2)),
            ("touch", ("k", None), {}, True),
            ("ttl", ("k",), {}, None),
            ("expire", ("k", 0), {}, True),
            ("has_key", ("k",), {}, False),
        ],
        "keys": [
            ("set", ("a1", 1), {}, True),
            ("set", ("a2", 2), {}, True),
            ("sadd", ("a-set", "m"), {}, 1),
            ("set", ("b", 3), {}, True),
            ("set", ("a3", 3), {"version": 2}, True),
            ("keys", ("a*",), {}, Sorted("a1", "a2", "a-set")),
            ("keys", ("a?",), {}, Sorted("a1", "a2")),
            ("keys", ("*",), {"version": 2}, ["a3"]),
            ("iter_keys", ("a[0-9]",), {}, Sorted("a1", "a2")),
            ("iter_keys", ("*",), {"itersize": 1, "version": 2}, ["a3"]),
            ("delete_pattern", ("a*",), {}, 3),
            ("delete_pattern", ("*",), {"version": 2}, 1),
            ("keys", ("*",), {}, ["b"]),
        ],
        "hashes": [
            ("hset", ("h", "f", "v"), {}, 1),
            ("hset", ("h",), {"mapping": {"f": "w", "g": 2}}, 1),
            ("hlen", ("h",), {}, 2),
            ("hkeys", ("h",), {}, Sorted("f", "g")),
            ("hexists", ("h", "g"), {}, True),
            ("hexists", ("h", "x"), {}, False),
            ("hdel", ("h", "f"), {}, 1),
            ("hdel", ("h", "f"), {}, 0),
            ("hset", ("h", "v2"), {"value": 1, "version": 2}, 1),
            ("hkeys", ("h",), {"version": 2}, ["v2"]),
        ],
        "sets": [
            ("sadd", ("s", "a", "b", "c"), {}, 3),
            ("sadd", ("t", "c", "d"), {}, 2),
            ("srem", ("s", "c", "x"), {}, 1),
            ("smembers", ("s",), {}, {"a", "b"}),
            ("sismember", ("s", "a"), {}, True),
            ("smismember", ("s", "a", "x"), {}, [True, False]),
            ("scard", ("s",), {}, 2),
            ("smove", ("s", "t", "a"), {}, True),
            ("smove", ("s", "t", "a"), {}, False),
            ("sdiff", ("t", "s"), {}, {"a", "c", "d"}),
            ("sinter", ("t", "s"), {}, set()),
            ("sunion", ("t", "s"), {}, {"a", "b", "c", "d"}),
            ("sdiffstore", ("u", "t", "s"), {}, 3),
            ("sinterstore", ("v", "t", "u"), {}, 3),
            ("sunionstore", ("w", "s", "t"), {}, 4),
            ("sscan", ("w",), {"match": "?"}, {"a", "b", "c", "d"}),
            ("sscan_iter", ("w",), {"count": 2}, Sorted("a", "b", "c", "d")),
            ("srandmember", ("s",), {}, "b"),
            ("srandmember", ("s", 5), {}, ["b"]),
            ("spop", ("s",), {}, "b"),
            ("spop", ("s",), {}, None),
            ("spop", ("v", 10), {}, {"a", "c", "d"}),
            ("has_key", ("v",), {}, False),
        ],
        "sorted sets": [
            ("zadd", ("z", {"a": 1.0, "b": 2.0, "c": 3.0}), {}, 3),
            ("zadd", ("z", {"a": 1.5, "d": 4.0}), {"ch": True}, 2),
            ("zadd", ("z", {"a": 10.0}), {"nx": True}, 0),
            ("zadd", ("z", {"a": 1.0}), {"incr": True}, 2.5),
            ("zscore", ("z", "a"), {}, 2.5),
            ("zincrby", ("z", 1.0, "d"), {}, 5.0),
            ("zcard", ("z",), {}, 4),
            ("zcount", ("z", "(2", "+inf"), {}, 3),
            ("zrange", ("z", 0, -1), {}, ["b", "a", "c", "d"]),
            ("zrange", ("z", 0, 0), {"desc": True, "withscores": True}, [("d", 5.0)]),
            ("zrevrange", ("z", -2, -1), {}, ["a", "b"]),
            ("zrangebyscore", ("z", 2, "(3"), {"withscores": True}, [("b", 2.0), ("a", 2.5)]),
            ("zrangebyscore", ("z", "-inf", "+inf"), {"start": 1, "num": 2}, ["a", "c"]),
            ("zrevrangebyscore", ("z", "+inf", 3), {}, ["d", "c"]),
            ("zrank", ("z", "c"), {}, 2),
            ("zrank", ("z", "x"), {}, None),
            ("zrem", ("z", "b", "x"), {}, 1),
            ("zremrangebyscore", ("z", 5, 5), {}, 1),
            ("zpopmin", ("z",), {}, ("a", 2.5)),
            ("zpopmax", ("z", 5), {}, [("c", 3.0)]),
            ("zpopmax", ("z",), {}, None),
            ("has_key", ("z",), {}, False),
        ],
    }


def own_scenarios() -> dict[str, list[Step]]:
    return {
        "own hash verbs": [
            ("hset", ("h",), {"mapping": {"a": 1, "b": "two"}}, 2),
            ("hsetnx", ("h", "a", 5), {}, False),
            ("hsetnx", ("h", "c", 3), {}, True),
            ("hget", ("h", "b"), {}, "two"),
            ("hget", ("h", "x"), {}, None),
            ("hmget", ("h", ["a", "x", "c"]), {}, [1, None, 3]),
            ("hgetall", ("h",), {}, {"a": 1, "b": "two", "c": 3}),
            ("hvals", ("h",), {}, Sorted(1, "two", 3)),
            ("hincrby", ("h", "a", 4), {}, 5),
            ("hincrbyfloat", ("h", "c", 0.5), {}, 3.5),
            ("hdel", ("h", "a", "b", "c"), {}, 3),
            ("has_key", ("h",), {}, False),
        ],
        "own sorted set verbs": [
            ("zadd", ("z", {"a": 1.0, "b": 2.0}), {}, 2),
            ("zrevrank", ("z", "a"), {}, 1),
            ("zrevrank", ("z", "x"), {}, None),
            ("zrank", ("z", "b"), {"withscore": True}, [1, 2.0]),
        ],
        "own counters": [
            ("decr", ("n", 2), {"ignore_key_check": True}, -2),
            ("incr", ("n", 3), {}, 1),
        ],
        "get_or_set with a lock": [
            ("get_or_set", ("k", "computed"), {"lock": True}, "computed"),
            ("get_or_set", ("k", "other"), {"lock": True}, "computed"),
            ("get_or_set", ("l", lambda: 7), {"lock": True, "timeout": 30}, 7),
            ("ttl", ("l",), {}, close_to(30, 1)),
        ],
        "expiry to the millisecond": [
            ("set", ("k", 1), {}, True),
            ("expire", ("k", 1.5), {}, True),
            ("pttl", ("k",), {}, close_to(1_500, 500)),
            ("expires_in", ("k",), {}, close_to(1.5, 0.5)),
        ],
    }


def call(cache: Any, mode: str, method: str, args: tuple, kwargs: dict) -> Any:
    """``cache.<method>`` in sync mode, ``cache.a<method>`` awaited in async
    mode (an async iterator read to a list)."""
    if mode == "sync":
        result = getattr(cache, method)(*args, **kwargs)
        return list(result) if method in ITERATORS else result

    async def twin() -> Any:
        produced = getattr(cache, f"a{method}")(*args, **kwargs)
        if hasattr(produced, "__aiter__"):
            return [item async for item in produced]
        result = await produced
        return list(result) if method in ITERATORS else result

    return async_to_sync(twin)()


MODES = [
    "sync",
    pytest.param(
        "async",
        marks=pytest.mark.skipif(REFERENCE, reason="django-redis 7 has no async twins"),
    ),
]


def _check(cache: Any, mode: str, steps: list[Step]) -> None:
    for number, (method, args, kwargs, expected) in enumerate(steps):
        got = call(cache, mode, method, args, kwargs)
        assert got == expected, f"step {number}: {method}{args} {kwargs}"
        if isinstance(expected, bool | int | float) and expected is not None:
            assert type(got) is type(expected), f"step {number}: {method} gave {type(got)}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", sorted(common_scenarios()))
def test_twins_give_the_same_results(rcache: Any, mode: str, scenario: str) -> None:
    _check(rcache, mode, common_scenarios()[scenario])


@pytest.mark.skipif(REFERENCE, reason="keyval_backend's own methods and arguments")
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("scenario", sorted(own_scenarios()))
def test_twins_of_our_own_methods(rcache: Any, mode: str, scenario: str) -> None:
    _check(rcache, mode, own_scenarios()[scenario])


@pytest.mark.skipif(REFERENCE, reason="django-redis 7 has no async twins")
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_twins_raise_what_the_methods_raise(rcache: Any, mode: str) -> None:
    from .redis_reference import WrongType

    rcache.hset("h", "f", "v")
    with pytest.raises(WrongType, match=r"^WRONGTYPE"):
        call(rcache, mode, "sadd", ("h", "x"), {})
    with pytest.raises(ValueError):  # noqa: PT011
        call(rcache, mode, "incr", ("missing",), {})
    with pytest.raises(ValueError):  # noqa: PT011
        call(rcache, mode, "keys", ("[",), {})
    assert rcache.hkeys("h") == ["f"]


NEW_METHODS = [
    *("ttl", "pttl", "expire", "pexpire", "expire_at", "pexpire_at", "persist", "expires_in"),
    *("keys", "iter_keys", "delete_pattern"),
    *("hset", "hsetnx", "hget", "hmget", "hgetall", "hdel", "hlen", "hkeys", "hvals"),
    *("hexists", "hincrby", "hincrbyfloat"),
    *("sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop", "srandmember"),
    *("smove", "sdiff", "sinter", "sunion", "sdiffstore", "sinterstore", "sunionstore"),
    *("sscan", "sscan_iter"),
    *("zadd", "zrem", "zscore", "zincrby", "zcard", "zcount", "zrange", "zrevrange"),
    *("zrangebyscore", "zrevrangebyscore", "zrank", "zrevrank", "zpopmin", "zpopmax"),
    "zremrangebyscore",
]


@pytest.mark.skipif(REFERENCE, reason="django-redis 7 has no async twins")
@pytest.mark.parametrize("method", NEW_METHODS)
def test_every_new_method_has_a_twin(rcache: Any, method: str) -> None:
    twin: Callable[..., Any] | None = getattr(rcache, f"a{method}", None)
    assert twin is not None, f"no a{method}"
    assert inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin)
    sync = inspect.signature(getattr(rcache, method))
    assert list(inspect.signature(twin).parameters) == list(sync.parameters)
