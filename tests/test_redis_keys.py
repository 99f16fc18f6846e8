"""keys, iter_keys and delete_pattern: Redis glob patterns over the keys as
the user wrote them, of one version and key prefix; and the key verbs
(has_key, delete, clear) on structure keys."""

from __future__ import annotations

from typing import Any

import pytest

from .redis_reference import REFERENCE, WrongType, ours_only, unlike_django_redis

WORDS = [
    "hello",
    "hallo",
    "hxllo",
    "hbllo",
    "hillo",
    "hllo",
    "heeeello",
    "h?llo",
    "h*llo",
    "h[e]llo",
    "Hello",
    "hello!",
    "xhello",
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*", WORDS),
        ("hello", ["hello"]),
        ("HELLO", []),
        ("h?llo", ["hello", "hallo", "hxllo", "hbllo", "hillo", "h?llo", "h*llo"]),
        (
            "h*llo",
            [
                *("hello", "hallo", "hxllo", "hbllo", "hillo", "hllo", "heeeello"),
                *("h?llo", "h*llo", "h[e]llo"),
            ],
        ),
        ("h[ae]llo", ["hello", "hallo"]),
        ("h[^e]llo", ["hallo", "hxllo", "hbllo", "hillo", "h?llo", "h*llo"]),
        ("h[a-b]llo", ["hallo", "hbllo"]),
        # Redis swaps a range given high to low.
        ("h[z-a]llo", ["hello", "hallo", "hxllo", "hbllo", "hillo"]),
        # Only ^ negates in Redis: ! is one of the characters of the class.
        ("h[!e]llo", ["hello"]),
        ("h\\?llo", ["h?llo"]),
        ("h\\*llo", ["h*llo"]),
        ("h\\[e]llo", ["h[e]llo"]),
        ("h[[]e]llo", ["h[e]llo"]),
        ("\\h\\e\\l\\l\\o", ["hello"]),
        ("*!", ["hello!"]),
        ("[Hx]*", ["Hello", "xhello"]),
        ("h??llo", []),
        ("*e*e*", ["heeeello"]),
        ("?", []),
    ],
)
def test_glob(rcache: Any, pattern: str, expected: list[str]) -> None:
    rcache.set_many({word: word for word in WORDS})
    keys = rcache.keys(pattern)
    assert type(keys) is list
    assert all(type(key) is str for key in keys)
    assert sorted(keys) == sorted(expected)
    assert sorted(rcache.iter_keys(pattern)) == sorted(expected)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # What SQL's LIKE would take for wildcards are plain characters in a glob.
        ("a%c", ["a%c"]),
        ("a_c", ["a_c"]),
        ("a%", []),
        ("a_", []),
        ("a?c", ["abc", "a%c", "a_c", "aXc", "a\\c", "a'c"]),
        ("a\\\\c", ["a\\c"]),
        ("a'c", ["a'c"]),
        ("a[%_]c", ["a%c", "a_c"]),
        ("*%*", ["a%c", "100%"]),
    ],
)
def test_glob_treats_sql_wildcards_literally(rcache: Any, pattern: str, expected: list) -> None:
    keys = ["abc", "a%c", "a_c", "aXc", "a\\c", "a'c", "100%", "abcd"]
    rcache.set_many({key: 1 for key in keys})
    assert sorted(rcache.keys(pattern)) == sorted(expected)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("user:*", ["user:1", "user:2", "user:10", "user:"]),
        ("user:?", ["user:1", "user:2"]),
        ("user:1*", ["user:1", "user:10"]),
        ("user*", ["user:1", "user:2", "user:10", "user:", "users", "user"]),
        ("user", ["user"]),
        ("users*", ["users"]),
        ("use[r]:*", ["user:1", "user:2", "user:10", "user:"]),
    ],
)
def test_patterns_with_a_literal_prefix(rcache: Any, pattern: str, expected: list) -> None:
    keys = ["user:1", "user:2", "user:10", "user:", "users", "user", "usen:1", "other"]
    rcache.set_many({key: key for key in keys})
    assert sorted(rcache.keys(pattern)) == sorted(expected)


