"""django-redis's changes to the Django cache API: set(nx=, xx=) returns
whether it wrote, incr(ignore_key_check=) creates a missing counter, delete
returns a bool."""

from __future__ import annotations

from typing import Any

import pytest

from .redis_reference import ours_only

INT64_MAX = 2**63 - 1


def test_set_returns_true(rcache: Any) -> None:
    assert rcache.set("key", "v") is True
    assert rcache.set("key", "w") is True
    assert rcache.get("key") == "w"


def test_set_nx_writes_only_a_missing_key(rcache: Any) -> None:
    assert rcache.set("key", "first", nx=True) is True
    assert rcache.set("key", "second", nx=True) is False
    assert rcache.get("key") == "first"


def test_set_nx_over_an_expired_key(rcache: Any, clock: Any) -> None:
    rcache.set("key", "old", timeout=5)
    clock.tick(6)
    assert rcache.set("key", "new", nx=True) is True
    assert rcache.get("key") == "new"


def test_set_xx_writes_only_an_existing_key(rcache: Any) -> None:
    assert rcache.set("key", "first", xx=True) is False
    assert rcache.has_key("key") is False
    rcache.set("key", "first")
    assert rcache.set("key", "second", xx=True) is True
    assert rcache.get("key") == "second"


def test_set_nx_and_xx_keep_versions_apart(rcache: Any) -> None:
    rcache.set("key", "v1")
    assert rcache.set("key", "v2", nx=True, version=2) is True
    assert rcache.set("key", "v3", xx=True, version=3) is False
    assert rcache.get("key") == "v1"
    assert rcache.get("key", version=2) == "v2"


def test_set_nx_keeps_the_timeout_of_the_key_it_does_not_write(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=10)
    assert rcache.set("key", "w", timeout=100, nx=True) is False
    assert rcache.ttl("key") == 10


def test_set_xx_sets_the_timeout(rcache: Any, clock: Any) -> None:
    rcache.set("key", "v", timeout=None)
    assert rcache.set("key", "w", timeout=30, xx=True) is True
    assert rcache.ttl("key") == 30


def test_delete_returns_a_bool(rcache: Any) -> None:
    rcache.set("key", "v")
    assert rcache.delete("key") is True
    assert rcache.delete("key") is False


def test_delete_many_returns_nothing_useful(rcache: Any) -> None:
    rcache.set_many({"a": 1, "b": 2})
    rcache.delete_many(["a", "b", "c"])
    assert rcache.get_many(["a", "b"]) == {}


# -- incr and decr ------------------------------------------------------------------


def test_incr_and_decr(rcache: Any) -> None:
    rcache.set("n", 1)
    value = rcache.incr("n")
    assert value == 2
    assert type(value) is int
    assert rcache.incr("n", 10) == 12
    assert rcache.decr("n") == 11
    assert rcache.decr("n", 20) == -9
    assert rcache.incr("n", -1) == -10
    assert rcache.get("n") == -10


def test_incr_of_a_missing_key_raises(rcache: Any) -> None:
    with pytest.raises(ValueError, match="not found"):
        rcache.incr("missing")
    with pytest.raises(ValueError, match="not found"):
        rcache.decr("missing")
    assert rcache.has_key("missing") is False


def test_incr_of_an_expired_key_raises(rcache: Any, clock: Any) -> None:
    rcache.set("n", 1, timeout=5)
    clock.tick(6)
    with pytest.raises(ValueError, match="not found"):
        rcache.incr("n")


def test_incr_ignore_key_check_creates_at_delta(rcache: Any) -> None:
    assert rcache.incr("n", ignore_key_check=True) == 1
    assert rcache.get("n") == 1
    rcache.delete("n")
    assert rcache.incr("n", 10, ignore_key_check=True) == 10
    assert rcache.incr("n", 5, ignore_key_check=True) == 15
    assert rcache.get("n") == 15


def test_incr_ignore_key_check_of_a_negative_delta(rcache: Any) -> None:
    assert rcache.incr("n", -3, ignore_key_check=True) == -3


def test_incr_is_per_version(rcache: Any) -> None:
    rcache.set("n", 1)
    rcache.set("n", 100, version=2)
    assert rcache.incr("n", version=2) == 101
    assert rcache.incr("fresh", 7, version=2, ignore_key_check=True) == 7
    assert rcache.get("n") == 1
    assert rcache.get("fresh") is None
    assert rcache.get("fresh", version=2) == 7


def test_incr_past_64_bits(rcache: Any) -> None:
    rcache.set("n", INT64_MAX)
    assert rcache.incr("n") == INT64_MAX + 1
    assert rcache.incr("n", 2) == INT64_MAX + 3
    assert rcache.get("n") == INT64_MAX + 3
    rcache.set("m", INT64_MAX + 1)
    assert rcache.decr("m") == INT64_MAX
    assert rcache.incr("m", ignore_key_check=True) == INT64_MAX + 1


def test_incr_of_a_float(rcache: Any) -> None:
    rcache.set("f", 1.5)
    assert rcache.incr("f") == 2.5
    assert rcache.get("f") == 2.5


def test_incr_of_a_bool_is_as_of_an_int(rcache: Any) -> None:
    rcache.set("b", True)
    assert rcache.incr("b") == 2


@ours_only("django-redis 7's decr has no ignore_key_check")
def test_decr_ignore_key_check_creates_at_minus_delta(rcache: Any, clock: Any) -> None:
    assert rcache.decr("n", 3, ignore_key_check=True) == -3
    assert rcache.ttl("n") is None
    assert rcache.decr("n", ignore_key_check=True) == -4
