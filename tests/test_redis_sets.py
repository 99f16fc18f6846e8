"""Sets: sadd, srem, smembers, sismember, smismember, scard, spop,
srandmember, smove, sdiff/sinter/sunion and their *store forms, sscan."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from .redis_reference import WrongType, ours_only, unlike_django_redis


def test_sadd_counts_new_members(rcache: Any) -> None:
    added = rcache.sadd("s", "a", "b")
    assert added == 2
    assert type(added) is int
    assert rcache.sadd("s", "b", "c", "c") == 1
    assert rcache.smembers("s") == {"a", "b", "c"}


def test_smembers_scard_of_a_missing_key(rcache: Any) -> None:
    members = rcache.smembers("missing")
    assert members == set()
    assert type(members) is set
    assert rcache.scard("missing") == 0
    assert rcache.sismember("missing", "a") is False
    assert rcache.has_key("missing") is False


def test_sismember_and_smismember(rcache: Any) -> None:
    rcache.sadd("s", "a", "b", "c")
    assert rcache.sismember("s", "a") is True
    assert rcache.sismember("s", "z") is False
    assert rcache.smismember("s", "a", "z", "c") == [True, False, True]
    assert rcache.smismember("missing", "a", "b") == [False, False]


def test_scard(rcache: Any) -> None:
    rcache.sadd("s", "a", "b")
    count = rcache.scard("s")
    assert count == 2
    assert type(count) is int


def test_srem(rcache: Any) -> None:
    rcache.sadd("s", "a", "b", "c")
    removed = rcache.srem("s", "a", "z")
    assert removed == 1
    assert type(removed) is int
    assert rcache.srem("s", "a") == 0
    assert rcache.srem("missing", "a") == 0
    assert rcache.smembers("s") == {"b", "c"}


def test_a_set_goes_with_its_last_member(rcache: Any) -> None:
    rcache.sadd("s", "a", "b")
    assert rcache.srem("s", "a", "b") == 2
    assert rcache.has_key("s") is False
    assert rcache.keys("*") == []
    assert rcache.add("s", "plain") is True


def test_members_of_every_kind(rcache: Any) -> None:
    """Members are compared by their stored form: 1, "1", True and 1.0 are
    four members (an int is stored as its digits, the others serialized)."""
    assert rcache.sadd("s", 1, "1", True, 1.0) == 4
    assert rcache.scard("s") == 4
    assert rcache.sadd("s", 1, "1") == 0
    assert rcache.smismember("s", 1, "1", True, 1.0, 2, "2") == [True] * 4 + [False] * 2
    members = rcache.smembers("s")
    # A Python set holds one of 1, True and 1.0, which are equal there.
    assert len(members) == 2
    assert "1" in members
    assert 1 in members


def test_int_members_come_back_as_ints(rcache: Any) -> None:
    rcache.sadd("s", 1, -5, 2**62)
    members = rcache.smembers("s")
    assert members == {1, -5, 2**62}
    assert all(type(member) is int for member in members)


def test_members_that_json_can_hold(rcache: Any) -> None:
    rcache.sadd("s", "é", 0.5, None, False, "")
    assert rcache.smembers("s") == {"é", 0.5, None, False, ""}
    assert rcache.sismember("s", None) is True
    assert rcache.sismember("s", "") is True


@pytest.mark.pickle_only("a tuple member: JSON gives back a list, which no set can hold")
def test_tuple_members(rcache: Any) -> None:
    rcache.sadd("s", ("a", 1), frozenset({2}))
    assert rcache.smembers("s") == {("a", 1), frozenset({2})}
    assert rcache.sismember("s", ("a", 1)) is True


def test_sets_are_per_version_and_prefix(make_rcache: Any) -> None:
    cache = make_rcache(KEY_PREFIX="p")
    other = make_rcache(KEY_PREFIX="q")
    cache.sadd("s", "v1")
    cache.sadd("s", "v2", version=2)
    other.sadd("s", "q")
    assert cache.smembers("s") == {"v1"}
    assert cache.smembers("s", version=2) == {"v2"}
    assert cache.sismember("s", "v2") is False
    assert cache.srem("s", "v2", version=2) == 1
    assert cache.has_key("s", version=2) is False
    assert other.smembers("s") == {"q"}


# -- spop and srandmember ----------------------------------------------------------


def test_spop(rcache: Any) -> None:
    rcache.sadd("s", "a", "b", "c")
    popped = rcache.spop("s")
    assert popped in {"a", "b", "c"}
    assert rcache.sismember("s", popped) is False
    assert rcache.scard("s") == 2
    rest = {rcache.spop("s"), rcache.spop("s")}
    assert rest | {popped} == {"a", "b", "c"}
    assert rcache.has_key("s") is False
    assert rcache.spop("s") is None


def test_spop_with_a_count(rcache: Any) -> None:
    rcache.sadd("s", "a", "b", "c", "d")
    popped = rcache.spop("s", 3)
    assert type(popped) is set
    assert len(popped) == 3
    assert popped <= {"a", "b", "c", "d"}
    assert rcache.smembers("s") == {"a", "b", "c", "d"} - popped
    assert rcache.spop("s", 5) == {"a", "b", "c", "d"} - popped
    assert rcache.has_key("s") is False


def test_spop_with_a_count_of_a_missing_key(rcache: Any) -> None:
    assert rcache.spop("missing", 2) == set()


def test_spop_count_zero_pops_nothing(rcache: Any) -> None:
    rcache.sadd("s", "a")
    assert rcache.spop("s", 0) == set()
    assert rcache.smembers("s") == {"a"}


def test_spop_of_an_int_member(rcache: Any) -> None:
    rcache.sadd("s", 42)
    popped = rcache.spop("s")
    assert popped == 42
    assert type(popped) is int


def test_srandmember(rcache: Any) -> None:
    rcache.sadd("s", "a", "b", "c")
    assert rcache.srandmember("s") in {"a", "b", "c"}
    assert rcache.scard("s") == 3
    assert rcache.srandmember("missing") is None


def test_srandmember_with_a_count(rcache: Any) -> None:
    rcache.sadd("s", "a", "b", "c")
    some = rcache.srandmember("s", 2)
    assert type(some) is list
    assert len(some) == 2
    assert len(set(some)) == 2
    assert set(some) <= {"a", "b", "c"}
    assert sorted(rcache.srandmember("s", 10)) == ["a", "b", "c"]
    assert rcache.srandmember("missing", 2) == []
    assert rcache.scard("s") == 3


def test_srandmember_with_a_negative_count_may_repeat(rcache: Any) -> None:
    rcache.sadd("s", "a", "b")
    some = rcache.srandmember("s", -7)
    assert len(some) == 7
    assert set(some) <= {"a", "b"}
    rcache.delete("s")
    rcache.sadd("s", "only")
    assert rcache.srandmember("s", -3) == ["only", "only", "only"]


def test_srandmember_is_random_enough(rcache: Any) -> None:
    rcache.sadd("s", *range(10))
    seen = Counter(rcache.srandmember("s") for _ in range(200))
    assert len(seen) >= 5


# -- smove --------------------------------------------------------------------------


def test_smove(rcache: Any) -> None:
    rcache.sadd("src", "a", "b")
    rcache.sadd("dst", "b", "c")
    assert rcache.smove("src", "dst", "a") is True
    assert rcache.smove("src", "dst", "z") is False
    assert rcache.smembers("src") == {"b"}
    assert rcache.smembers("dst") == {"a", "b", "c"}
    # A member both have leaves the source only.
    assert rcache.smove("src", "dst", "b") is True
    assert rcache.has_key("src") is False
    assert rcache.smembers("dst") == {"a", "b", "c"}


def test_smove_to_a_missing_set_creates_it(rcache: Any) -> None:
    rcache.sadd("src", "a")
    assert rcache.smove("src", "new", "a") is True
    assert rcache.smembers("new") == {"a"}
    assert rcache.has_key("src") is False
    assert rcache.smove("missing", "new", "a") is False


def test_smove_to_itself(rcache: Any) -> None:
    rcache.sadd("s", "a")
    assert rcache.smove("s", "s", "a") is True
    assert rcache.smove("s", "s", "z") is False
    assert rcache.smembers("s") == {"a"}


@unlike_django_redis("smove makes the destination key without version=")
def test_smove_within_a_version(rcache: Any) -> None:
    rcache.sadd("src", "a", version=2)
    assert rcache.smove("src", "dst", "a", version=2) is True
    assert rcache.smembers("dst", version=2) == {"a"}
    assert rcache.has_key("dst") is False


def test_smove_to_another_kind_is_wrongtype(rcache: Any) -> None:
    rcache.sadd("src", "a")
    rcache.set("plain", 1)
    with pytest.raises(WrongType, match=r"^WRONGTYPE"):
        rcache.smove("src", "plain", "a")
    assert rcache.smembers("src") == {"a"}
    assert rcache.get("plain") == 1


def test_smove_from_a_missing_key_is_false_whatever_the_destination(rcache: Any) -> None:
    """Redis answers 0 for a missing source before it checks any type."""
    rcache.set("plain", 1)
    assert rcache.smove("missing", "plain", "a") is False
    assert rcache.get("plain") == 1


def test_smove_of_a_missing_member_into_another_kind_is_wrongtype(rcache: Any) -> None:
    rcache.sadd("src", "a")
    rcache.set("plain", 1)
    with pytest.raises(WrongType, match=r"^WRONGTYPE"):
        rcache.smove("src", "plain", "z")


def test_smove_from_another_kind_is_wrongtype(rcache: Any) -> None:
    rcache.set("plain", 1)
    with pytest.raises(WrongType, match=r"^WRONGTYPE"):
        rcache.smove("plain", "dst", "a")
    assert rcache.has_key("dst") is False


# -- sdiff, sinter, sunion ------------------------------------------------------------


@pytest.fixture
def two_sets(rcache: Any) -> Any:
    rcache.sadd("s1", "a", "b", "c")
    rcache.sadd("s2", "b", "c", "d")
    return rcache


def test_sdiff(two_sets: Any) -> None:
    assert two_sets.sdiff("s1", "s2") == {"a"}
    assert two_sets.sdiff("s2", "s1") == {"d"}
    assert two_sets.sdiff("s1") == {"a", "b", "c"}
    assert two_sets.sdiff("s1", "missing") == {"a", "b", "c"}
    assert two_sets.sdiff("missing", "s1") == set()


def test_sinter(two_sets: Any) -> None:
    assert two_sets.sinter("s1", "s2") == {"b", "c"}
    assert two_sets.sinter("s1") == {"a", "b", "c"}
    assert two_sets.sinter("s1", "s2", "missing") == set()


def test_sunion(two_sets: Any) -> None:
    union = two_sets.sunion("s1", "s2")
    assert union == {"a", "b", "c", "d"}
    assert type(union) is set
    assert two_sets.sunion("s1", "missing") == {"a", "b", "c"}
    assert two_sets.sunion("missing") == set()


def test_set_algebra_per_version(rcache: Any) -> None:
    rcache.sadd("s1", "a", "b", version=2)
    rcache.sadd("s2", "b", version=2)
    rcache.sadd("s2", "a", "b")
    assert rcache.sdiff("s1", "s2", version=2) == {"a"}
    assert rcache.sinter("s1", "s2", version=2) == {"b"}
    assert rcache.sunion("s1", "s2") == {"a", "b"}


def test_sdiffstore(two_sets: Any) -> None:
    stored = two_sets.sdiffstore("dst", "s1", "s2")
    assert stored == 1
    assert type(stored) is int
    assert two_sets.smembers("dst") == {"a"}


def test_sdiffstore_versions(rcache: Any) -> None:
    rcache.sadd("s1", "a", "b", version=2)
    rcache.sadd("s2", "b", version=2)
    assert rcache.sdiffstore("dst", "s1", "s2", version_keys=2) == 1
    assert rcache.smembers("dst") == {"a"}
    assert rcache.sdiffstore("dst", "s1", "s2", version_dest=3, version_keys=2) == 1
    assert rcache.smembers("dst", version=3) == {"a"}
    assert rcache.sdiffstore("dst", "s1", "s2", version_dest=2) == 0


def test_sinterstore(two_sets: Any) -> None:
    assert two_sets.sinterstore("dst", "s1", "s2") == 2
    assert two_sets.smembers("dst") == {"b", "c"}


def test_sunionstore(two_sets: Any) -> None:
    assert two_sets.sunionstore("dst", "s1", "s2") == 4
    assert two_sets.smembers("dst") == {"a", "b", "c", "d"}


def test_store_forms_per_version(rcache: Any) -> None:
    rcache.sadd("s1", "a", version=2)
    rcache.sadd("s2", "b", version=2)
    assert rcache.sunionstore("dst", "s1", "s2", version=2) == 2
    assert rcache.sinterstore("dst2", "s1", "s1", version=2) == 1
    assert rcache.smembers("dst", version=2) == {"a", "b"}
    assert rcache.smembers("dst2", version=2) == {"a"}
    assert rcache.has_key("dst") is False


@pytest.mark.parametrize("verb", ["sdiffstore", "sinterstore", "sunionstore"])
def test_store_forms_overwrite_the_destination(two_sets: Any, verb: str) -> None:
    two_sets.sadd("dst", "old", "b")
    getattr(two_sets, verb)("dst", "s1", "s2")
    assert "old" not in two_sets.smembers("dst")


@pytest.mark.parametrize("verb", ["sdiffstore", "sinterstore", "sunionstore"])
def test_store_forms_overwrite_a_destination_of_another_kind(two_sets: Any, verb: str) -> None:
    """As Redis: the destination is replaced whatever it held."""
    two_sets.hset("dst", "f", "v")
    assert getattr(two_sets, verb)("dst", "s1", "s2") >= 1
    assert two_sets.scard("dst") >= 1
    two_sets.set("plain", "v")
    getattr(two_sets, verb)("plain", "s1", "s2")
    assert two_sets.scard("plain") >= 1


@pytest.mark.parametrize(
    ("verb", "sources"),
    [
        ("sdiffstore", ("s1", "s1")),
        ("sinterstore", ("s1", "missing")),
        ("sunionstore", ("missing", "missing2")),
    ],
)
def test_an_empty_result_deletes_the_destination(two_sets: Any, verb: str, sources: tuple) -> None:
    two_sets.sadd("dst", "old")
    assert getattr(two_sets, verb)("dst", *sources) == 0
    assert two_sets.has_key("dst") is False
    assert two_sets.smembers("dst") == set()


def test_store_into_a_source(two_sets: Any) -> None:
    assert two_sets.sunionstore("s1", "s1", "s2") == 4
    assert two_sets.smembers("s1") == {"a", "b", "c", "d"}
    assert two_sets.sinterstore("s2", "s2", "s1") == 3
    assert two_sets.smembers("s2") == {"b", "c", "d"}


def test_store_forms_keep_the_timeout_off(two_sets: Any, clock: Any) -> None:
    """The destination is a new key: no expiry, even if the old one had."""
    two_sets.sadd("dst", "x")
    two_sets.expire("dst", 10)
    two_sets.sunionstore("dst", "s1")
    assert two_sets.ttl("dst") is None


@pytest.mark.parametrize("verb", ["sdiff", "sinter", "sunion"])
def test_set_algebra_over_another_kind_is_wrongtype(two_sets: Any, verb: str) -> None:
    two_sets.hset("h", "f", "v")
    with pytest.raises(WrongType, match=r"^WRONGTYPE"):
        getattr(two_sets, verb)("s1", "h")
    with pytest.raises(WrongType, match=r"^WRONGTYPE"):
        getattr(two_sets, f"{verb}store")("dst", "s1", "h")
    assert two_sets.has_key("dst") is False


# -- sscan --------------------------------------------------------------------------


def test_sscan(rcache: Any) -> None:
    rcache.sadd("s", "bar1", "bar2", "zoo")
    found = rcache.sscan("s")
    assert found == {"bar1", "bar2", "zoo"}
    assert type(found) is set
    assert rcache.sscan("missing") == set()


def test_sscan_with_match(rcache: Any) -> None:
    rcache.sadd("s", "bar1", "bar2", "zoo")
    assert rcache.sscan("s", match="zoo") == {"zoo"}
    assert rcache.sscan("s", match="bar?") == {"bar1", "bar2"}


def test_sscan_iter(rcache: Any) -> None:
    members = {f"m{i:03}" for i in range(50)}
    rcache.sadd("s", *members)
    iterator = rcache.sscan_iter("s", count=7)
    assert iter(iterator) is iterator
    assert set(iterator) == members
    assert set(rcache.sscan_iter("s", match="m00?")) == {f"m00{i}" for i in range(10)}
    assert list(rcache.sscan_iter("missing")) == []


@ours_only("django-redis globs over the serialized member, which only works for some patterns")
@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("bar*", {"bar", "bar1", "bar12"}),
        ("*1*", {"bar1", "bar12"}),
        ("[bz]*", {"bar", "bar1", "bar12", "zoo", "b*"}),
        ("b\\*", {"b*"}),
        ("b?", {"b*"}),
        # Only str members match, as with django-redis, whose pattern is a
        # serialized str: the int member never does.
        ("*", {"bar", "bar1", "bar12", "zoo", "b*"}),
        ("7", set()),
    ],
)
def test_sscan_globs_over_str_members(rcache: Any, pattern: str, expected: set) -> None:
    rcache.sadd("s", "bar", "bar1", "bar12", "zoo", "b*", 7)
    assert rcache.sscan("s", match=pattern) == expected
    assert set(rcache.sscan_iter("s", match=pattern)) == expected


def test_a_large_set(rcache: Any) -> None:
    members = {f"m{i:04}" for i in range(2500)}
    assert rcache.sadd("s", *members) == 2500
    assert rcache.scard("s") == 2500
    assert set(rcache.sscan_iter("s", count=100)) == members
    assert set(rcache.sscan_iter("s", match="m1???")) == {m for m in members if m[1] == "1"}
    assert len(rcache.spop("s", 1000)) == 1000
    assert rcache.scard("s") == 1500
    assert len(rcache.srandmember("s", 2000)) == 1500
    assert rcache.srem("s", *members) == 1500
    assert rcache.has_key("s") is False


@pytest.mark.parametrize("kind", ["plain", "hash", "zset"])
def test_set_verbs_on_another_kind_are_wrongtype(rcache: Any, kind: str) -> None:
    if kind == "plain":
        rcache.set("k", "value")
    elif kind == "hash":
        rcache.hset("k", "f", "v")
    else:
        rcache.zadd("k", {"m": 1.0})
    for call in (
        lambda: rcache.sadd("k", "m"),
        lambda: rcache.srem("k", "m"),
        lambda: rcache.smembers("k"),
        lambda: rcache.sismember("k", "m"),
        lambda: rcache.smismember("k", "m"),
        lambda: rcache.scard("k"),
        lambda: rcache.spop("k"),
        lambda: rcache.spop("k", 2),
        lambda: rcache.srandmember("k"),
        lambda: rcache.srandmember("k", 2),
        lambda: rcache.smove("k", "other", "m"),
        lambda: rcache.sscan("k"),
        lambda: list(rcache.sscan_iter("k")),
    ):
        with pytest.raises(WrongType, match=r"^WRONGTYPE"):
            call()
    assert rcache.has_key("k") is True
    assert rcache.has_key("other") is False
    if kind == "plain":
        assert rcache.get("k") == "value"


def test_members_are_exact_text(rcache: Any) -> None:
    """No collation folds members together: case, accents, composed and
    decomposed forms, NUL and emoji are all distinct."""
    members = ["e", "E", "é", "e\u0301", "a\x00b", "a", "😀", "e "]
    assert rcache.sadd("s", *members) == len(members)
    assert rcache.smembers("s") == set(members)
    assert rcache.smismember("s", "é", "É", "a\x00") == [True, False, False]