def test_patterns_match_the_key_not_the_made_key(make_rcache: Any) -> None:
    cache = make_rcache(KEY_PREFIX="pre")
    cache.set("x", 1)
    assert cache.keys("*") == ["x"]
    assert cache.keys("x") == ["x"]
    assert cache.keys("pre*") == []
    assert cache.keys("*:x") == []
    assert cache.keys("*1*") == []
    assert cache.delete_pattern("pre*") == 0
    assert cache.get("x") == 1


def test_keys_of_one_version(rcache: Any) -> None:
    rcache.set("a", 1)
    rcache.set("b", 1, version=2)
    rcache.sadd("s", "m", version=2)
    assert rcache.keys("*") == ["a"]
    assert sorted(rcache.keys("*", version=2)) == ["b", "s"]
    assert list(rcache.iter_keys("*", version=2)) != []
    assert sorted(rcache.iter_keys("*", version=2)) == ["b", "s"]
    assert rcache.keys("*", version=3) == []


def test_keys_of_the_cache_version(make_rcache: Any) -> None:
    cache = make_rcache(VERSION=5)
    cache.set("five", 5)
    cache.set("one", 1, version=1)
    assert cache.keys("*") == ["five"]
    assert cache.keys("*", version=1) == ["one"]


def test_keys_of_one_key_prefix(make_rcache: Any) -> None:
    """A prefix with glob characters in it is matched literally: it does
    not reach another prefix's keys."""
    star = make_rcache(KEY_PREFIX="p*")
    plain = make_rcache(KEY_PREFIX="pq")
    question = make_rcache(KEY_PREFIX="p?")
    star.set("a", 1)
    plain.set("b", 2)
    question.set("c", 3)
    assert star.keys("*") == ["a"]
    assert plain.keys("*") == ["b"]
    assert question.keys("*") == ["c"]
    assert star.delete_pattern("*") == 1
    assert plain.get("b") == 2
    assert question.get("c") == 3


@pytest.mark.parametrize(
    "prefixes",
    [
        pytest.param(("p%", "pq"), id="percent"),
        pytest.param(("p_", "pq"), id="underscore"),
        pytest.param(
            ("p\\", "p:"),
            id="backslash",
            marks=unlike_django_redis("its glob_escape leaves a backslash in KEY_PREFIX as is"),
        ),
        pytest.param(("p[q]", "pq"), id="bracket"),
        pytest.param(("P", "p"), id="case"),
    ],
)
def test_keys_of_a_key_prefix_with_special_characters(make_rcache: Any, prefixes: tuple) -> None:
    special, plain = (make_rcache(KEY_PREFIX=prefix) for prefix in prefixes)
    special.set("a", 1)
    special.hset("h", "f", 1)
    plain.set("b", 2)
    assert sorted(special.keys("*")) == ["a", "h"]
    assert plain.keys("*") == ["b"]
    assert special.delete_pattern("*") == 2
    assert plain.get("b") == 2


def test_keys_of_version_1_are_not_those_of_version_11(rcache: Any) -> None:
    rcache.set("a", 1, version=1)
    rcache.set("b", 11, version=11)
    rcache.set("c", 2, version=2)
    assert rcache.keys("*", version=1) == ["a"]
    assert rcache.keys("*", version=11) == ["b"]
    assert rcache.delete_pattern("*", version=1) == 1
    assert rcache.get("b", version=11) == 11


def test_many_keys_page_by_page(rcache: Any) -> None:
    keys = [f"k{i:04}" for i in range(2500)]
    rcache.set_many({key: 1 for key in keys})
    rcache.set_many({f"other{i}": 1 for i in range(10)})
    assert sorted(rcache.iter_keys("k*", itersize=100)) == keys
    assert sorted(rcache.keys("k1*")) == keys[1000:2000]
    assert rcache.delete_pattern("k*") == 2500
    assert len(rcache.keys("*")) == 10


def test_keys_include_structure_and_lock_keys(rcache: Any) -> None:
    rcache.set("plain", 1)
    rcache.hset("hash", "f", "v")
    rcache.sadd("set", "m")
    rcache.zadd("zset", {"m": 1.0})
    lock = rcache.lock("lock")
    assert lock.acquire(blocking=False)
    try:
        assert sorted(rcache.keys("*")) == ["hash", "lock", "plain", "set", "zset"]
        assert sorted(rcache.iter_keys("*")) == ["hash", "lock", "plain", "set", "zset"]
    finally:
        lock.release()
    assert sorted(rcache.keys("*")) == ["hash", "plain", "set", "zset"]


