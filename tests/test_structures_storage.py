"""How hashes, sets and sorted sets are stored: one row a member, one
statement a member write, members that go with their structure's row, and
batches larger than one statement can hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory

from keyval_backend.cache import KeyValCache
from keyval_backend.exceptions import WrongTypeError
from keyval_backend.models import Member


@pytest.fixture
def filled(kv: KeyValCache) -> KeyValCache:
    kv.hset("h", mapping={"a": 1, "b": "x"})
    kv.sadd("s", 1, 2, 3)
    kv.zadd("z", {"a": 1.0, "b": 2.0})
    return kv


ONE_STATEMENT: dict[str, Callable[[KeyValCache], Any]] = {
    "hset": lambda c: c.hset("h", "c", 3),
    "hset existing field": lambda c: c.hset("h", "a", 5),
    "hincrby": lambda c: c.hincrby("h", "a", 2),
    "hincrbyfloat": lambda c: c.hincrbyfloat("h", "a", 0.5),
    "hget": lambda c: c.hget("h", "a"),
    "hgetall": lambda c: c.hgetall("h"),
    "sadd": lambda c: c.sadd("s", 4),
    "sadd existing member": lambda c: c.sadd("s", 1),
    "sismember": lambda c: c.sismember("s", 1),
    "scard": lambda c: c.scard("s"),
    "zadd": lambda c: c.zadd("z", {"c": 3.0}),
    "zincrby": lambda c: c.zincrby("z", 1.0, "a"),
    "zrange": lambda c: c.zrange("z", 0, 99),
    "zrangebyscore": lambda c: c.zrangebyscore("z", 0, 10),
    "zscore": lambda c: c.zscore("z", "a"),
    "zrank": lambda c: c.zrank("z", "b"),
    "ttl": lambda c: c.ttl("h"),
    "expire": lambda c: c.expire("s", 10),
}


@pytest.mark.parametrize("operation", ONE_STATEMENT.values(), ids=ONE_STATEMENT.keys())
def test_member_operations_of_an_existing_structure_take_one_statement(
    filled: KeyValCache,
    django_assert_num_queries: Callable[..., Any],
    operation: Callable[[KeyValCache], Any],
) -> None:
    with django_assert_num_queries(1):
        operation(filled)


def test_a_structure_is_its_row_and_a_row_a_member(filled: KeyValCache, entry: Any) -> None:
    assert entry(filled, "h").format == "hash"
    assert entry(filled, "s").format == "set"
    assert entry(filled, "z").format == "zset"
    assert Member.objects.filter(entry=entry(filled, "h")).count() == 2
    assert Member.objects.count() == 7


def test_members_go_with_their_structure(
    filled: KeyValCache, frozen: FrozenDateTimeFactory
) -> None:
    filled.delete("h")
    assert Member.objects.count() == 5
    filled.expire("s", 10)
    frozen.tick(11)
    assert filled.smembers("s") == set()
    filled.purge_expired()
    assert Member.objects.count() == 2
    filled.clear()
    assert Member.objects.count() == 0


def test_an_expired_structure_starts_again_empty(
    kv: KeyValCache, frozen: FrozenDateTimeFactory
) -> None:
    kv.sadd("s", "old")
    kv.expire("s", 5)
    frozen.tick(6)
    assert kv.sadd("s", "new") == 1
    assert kv.smembers("s") == {"new"}
    assert kv.ttl("s") is None
    assert Member.objects.count() == 1


def test_batches_beyond_one_statement(kv: KeyValCache) -> None:
    # SQLite takes 500 terms in a compound SELECT: larger writes are cut.
    assert kv.sadd("s", *range(1200)) == 1200
    assert kv.scard("s") == 1200
    assert kv.hset("h", mapping={f"f{i}": i for i in range(700)}) == 700
    assert kv.hlen("h") == 700
    assert kv.zadd("z", {f"m{i}": i for i in range(600)}) == 600
    assert kv.zrange("z", -2, -1) == ["m598", "m599"]
    assert kv.sunionstore("u", "s") == 1200


def test_pop_and_get_many_leave_structures_alone(filled: KeyValCache) -> None:
    filled.set("plain", 1)
    assert filled.pop("h", "default") == "default"
    assert filled.hgetall("h") == {"a": 1, "b": "x"}
    assert filled.get_many(["h", "s", "plain"]) == {"plain": 1}
    with pytest.raises(WrongTypeError):
        filled.get("s")
    assert sorted(filled.keys("*")) == ["h", "plain", "s", "z"]


def test_a_failed_write_changes_nothing(filled: KeyValCache) -> None:
    with pytest.raises(WrongTypeError):
        filled.sadd("h", 1)
    with pytest.raises(ValueError, match="not an integer"):
        filled.hincrby("h", "b")
    assert filled.hgetall("h") == {"a": 1, "b": "x"}
    with pytest.raises(ValueError, match="overflow"):
        filled.hincrby("h", "a", 2**63 - 1)
    assert filled.hget("h", "a") == 1


def test_the_admin_lists_a_structure_as_what_it_is(filled: KeyValCache, admin_client: Any) -> None:
    filled.lock("job").acquire()
    page = admin_client.get("/admin/keyval_backend/entry/").content.decode()
    for kind in ("a hash", "a set", "a sorted set", "a lock"):
        assert f"{kind} (read it with the cache&#x27;s commands)" in page
