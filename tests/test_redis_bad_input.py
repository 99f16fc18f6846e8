"""Calls that fail: each raises what it should (WRONGTYPE for a key of the
wrong kind, ValueError for a bad value, TypeError for a bad type), and
leaves everything stored as it was.

WRONGTYPE is checked against django-redis too; the ValueError and
TypeError cases are keyval_backend's (django-redis passes such arguments on,
and redis-py or Redis raise their own errors).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .redis_reference import REFERENCE, LockError, WrongType, ours_only

REDIS_ERRORS = "django-redis lets redis-py or Redis refuse it, with their own exceptions"


@pytest.fixture
def stored(rcache: Any) -> Any:
    """One key of every kind."""
    rcache.set("plain", {"a": 1})
    rcache.set("text", "abc")
    rcache.set("number", 10)
    rcache.hset("hash", mapping={"f": 1, "g": "two"})
    rcache.sadd("set", "x", "y")
    rcache.zadd("zset", {"x": 1.0, "y": 2.0})
    return rcache


def assert_intact(cache: Any) -> None:
    assert cache.get("plain") == {"a": 1}
    assert cache.get("text") == "abc"
    assert cache.get("number") == 10
    assert sorted(cache.hkeys("hash")) == ["f", "g"]
    assert cache.smembers("set") == {"x", "y"}
    assert cache.zrange("zset", 0, -1, withscores=True) == [("x", 1.0), ("y", 2.0)]
    assert sorted(cache.keys("*")) == ["hash", "number", "plain", "set", "text", "zset"]
    assert cache.ttl("hash") is None


WRONG_KIND: dict[str, Callable[[Any], Any]] = {
    "get a hash": lambda c: c.get("hash"),
    "get a set": lambda c: c.get("set"),
    "get a zset": lambda c: c.get("zset"),
    "incr a hash": lambda c: c.incr("hash"),
    "incr a set": lambda c: c.incr("set", ignore_key_check=True),
    "decr a zset": lambda c: c.decr("zset"),
    "hset a plain value": lambda c: c.hset("plain", "f", 1),
    "hset a set": lambda c: c.hset("set", mapping={"f": 1}),
    "hdel a zset": lambda c: c.hdel("zset", "x"),
    "hlen a plain value": lambda c: c.hlen("number"),
    "sadd a hash": lambda c: c.sadd("hash", "x"),
    "sadd a plain value": lambda c: c.sadd("text", "x"),
    "srem a zset": lambda c: c.srem("zset", "x"),
    "spop a hash": lambda c: c.spop("hash"),
    "smove from a zset": lambda c: c.smove("zset", "set", "x"),
    "smove into a hash": lambda c: c.smove("set", "hash", "x"),
    "sunionstore from a plain value": lambda c: c.sunionstore("new", "set", "plain"),
    "sinter with a zset": lambda c: c.sinter("set", "zset"),
    "zadd a set": lambda c: c.zadd("set", {"x": 1.0}),
    "zadd a hash with incr": lambda c: c.zadd("hash", {"x": 1.0}, incr=True),
    "zincrby a plain value": lambda c: c.zincrby("plain", 1.0, "x"),
    "zrange a hash": lambda c: c.zrange("hash", 0, -1),
    "zpopmin a set": lambda c: c.zpopmin("set"),
    "zremrangebyscore a plain value": lambda c: c.zremrangebyscore("text", "-inf", "+inf"),
}


@pytest.mark.parametrize("call", WRONG_KIND.values(), ids=WRONG_KIND.keys())
def test_a_key_of_the_wrong_kind(stored: Any, call: Callable[[Any], Any]) -> None:
    with pytest.raises(WrongType, match=r"^WRONGTYPE"):
        call(stored)
    assert_intact(stored)
    assert stored.has_key("new") is False


@ours_only("keyval_backend's exception class")
def test_wrongtype_is_a_type_error(stored: Any) -> None:
    from keyval_backend.exceptions import KeyValError, WrongTypeError

    with pytest.raises(TypeError) as raised:
        stored.sadd("hash", "x")
    assert isinstance(raised.value, WrongTypeError)
    assert isinstance(raised.value, KeyValError)
    assert str(raised.value).startswith("WRONGTYPE")


def test_expiry_verbs_take_any_kind(stored: Any) -> None:
    for key in ("plain", "hash", "set", "zset"):
        assert stored.expire(key, 100) is True
        assert stored.ttl(key) == 100
        assert stored.persist(key) is True
    assert_intact(stored)


@pytest.mark.parametrize("value", ["abc", [1]])
def test_incr_of_a_value_that_is_no_number(rcache: Any, value: Any) -> None:
    rcache.set("k", value)
    with pytest.raises(TypeError):
        rcache.incr("k")
    with pytest.raises(TypeError):
        rcache.incr("k", ignore_key_check=True)
    assert rcache.get("k") == value


def test_a_key_is_made_as_django_makes_it(rcache: Any) -> None:
    """Any key the key function can format is a key: 123 is "123"."""
    rcache.sadd(123, "m")
    rcache.hset(4.5, "f", "v")
    rcache.zadd(7, {"m": 1.0})
    assert rcache.smembers("123") == {"m"}
    assert rcache.hkeys("4.5") == ["f"]
    assert rcache.zcard("7") == 1
    assert sorted(rcache.keys("*")) == ["123", "4.5", "7"]


# -- bad values and types: keyval_backend's own errors ---------------------------------


BAD_VALUES: dict[str, Callable[[Any], Any]] = {
    "hset without a field": lambda c: c.hset("hash"),
    "hset of an empty mapping": lambda c: c.hset("hash", mapping={}),
    "hincrby of a str": lambda c: c.hincrby("hash", "g"),
    "hincrbyfloat of a str": lambda c: c.hincrbyfloat("hash", "g", 1.0),
    "sadd of nothing": lambda c: c.sadd("set"),
    "srem of nothing": lambda c: c.srem("set"),
    "sinter of no keys": lambda c: c.sinter(),
    "spop of a negative count": lambda c: c.spop("set", -1),
    "zadd of nothing": lambda c: c.zadd("zset", {}),
    "zadd of a text score": lambda c: c.zadd("zset", {"x": "high"}),
    "zadd of a NaN score": lambda c: c.zadd("zset", {"x": float("nan")}),
    "zadd nx and xx": lambda c: c.zadd("zset", {"x": 5.0}, nx=True, xx=True),
    "zadd nx and gt": lambda c: c.zadd("zset", {"x": 5.0}, nx=True, gt=True),
    "zadd gt and lt": lambda c: c.zadd("zset", {"x": 5.0}, gt=True, lt=True),
    "zadd incr of two": lambda c: c.zadd("zset", {"x": 5.0, "y": 1.0}, incr=True),
    "zincrby by text": lambda c: c.zincrby("zset", "much", "x"),
    "zrangebyscore text bound": lambda c: c.zrangebyscore("zset", "low", 5),
    "zrangebyscore bare (": lambda c: c.zrangebyscore("zset", "(", 5),
    "zcount double (": lambda c: c.zcount("zset", "((1", 5),
    "zremrangebyscore empty bound": lambda c: c.zremrangebyscore("zset", "", 5),
    "zrangebyscore start without num": lambda c: c.zrangebyscore("zset", 0, 5, start=1),
    "zpopmin of a negative count": lambda c: c.zpopmin("zset", -2),
    "keys of an unterminated [": lambda c: c.keys("[abc"),
    "delete_pattern of an unterminated [": lambda c: c.delete_pattern("x[^"),
    "sscan of an unterminated [": lambda c: c.sscan("set", match="x["),
}


@ours_only(REDIS_ERRORS)
@pytest.mark.parametrize("call", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_a_bad_value(stored: Any, call: Callable[[Any], Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (the kind of error is the contract)
        call(stored)
    assert_intact(stored)


@ours_only(REDIS_ERRORS)
def test_hincrby_of_a_str_says_why(stored: Any) -> None:
    with pytest.raises(ValueError, match="hash value is not an integer"):
        stored.hincrby("hash", "g")


BAD_TYPES: dict[str, Callable[[Any], Any]] = {
    "hset of a tuple field": lambda c: c.hset("hash", ("a", 1), "v"),
    "hset of a None field in a mapping": lambda c: c.hset("hash", mapping={None: 1}),
    "hset of a bool field": lambda c: c.hset("hash", True, "v"),
    "hget of a list field": lambda c: c.hget("hash", ["f"]),
    "hincrby by a float": lambda c: c.hincrby("hash", "f", 1.5),
    "hincrby by None": lambda c: c.hincrby("hash", "f", None),
    "spop of a str count": lambda c: c.spop("set", "2"),
    "srandmember of a float count": lambda c: c.srandmember("set", 1.5),
    "zrangebyscore None bound": lambda c: c.zrangebyscore("zset", None, 5),
    "zrange of str ranks": lambda c: c.zrange("zset", "0", "-1"),
    "expire by a str": lambda c: c.expire("plain", "10"),
    "pexpire by None": lambda c: c.pexpire("plain", None),
    "expire_at a str": lambda c: c.expire_at("plain", "tomorrow"),
    "keys of None": lambda c: c.keys(None),
    "keys of bytes": lambda c: c.keys(b"*"),
    "iter_keys of an int": lambda c: list(c.iter_keys(1)),
    "lock timeout of a str": lambda c: c.lock("l", timeout="10").acquire(),
}


@ours_only(REDIS_ERRORS)
@pytest.mark.parametrize("call", BAD_TYPES.values(), ids=BAD_TYPES.keys())
def test_a_bad_type(stored: Any, call: Callable[[Any], Any]) -> None:
    with pytest.raises(TypeError) as raised:
        call(stored)
    assert not str(raised.value).startswith("WRONGTYPE")
    assert_intact(stored)


@ours_only(REDIS_ERRORS)
@pytest.mark.parametrize(
    "arguments",
    [{"timeout": -1}, {"timeout": -0.5}, {"blocking_timeout": -1}, {"sleep": -0.1}],
    ids=["timeout -1", "timeout -0.5", "blocking_timeout -1", "sleep -0.1"],
)
def test_a_negative_lock_time_is_refused(stored: Any, arguments: dict[str, float]) -> None:
    """Refused before anything is taken (the contract leaves the class open
    between ValueError and the LockError redis-py users catch)."""
    with pytest.raises((ValueError, LockError)):
        stored.lock("l", **arguments).acquire()
    assert stored.has_key("l") is False
    assert_intact(stored)


@pytest.mark.skipif(not REFERENCE, reason="documents what the reference does instead")
def test_the_reference_refuses_through_redis(stored: Any) -> None:
    from redis.exceptions import DataError, RedisError, ResponseError

    with pytest.raises(ResponseError):
        stored.zadd("zset", {"x": "high"})
    with pytest.raises(DataError):
        stored.zadd("zset", {"x": 5.0}, nx=True, xx=True)
    with pytest.raises(RedisError):
        stored.lock("l", timeout=-1).acquire()
    assert_intact(stored)
