"""Hashes: a key holding str fields with values of their own.

django-redis 7 has hset, hdel (of one field), hlen, hkeys and hexists; the
rest (hget, hmget, hgetall, hvals, hsetnx, hincrby, hincrbyfloat, hdel of
several fields) is keyval_backend's, after Redis's commands, and skipped
under the reference.
"""

from __future__ import annotations

from typing import Any

import pytest

from .redis_reference import WrongType, ours_only

EXTRA = "django-redis 7 has no hget/hmget/hgetall/hvals/hsetnx/hincrby"


def test_hset_counts_new_fields(rcache: Any) -> None:
    added = rcache.hset("h", "f1", "v1")
    assert added == 1
    assert type(added) is int
    assert rcache.hset("h", "f2", "v2") == 1
    assert rcache.hset("h", "f1", "changed") == 0
    assert rcache.hlen("h") == 2


def test_hset_a_mapping(rcache: Any) -> None:
    assert rcache.hset("h", mapping={"a": 1, "b": 2}) == 2
    assert rcache.hset("h", mapping={"b": 20, "c": 3}) == 1
    assert rcache.hset("h", "d", 4, mapping={"a": 10, "e": 5}) == 2
    assert sorted(rcache.hkeys("h")) == ["a", "b", "c", "d", "e"]


def test_hlen_hkeys_hexists(rcache: Any) -> None:
    assert rcache.hlen("h") == 0
    assert rcache.hkeys("h") == []
    assert rcache.hexists("h", "f") is False
    rcache.hset("h", mapping={"f": 1, "g": 2, "h": 3})
    assert rcache.hlen("h") == 3
    keys = rcache.hkeys("h")
    assert type(keys) is list
    assert sorted(keys) == ["f", "g", "h"]
    assert all(type(key) is str for key in keys)
    assert rcache.hexists("h", "f") is True
    assert rcache.hexists("h", "x") is False


def test_hdel(rcache: Any) -> None:
    rcache.hset("h", mapping={"a": 1, "b": 2})
    deleted = rcache.hdel("h", "a")
    assert deleted == 1
    assert type(deleted) is int
    assert rcache.hdel("h", "a") == 0
    assert rcache.hdel("missing", "a") == 0
    assert rcache.hkeys("h") == ["b"]


def test_a_hash_goes_with_its_last_field(rcache: Any) -> None:
    rcache.hset("h", "only", 1)
    assert rcache.has_key("h") is True
    assert rcache.hdel("h", "only") == 1
    assert rcache.has_key("h") is False
    assert rcache.keys("*") == []
    # The key is free for a plain value again.
    assert rcache.add("h", "plain") is True


def test_fields_are_str(rcache: Any) -> None:
    """int, float and bytes fields are turned into text as redis-py sends
    them."""
    rcache.hset("h", 1, "int")
    rcache.hset("h", 2.5, "float")
    rcache.hset("h", b"raw", "bytes")
    rcache.hset("h", "é", "text")
    assert sorted(rcache.hkeys("h")) == ["1", "2.5", "raw", "é"]
    assert rcache.hexists("h", "1") is True
    assert rcache.hexists("h", 1) is True
    assert rcache.hexists("h", "raw") is True
    assert rcache.hexists("h", b"2.5") is True
    assert rcache.hset("h", "1", "again") == 0
    assert rcache.hdel("h", b"1") == 1


def test_fields_are_case_and_accent_sensitive(rcache: Any) -> None:
    assert rcache.hset("h", mapping={"a": 1, "A": 2, "à": 3, "a ": 4}) == 4
    assert rcache.hlen("h") == 4
    assert rcache.hexists("h", "á") is False


def test_hashes_are_per_version(rcache: Any) -> None:
    rcache.hset("h", "f1", "v1", version=1)
    rcache.hset("h", "f2", "v2", version=1)
    rcache.hset("h", "f1", "other", version=2)
    assert sorted(rcache.hkeys("h", version=1)) == ["f1", "f2"]
    assert rcache.hkeys("h", version=2) == ["f1"]
    assert rcache.hlen("h") == 2
    assert rcache.hexists("h", "f2", version=2) is False
    assert rcache.hdel("h", "f1", version=2) == 1
    assert rcache.has_key("h", version=2) is False
    assert rcache.hlen("h", version=1) == 2


def test_hashes_are_per_key_prefix(make_rcache: Any) -> None:
    one = make_rcache(KEY_PREFIX="one")
    two = make_rcache(KEY_PREFIX="two")
    one.hset("h", "f", 1)
    assert two.hlen("h") == 0
    assert two.hset("h", "g", 2) == 1
    assert one.hkeys("h") == ["f"]


