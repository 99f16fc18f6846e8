"""django-redis's expiry verbs: ttl, pttl, expire, pexpire, expire_at,
pexpire_at, persist, touch, and how timeouts live with increments and with
structure keys (a hash, set or sorted set expires whole).

Run against KeyValCache, or with ``KEYVAL_TEST_REFERENCE=redis`` against
django-redis (see tests/redis_reference.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .redis_reference import REFERENCE, exact_or_close, ours_only


def within(expected: float, slack: float) -> Any:
    """``expected`` exactly with time stopped; on the reference, whose clock
    runs, up to ``slack`` less."""
    if REFERENCE:
        return pytest.approx(expected - slack / 2, abs=slack / 2)
    return expected


# -- ttl and pttl ---------------------------------------------------------------


def test_ttl_of_missing_persistent_and_expiring_keys(rcache: Any, clock: Any) -> None:
    assert rcache.ttl("missing") == 0
    rcache.set("forever", 1, timeout=None)
    assert rcache.ttl("forever") is None
    rcache.set("soon", 1, timeout=10)
    ttl = rcache.ttl("soon")
    assert ttl == 10
    assert type(ttl) is int


def test_ttl_rounds_to_the_nearest_second_as_redis_does(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=10)
    clock.tick(0.4)  # 9.6 s left
    assert rcache.ttl("key") == 10
    clock.tick(0.2)  # 9.4 s left
    assert rcache.ttl("key") == 9


def test_ttl_of_an_expired_key_is_zero(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=10)
    clock.tick(11)
    assert rcache.ttl("key") == 0
    assert rcache.pttl("key") == 0
    assert rcache.get("key") is None


def test_pttl_in_milliseconds(rcache: Any, clock: Any) -> None:
    assert rcache.pttl("missing") == 0
    rcache.set("forever", 1, timeout=None)
    assert rcache.pttl("forever") is None
    rcache.set("soon", 1, timeout=10)
    pttl = rcache.pttl("soon")
    assert type(pttl) is int
    assert pttl == exact_or_close(10_000)
    clock.tick(2.5)
    assert rcache.pttl("soon") == exact_or_close(7_500)
    rcache.set("fraction", 1, timeout=5.5)
    assert rcache.pttl("fraction") == exact_or_close(5_500)


def test_ttl_is_per_version(make_rcache: Any, clock: Any) -> None:
    cache = make_rcache(VERSION=2)
    cache.set("key", "v2", timeout=10)
    cache.set("key", "v1", timeout=None, version=1)
    assert cache.ttl("key") == 10
    assert cache.ttl("key", version=2) == 10
    assert cache.ttl("key", version=1) is None
    assert cache.ttl("key", version=3) == 0


# -- expire and pexpire -----------------------------------------------------------


def test_expire(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.expire("key", 20) is True
    assert rcache.ttl("key") == 20
    assert rcache.expire("missing", 20) is False
    assert not rcache.has_key("missing")
    clock.tick(21)
    assert rcache.get("key") is None


def test_expire_replaces_the_previous_timeout(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=100)
    assert rcache.expire("key", 5) is True
    assert rcache.ttl("key") == 5


def test_expire_takes_a_timedelta(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.expire("key", timedelta(minutes=1)) is True
    assert rcache.ttl("key") == 60


@ours_only("Redis EXPIRE takes whole seconds; django-redis passes a float on and Redis refuses it")
def test_expire_takes_float_seconds(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.expire("key", 1.5) is True
    assert rcache.pttl("key") == 1_500


@pytest.mark.parametrize("timeout", [0, -5])
def test_expire_not_in_the_future_deletes(rcache: Any, timeout: int) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.expire("key", timeout) is True
    assert not rcache.has_key("key")
    assert rcache.get("key") is None
    assert rcache.expire("key", timeout) is False


def test_expire_is_per_version(make_rcache: Any, clock: Any) -> None:
    cache = make_rcache()
    cache.set("key", "v1")
    cache.set("key", "v2", version=2)
    assert cache.expire("key", 10, version=2) is True
    assert cache.ttl("key", version=2) == 10
    assert cache.ttl("key") is None
    clock.tick(11)
    assert cache.get("key") == "v1"
    assert cache.get("key", version=2) is None


def test_pexpire(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.pexpire("key", 20_600) is True
    assert rcache.pttl("key") == exact_or_close(20_600)
    assert rcache.ttl("key") == 21  # rounded to the nearest second, as Redis does
    assert rcache.pexpire("missing", 20_600) is False
    clock.tick(20.7)
    assert not rcache.has_key("key")


def test_pexpire_takes_a_timedelta(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.pexpire("key", timedelta(seconds=2.5)) is True
    assert rcache.pttl("key") == exact_or_close(2_500)


def test_pexpire_not_in_the_future_deletes(rcache: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.pexpire("key", 0) is True
    assert not rcache.has_key("key")


# -- expire_at and pexpire_at -----------------------------------------------------


def test_expire_at_an_aware_datetime(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    now = int(time.time())
    when = datetime.fromtimestamp(now + 3600, UTC)
    assert rcache.expire_at("key", when) is True
    assert rcache.pttl("key") == within(3_600_000, 1_000)
    assert rcache.expire_at("missing", when) is False


def test_expire_at_unix_seconds(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    now = int(time.time())
    assert rcache.expire_at("key", now + 7200) is True
    assert rcache.pttl("key") == within(7_200_000, 1_000)
    clock.tick(7201)
    assert not rcache.has_key("key")


def test_expire_at_a_naive_datetime_is_local_time(rcache: Any) -> None:
    """As redis-py reads it (``datetime.timestamp``): the process's local
    time, which Django sets to ``TIME_ZONE``."""
    rcache.set("key", "v", timeout=None)
    when = datetime.fromtimestamp(int(time.time()) + 3600)
    assert when.tzinfo is None
    assert rcache.expire_at("key", when) is True
    assert rcache.ttl("key") == pytest.approx(3600, abs=2)


def test_expire_at_in_the_past_deletes(rcache: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.expire_at("key", datetime.now(UTC) - timedelta(hours=1)) is True
    assert not rcache.has_key("key")
    assert rcache.expire_at("key", int(time.time()) - 10) is False


def test_pexpire_at(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    now_ms = int(time.time()) * 1000
    assert rcache.pexpire_at("key", now_ms + 2_500) is True
    assert rcache.pttl("key") == within(2_500, 1_000)
    when = datetime.fromtimestamp(now_ms / 1000 + 3600, UTC)
    assert rcache.pexpire_at("key", when) is True
    assert rcache.pttl("key") == within(3_600_000, 1_000)
    assert rcache.pexpire_at("missing", when) is False


def test_pexpire_at_in_the_past_deletes(rcache: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.pexpire_at("key", int(time.time() * 1000) - 1) is True
    assert not rcache.has_key("key")


# -- persist and touch ------------------------------------------------------------


def test_persist_removes_an_expiry(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=10)
    assert rcache.persist("key") is True
    assert rcache.ttl("key") is None
    clock.tick(11)
    assert rcache.get("key") == "v"


def test_persist_is_false_without_an_expiry_to_remove(rcache: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.persist("key") is False
    assert rcache.persist("missing") is False
    assert not rcache.has_key("missing")
    assert rcache.get("key") == "v"


def test_touch(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.touch("key", 10) is True
    assert rcache.ttl("key") == 10
    assert rcache.touch("key", None) is True
    assert rcache.ttl("key") is None
    assert rcache.touch("missing", 10) is False


# -- timeouts and other writes ----------------------------------------------------


def test_set_replaces_the_timeout(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=10)
    rcache.set("key", "w", timeout=None)
    assert rcache.ttl("key") is None
    rcache.set("key", "x", timeout=30)
    assert rcache.ttl("key") == 30


def test_incr_keeps_the_timeout(rcache: Any, clock: Any) -> None:
    rcache.set("n", 1, timeout=10)
    clock.tick(3)
    assert rcache.incr("n", 5) == 6
    assert rcache.decr("n") == 5
    assert rcache.incr("n", ignore_key_check=True) == 6
    assert rcache.pttl("n") == exact_or_close(7_000)
    clock.tick(8)
    assert rcache.get("n") is None


def test_incr_ignore_key_check_creates_a_persistent_key(rcache: Any, clock: Any) -> None:
    assert rcache.incr("n", 4, ignore_key_check=True) == 4
    assert rcache.ttl("n") is None


def test_incr_ignore_key_check_after_expiry_starts_again(rcache: Any, clock: Any) -> None:
    rcache.set("n", 100, timeout=10)
    clock.tick(11)
    assert rcache.incr("n", 2, ignore_key_check=True) == 2
    assert rcache.ttl("n") is None


# -- structure keys expire whole ----------------------------------------------------


def _make_hash(cache: Any, key: str) -> None:
    cache.hset(key, mapping={"a": 1, "b": 2})


def _make_set(cache: Any, key: str) -> None:
    cache.sadd(key, "a", "b")


def _make_zset(cache: Any, key: str) -> None:
    cache.zadd(key, {"a": 1.0, "b": 2.0})


def _size(cache: Any, kind: str, key: str) -> int:
    return {"hash": cache.hlen, "set": cache.scard, "zset": cache.zcard}[kind](key)


MAKERS = {"hash": _make_hash, "set": _make_set, "zset": _make_zset}


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_structure_expires_whole(rcache: Any, clock: Any, kind: str) -> None:
    MAKERS[kind](rcache, "s")
    assert rcache.ttl("s") is None
    assert rcache.expire("s", 10) is True
    assert rcache.ttl("s") == 10
    assert rcache.pttl("s") == exact_or_close(10_000)
    clock.tick(11)
    assert not rcache.has_key("s")
    assert rcache.ttl("s") == 0
    assert _size(rcache, kind, "s") == 0
    # Written again, it is a new key: no expiry, and none of the old members.
    if kind == "hash":
        assert rcache.hset("s", "new", 1) == 1
        assert rcache.hkeys("s") == ["new"]
    elif kind == "set":
        assert rcache.sadd("s", "new") == 1
        assert rcache.smembers("s") == {"new"}
    else:
        assert rcache.zadd("s", {"new": 1.0}) == 1
        assert rcache.zrange("s", 0, -1) == ["new"]
    assert rcache.ttl("s") is None


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_structure_keeps_its_timeout_when_written(rcache: Any, clock: Any, kind: str) -> None:
    MAKERS[kind](rcache, "s")
    rcache.expire("s", 10)
    clock.tick(4)
    if kind == "hash":
        assert rcache.hset("s", "c", 3) == 1
        assert rcache.hset("s", "a", 10) == 0
    elif kind == "set":
        assert rcache.sadd("s", "c") == 1
        assert rcache.srem("s", "a") == 1
    else:
        assert rcache.zadd("s", {"c": 3.0}) == 1
        assert rcache.zincrby("s", 1.0, "a") == 2.0
    assert rcache.pttl("s") == exact_or_close(6_000)
    clock.tick(7)
    assert not rcache.has_key("s")


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_persist_and_touch_a_structure(rcache: Any, clock: Any, kind: str) -> None:
    MAKERS[kind](rcache, "s")
    assert rcache.touch("s", 10) is True
    assert rcache.ttl("s") == 10
    assert rcache.persist("s") is True
    assert rcache.ttl("s") is None
    assert rcache.pexpire("s", 1_500) is True
    assert rcache.pttl("s") == exact_or_close(1_500)
    assert rcache.expire("s", 0) is True
    assert not rcache.has_key("s")


@pytest.mark.parametrize("kind", ["plain", *sorted(MAKERS)])
def test_an_expired_key_is_free_for_any_kind(rcache: Any, clock: Any, kind: str) -> None:
    if kind == "plain":
        rcache.set("k", "old", timeout=5)
    else:
        MAKERS[kind](rcache, "k")
        rcache.expire("k", 5)
    clock.tick(6)
    assert rcache.hset("k", "f", 1) == 1
    assert rcache.hkeys("k") == ["f"]
    rcache.expire("k", 5)
    clock.tick(6)
    assert rcache.sadd("k", "m") == 1
    assert rcache.smembers("k") == {"m"}
    rcache.expire("k", 5)
    clock.tick(6)
    assert rcache.zadd("k", {"m": 1.0}) == 1
    assert rcache.zcard("k") == 1
    rcache.expire("k", 5)
    clock.tick(6)
    assert rcache.add("k", "plain") is True
    assert rcache.get("k") == "plain"
    assert rcache.ttl("k") is None


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_set_with_a_timeout_of_zero_deletes_a_structure(rcache: Any, kind: str) -> None:
    MAKERS[kind](rcache, "s")
    rcache.set("s", "plain", timeout=0)
    assert rcache.has_key("s") is False
    assert _size(rcache, kind, "s") == 0


@ours_only("KeyValCache's own expires_in(): float seconds left, the old ttl()")
def test_expires_in(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=10)
    clock.tick(2.5)
    assert rcache.expires_in("key") == 7.5
    rcache.set("forever", "v", timeout=None)
    assert rcache.expires_in("forever") is None
    with pytest.raises(KeyError):
        rcache.expires_in("missing")