def test_keys_leave_out_expired_keys(rcache: Any, clock: Any) -> None:
    rcache.set("live", 1)
    rcache.set("dies", 1, timeout=5)
    rcache.sadd("set-dies", "m")
    rcache.expire("set-dies", 5)
    clock.tick(6)
    assert rcache.keys("*") == ["live"]


def test_iter_keys_is_lazy_and_takes_an_itersize(rcache: Any) -> None:
    keys = [f"k{i:03}" for i in range(120)]
    rcache.set_many({key: 1 for key in keys})
    iterator = rcache.iter_keys("k*", itersize=7)
    assert iter(iterator) is iterator
    assert sorted(iterator) == keys
    assert sorted(rcache.iter_keys("k1*")) == keys[100:]


def test_no_keys(rcache: Any) -> None:
    assert rcache.keys("*") == []
    assert list(rcache.iter_keys("*")) == []


# -- delete_pattern -------------------------------------------------------------------


def test_delete_pattern_counts_what_it_deletes(rcache: Any) -> None:
    rcache.set_many({"foo-a1": 1, "foo-a2": 2, "foo-b": 3, "bar-a": 4})
    rcache.hset("foo-ahash", "f", "v")
    rcache.zadd("foo-azset", {"m": 1.0})
    deleted = rcache.delete_pattern("*foo-a*")
    assert type(deleted) is int
    assert deleted == 4
    assert sorted(rcache.keys("*")) == ["bar-a", "foo-b"]
    assert rcache.hlen("foo-ahash") == 0
    assert rcache.zcard("foo-azset") == 0
    assert rcache.delete_pattern("*foo-a*") == 0


def test_delete_pattern_takes_an_itersize(rcache: Any) -> None:
    rcache.set_many({f"k{i}": i for i in range(25)})
    assert rcache.delete_pattern("k*", itersize=3) == 25
    assert rcache.keys("*") == []


def test_delete_pattern_of_one_version(rcache: Any) -> None:
    rcache.set("a", 1)
    rcache.set("a", 2, version=2)
    assert rcache.delete_pattern("a", version=2) == 1
    assert rcache.get("a") == 1
    assert rcache.get("a", version=2) is None


def test_delete_pattern_with_another_prefix(make_rcache: Any) -> None:
    mine = make_rcache(KEY_PREFIX="mine")
    theirs = make_rcache(KEY_PREFIX="theirs")
    mine.set("k", 1)
    theirs.set("k", 2)
    theirs.sadd("s", "m")
    assert mine.delete_pattern("*", prefix="theirs") == 2
    assert theirs.keys("*") == []
    assert mine.get("k") == 1


def test_delete_pattern_leaves_expired_keys_uncounted(rcache: Any, clock: Any) -> None:
    rcache.set("a", 1)
    rcache.set("b", 1, timeout=5)
    clock.tick(6)
    assert rcache.delete_pattern("*") == 1


# -- the key verbs on structure keys -----------------------------------------------------


def _structures(cache: Any) -> None:
    cache.hset("hash", "f", "v")
    cache.sadd("set", "m")
    cache.zadd("zset", {"m": 1.0})


@pytest.mark.parametrize("key", ["hash", "set", "zset"])
def test_has_key_and_delete_a_structure(rcache: Any, key: str) -> None:
    _structures(rcache)
    assert rcache.has_key(key) is True
    assert rcache.delete(key) is True
    assert rcache.has_key(key) is False
    assert rcache.delete(key) is False
    assert rcache.hlen("hash") + rcache.scard("set") + rcache.zcard("zset") == 2


def test_delete_many_deletes_structures(rcache: Any) -> None:
    _structures(rcache)
    rcache.set("plain", 1)
    rcache.delete_many(["hash", "set", "zset"])
    assert rcache.keys("*") == ["plain"]


def test_clear_deletes_structures(rcache: Any) -> None:
    _structures(rcache)
    rcache.set("plain", 1)
    rcache.clear()
    assert rcache.keys("*") == []
    assert rcache.hlen("hash") == 0
    assert rcache.smembers("set") == set()
    assert rcache.zrange("zset", 0, -1) == []