@pytest.mark.parametrize("kind", ["plain", "set", "zset"])
def test_hash_verbs_on_another_kind_are_wrongtype(rcache: Any, kind: str) -> None:
    if kind == "plain":
        rcache.set("k", "value")
    elif kind == "set":
        rcache.sadd("k", "m")
    else:
        rcache.zadd("k", {"m": 1.0})
    for call in (
        lambda: rcache.hset("k", "f", "v"),
        lambda: rcache.hset("k", mapping={"f": "v"}),
        lambda: rcache.hlen("k"),
        lambda: rcache.hkeys("k"),
        lambda: rcache.hexists("k", "f"),
        lambda: rcache.hdel("k", "f"),
    ):
        with pytest.raises(WrongType, match=r"^WRONGTYPE"):
            call()
    assert rcache.has_key("k") is True
    if kind == "plain":
        assert rcache.get("k") == "value"


# -- keyval_backend's own hash verbs -----------------------------------------------


@ours_only(EXTRA)
def test_hget_and_hgetall(rcache: Any) -> None:
    value = {"nested": [1, 2], "text": "é"}
    rcache.hset("h", mapping={"dict": value, "int": 7, "float": 1.5, "str": "s", "bool": True})
    assert rcache.hget("h", "dict") == value
    assert rcache.hget("h", "int") == 7
    assert type(rcache.hget("h", "int")) is int
    assert rcache.hget("h", "float") == 1.5
    assert rcache.hget("h", "bool") is True
    assert rcache.hget("h", "missing") is None
    assert rcache.hget("missing", "f") is None
    everything = rcache.hgetall("h")
    assert everything == {"dict": value, "int": 7, "float": 1.5, "str": "s", "bool": True}
    assert all(type(field) is str for field in everything)
    assert rcache.hgetall("missing") == {}


@ours_only(EXTRA)
@pytest.mark.pickle_only("tuples and sets, which JSON cannot hold")
def test_hash_values_any_picklable(rcache: Any) -> None:
    rcache.hset("h", mapping={"tuple": (1, "a"), "set": {1, 2}, "bytes": b"\x00\xff"})
    assert rcache.hgetall("h") == {"tuple": (1, "a"), "set": {1, 2}, "bytes": b"\x00\xff"}


@ours_only(EXTRA)
def test_hset_replaces_a_value(rcache: Any) -> None:
    rcache.hset("h", "f", "old")
    rcache.hset("h", "f", [1, 2])
    assert rcache.hget("h", "f") == [1, 2]


@ours_only(EXTRA)
def test_hmget(rcache: Any) -> None:
    rcache.hset("h", mapping={"a": 1, "b": "two"})
    assert rcache.hmget("h", ["a", "missing", "b"]) == [1, None, "two"]
    assert rcache.hmget("h", ["b"], "a") == ["two", 1]
    assert rcache.hmget("h", "a", "b") == [1, "two"]
    assert rcache.hmget("missing", ["a", "b"]) == [None, None]


@ours_only(EXTRA)
def test_hvals(rcache: Any) -> None:
    rcache.hset("h", mapping={"a": 1, "b": "two", "c": [3]})
    values = rcache.hvals("h")
    assert type(values) is list
    assert sorted(map(repr, values)) == sorted(map(repr, [1, "two", [3]]))
    assert rcache.hvals("missing") == []


@ours_only(EXTRA)
def test_hkeys_and_hvals_in_the_same_order(rcache: Any) -> None:
    rcache.hset("h", mapping={f"f{i}": i for i in range(20)})
    assert [int(field[1:]) for field in rcache.hkeys("h")] == rcache.hvals("h")
    assert list(rcache.hgetall("h")) == rcache.hkeys("h")


@ours_only(EXTRA)
def test_hsetnx(rcache: Any) -> None:
    assert rcache.hsetnx("h", "f", "first") is True
    assert rcache.hsetnx("h", "f", "second") is False
    assert rcache.hget("h", "f") == "first"
    assert rcache.hsetnx("h", "g", 2) is True
    assert rcache.hlen("h") == 2


@ours_only(EXTRA)
def test_hdel_of_several_fields(rcache: Any) -> None:
    rcache.hset("h", mapping={"a": 1, "b": 2, "c": 3})
    assert rcache.hdel("h", "a", "b", "x", "a") == 2
    assert rcache.hgetall("h") == {"c": 3}
    assert rcache.hdel("h", "c", "d") == 1
    assert rcache.has_key("h") is False