def test_set_replaces_a_structure(rcache: Any) -> None:
    """SET takes any key, whatever it held (as in Redis): the members go."""
    _structures(rcache)
    for key in ("hash", "set", "zset"):
        assert rcache.set(key, "plain") is True
        assert rcache.get(key) == "plain"
    rcache.delete("set")
    assert rcache.sadd("set", "new") == 1
    assert rcache.smembers("set") == {"new"}


def test_add_does_not_replace_a_structure(rcache: Any) -> None:
    _structures(rcache)
    assert rcache.add("hash", "plain") is False
    assert rcache.set("set", "plain", nx=True) is False
    assert rcache.hlen("hash") == 1
    assert rcache.scard("set") == 1


def test_get_many_skips_structures(rcache: Any) -> None:
    _structures(rcache)
    rcache.set("plain", 1)
    assert rcache.get_many(["hash", "set", "zset", "plain", "missing"]) == {"plain": 1}


@pytest.mark.parametrize("key", ["hash", "set", "zset"])
def test_get_of_a_structure_is_wrongtype(rcache: Any, key: str) -> None:
    _structures(rcache)
    with pytest.raises(WrongType, match=r"^WRONGTYPE"):
        rcache.get(key)


@ours_only("Redis matches an unterminated [ leniently; KeyValCache refuses it")
@pytest.mark.parametrize("pattern", ["h[e", "[", "a[^"])
def test_an_unterminated_bracket_is_refused(rcache: Any, pattern: str) -> None:
    rcache.set("hello", 1)
    with pytest.raises(ValueError):  # noqa: PT011  (the contract names the class only)
        rcache.keys(pattern)
    with pytest.raises(ValueError):  # noqa: PT011  (the contract names the class only)
        list(rcache.iter_keys(pattern))
    with pytest.raises(ValueError):  # noqa: PT011  (the contract names the class only)
        rcache.delete_pattern(pattern)
    assert rcache.get("hello") == 1


@ours_only("django-redis formats any pattern into the key; KeyValCache wants a str")
@pytest.mark.parametrize("pattern", [None, 1, b"*", ["*"]])
def test_a_pattern_is_a_str(rcache: Any, pattern: Any) -> None:
    with pytest.raises(TypeError):
        rcache.keys(pattern)
    with pytest.raises(TypeError):
        rcache.delete_pattern(pattern)


@pytest.mark.skipif(REFERENCE, reason="the suite's KeyValCache store only")
def test_keys_stay_within_the_store(make_rcache: Any) -> None:
    cache = make_rcache()
    other = cache.store("another-store")
    cache.set("a", 1)
    other.set("b", 2)
    other.hset("h", "f", "v")
    assert cache.keys("*") == ["a"]
    assert cache.delete_pattern("*") == 1
    assert sorted(other.keys("*")) == ["b", "h"]


# -- no member outlives its key (keyval_backend's Member rows) ---------------------------


@pytest.mark.skipif(REFERENCE, reason="keyval_backend's tables")
def test_no_member_rows_outlive_their_key(rcache: Any, clock: Any) -> None:
    from keyval_backend.models import Member

    def fill() -> None:
        rcache.hset("h", mapping={"a": 1, "b": 2})
        rcache.sadd("s", "x", "y")
        rcache.zadd("z", {"x": 1.0})

    fill()
    assert Member.objects.count() == 5
    rcache.delete("h")
    rcache.delete_many(["s"])
    rcache.delete_pattern("z")
    assert Member.objects.count() == 0
    fill()
    rcache.clear()
    assert Member.objects.count() == 0
    fill()
    for key in ("h", "s", "z"):
        rcache.set(key, "plain")
    assert Member.objects.count() == 0
    rcache.clear()
    fill()
    rcache.sadd("s2", "w")
    rcache.sunionstore("s", "s2")
    rcache.hdel("h", "a", "b")
    rcache.zpopmin("z")
    assert Member.objects.count() == 2  # s: {w}, s2: {w}
    rcache.expire("s", 5)
    rcache.expire("s2", 5)
    clock.tick(6)
    while rcache.purge_expired():
        pass
    assert Member.objects.count() == 0