@ours_only(EXTRA)
def test_hincrby(rcache: Any, clock: Any) -> None:
    value = rcache.hincrby("h", "n")
    assert value == 1
    assert type(value) is int
    assert rcache.hincrby("h", "n", 10) == 11
    assert rcache.hincrby("h", "n", -20) == -9
    assert rcache.hget("h", "n") == -9
    rcache.hset("h", "m", 5)
    assert rcache.hincrby("h", "m", 2) == 7
    assert rcache.ttl("h") is None
    rcache.expire("h", 10)
    clock.tick(4)
    assert rcache.hincrby("h", "new", 3) == 3
    assert rcache.ttl("h") == 6


@ours_only(EXTRA)
def test_hincrby_is_per_version(rcache: Any) -> None:
    rcache.hincrby("h", "n", 5, version=2)
    assert rcache.hget("h", "n") is None
    assert rcache.hget("h", "n", version=2) == 5


@ours_only(EXTRA)
def test_hincrbyfloat(rcache: Any) -> None:
    value = rcache.hincrbyfloat("h", "x")
    assert value == 1.0
    assert type(value) is float
    assert rcache.hincrbyfloat("h", "x", 0.5) == 1.5
    assert rcache.hincrbyfloat("h", "x", -2) == -0.5
    rcache.hset("h", "i", 5)
    assert rcache.hincrbyfloat("h", "i", 0.25) == 5.25
    assert rcache.hget("h", "i") == 5.25


@ours_only(EXTRA)
@pytest.mark.parametrize("value", ["5", "text", 1.5, [1], None])
def test_hincrby_of_a_value_that_is_not_an_integer(rcache: Any, value: Any) -> None:
    rcache.hset("h", mapping={"f": value, "other": 1})
    with pytest.raises(ValueError, match="hash value is not an integer"):
        rcache.hincrby("h", "f")
    assert rcache.hget("h", "f") == value
    assert rcache.hlen("h") == 2


@ours_only(EXTRA)
@pytest.mark.parametrize("value", ["text", "1.5", [1], None])
def test_hincrbyfloat_of_a_value_that_is_not_a_number(rcache: Any, value: Any) -> None:
    rcache.hset("h", "f", value)
    with pytest.raises(ValueError):  # noqa: PT011  (the contract names the class only)
        rcache.hincrbyfloat("h", "f", 1.0)
    assert rcache.hget("h", "f") == value


@ours_only(EXTRA)
def test_hincrby_past_64_bits_is_refused(rcache: Any) -> None:
    """Redis: "increment or decrement would overflow"."""
    rcache.hset("h", "n", 2**63 - 1)
    with pytest.raises(ValueError, match="overflow"):
        rcache.hincrby("h", "n")
    assert rcache.hget("h", "n") == 2**63 - 1


@ours_only(EXTRA)
@pytest.mark.parametrize("kind", ["plain", "set", "zset"])
def test_own_hash_verbs_on_another_kind_are_wrongtype(rcache: Any, kind: str) -> None:
    if kind == "plain":
        rcache.set("k", 1)
    elif kind == "set":
        rcache.sadd("k", "m")
    else:
        rcache.zadd("k", {"m": 1.0})
    for call in (
        lambda: rcache.hget("k", "f"),
        lambda: rcache.hmget("k", ["f"]),
        lambda: rcache.hgetall("k"),
        lambda: rcache.hvals("k"),
        lambda: rcache.hsetnx("k", "f", 1),
        lambda: rcache.hincrby("k", "f"),
        lambda: rcache.hincrbyfloat("k", "f"),
    ):
        with pytest.raises(WrongType, match=r"^WRONGTYPE"):
            call()
    assert rcache.has_key("k") is True


def test_fields_are_exact_text(rcache: Any) -> None:
    fields = ["e", "E", "é", "e\u0301", "a\x00b", "😀", "", "e "]
    assert rcache.hset("h", mapping={field: n for n, field in enumerate(fields)}) == len(fields)
    assert sorted(rcache.hkeys("h")) == sorted(fields)
    assert rcache.hexists("h", "É") is False


def test_a_large_hash(rcache: Any) -> None:
    fields = {f"f{i:04}": i for i in range(1200)}
    assert rcache.hset("h", mapping=fields) == 1200
    assert rcache.hlen("h") == 1200
    assert sorted(rcache.hkeys("h")) == sorted(fields)
    for field in list(fields)[:600]:
        assert rcache.hdel("h", field) == 1
    assert rcache.hlen("h") == 600


@ours_only(EXTRA)
def test_a_large_hash_read_whole(rcache: Any) -> None:
    fields = {f"f{i:04}": i for i in range(1200)}
    rcache.hset("h", mapping=fields)
    assert rcache.hgetall("h") == fields
    assert rcache.hmget("h", list(fields)) == list(fields.values())
    assert rcache.hdel("h", *fields) == 1200
    assert rcache.has_key("h") is False
