"""Timeouts, with the clock under freezegun's control (no test sleeps).

A store keeps what it is given forever unless told otherwise; an expired
entry must be invisible to every read at once, and its row must eventually
go away without anyone calling a cleanup job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import caches
from freezegun.api import FrozenDateTimeFactory

from keyval_backend import KeyVal
from keyval_backend.cache import KeyValCache
from keyval_backend.models import Entry

KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
TEN_YEARS = 10 * 365 * 24 * 3600


def test_no_timeout_means_forever(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    assert kv.default_timeout is None
    kv.set("cache", 1)
    kv.add("added", 1)
    kv.set_many({"many": 1})
    KeyVal("s").set("facade", 1)
    frozen.tick(TEN_YEARS)
    assert kv.get_many(["cache", "added", "many"]) == {"cache": 1, "added": 1, "many": 1}
    assert KeyVal("s").get("facade") == 1
    assert kv.ttl("cache") is None
    assert Entry.objects.filter(expires__isnull=False).count() == 0


def test_an_explicit_none_overrides_a_configured_timeout(
    db: None, use_caches: Callable[..., None], frozen: FrozenDateTimeFactory
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "TIMEOUT": 60})
    cache = caches["keyval"]
    cache.set("default", 1)
    cache.set("forever", 1, timeout=None)
    KeyVal("s").set("facade-default", 1)
    KeyVal("s").set("facade-forever", 1, timeout=None)
    assert cache.ttl("default") == 60
    frozen.tick(60)
    assert cache.get("default") is None
    assert cache.get("forever") == 1
    assert not KeyVal("s").exists("facade-default")
    assert KeyVal("s").get("facade-forever") == 1


@pytest.mark.parametrize("timeout", [0, -1, -3600, -0.5], ids=repr)
def test_zero_and_negative_timeouts_are_never_visible(kv: KeyValCache, timeout: float) -> None:
    kv.set("k", "old")
    kv.set("k", "new", timeout=timeout)
    assert kv.get("k") is None
    assert not kv.has_key("k")
    kv.set_many({"m": 1}, timeout=timeout)
    assert kv.get_many(["m"]) == {}
    KeyVal("s").set("f", 1, timeout=timeout)
    assert not KeyVal("s").exists("f")
    assert kv.count() == 0
    assert KeyVal("s").set("f", 1) is True


def test_float_seconds(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    kv.set("k", 1, timeout=0.5)
    assert kv.expires_in("k") == pytest.approx(0.5)
    assert kv.pttl("k") == 500
    frozen.tick(0.4)
    assert kv.get("k") == 1
    assert kv.expires_in("k") == pytest.approx(0.1)
    frozen.tick(0.1)
    assert kv.get("k") is None


def test_expiry_is_exact_to_the_second(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    kv.set("k", 1, timeout=10)
    frozen.tick(9.999)
    assert kv.has_key("k")
    frozen.tick(0.001)
    assert not kv.has_key("k")


def test_expired_entries_are_invisible_to_every_read(
    kv: KeyValCache, frozen: FrozenDateTimeFactory
) -> None:
    kv.set("gone", "value", timeout=5)
    kv.set("n", 1, timeout=5)
    kv.set("kept", "value")
    KeyVal("s").set("gone", "value", timeout=5)
    frozen.tick(5)
    assert kv.get("gone", "default") == "default"
    assert kv.get_many(["gone", "n", "kept"]) == {"kept": "value"}
    assert not kv.has_key("gone")
    assert "gone" not in kv
    assert kv.count() == 1
    assert list(kv.iter_keys()) == ["kept"]
    assert list(kv.iter_items()) == [("kept", "value")]
    assert kv.stores() == {"default": 1}
    assert kv.ttl("gone") == 0
    with pytest.raises(KeyError):
        kv.expires_in("gone")
    assert kv.pop("gone", "default") == "default"
    assert kv.touch("gone", 100) is False
    assert kv.persist("gone") is False
    assert kv.delete("gone") is False
    with pytest.raises(ValueError, match="n"):
        kv.incr("n")
    assert kv.get_or_set("gone", "fresh") == "fresh"
    store = KeyVal("s")
    assert len(store) == 0
    assert list(store) == []
    assert not store.exists("gone")
    with pytest.raises(KeyError):
        store.get("gone")
    with pytest.raises(KeyError):
        store.pop("gone")
    with pytest.raises(KeyError):
        store.delete("gone")


def test_an_expired_entry_is_not_brought_back_by_touch(
    kv: KeyValCache, frozen: FrozenDateTimeFactory
) -> None:
    kv.set("k", 1, timeout=5)
    frozen.tick(6)
    assert kv.touch("k", None) is False
    assert kv.touch("k", 100) is False
    assert kv.get("k") is None


def test_add_over_an_expired_entry_wins(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    kv.set("k", "old", timeout=5)
    frozen.tick(5)
    assert kv.add("k", "new", timeout=5) is True
    assert kv.get("k") == "new"
    assert kv.ttl("k") == 5
    assert kv.add("k", "newer") is False
    assert kv.get("k") == "new"


def test_set_over_an_expired_entry_takes_the_new_expiry(
    kv: KeyValCache, frozen: FrozenDateTimeFactory
) -> None:
    kv.set("k", "old", timeout=5)
    frozen.tick(3)
    kv.set("k", "new")
    frozen.tick(10)
    assert kv.get("k") == "new"
    assert kv.ttl("k") is None


def test_touch(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    kv.set("k", 1, timeout=10)
    frozen.tick(8)
    assert kv.touch("k", 10) is True
    frozen.tick(8)
    assert kv.get("k") == 1
    assert kv.ttl("k") == 2
    assert kv.touch("k") is True  # the default timeout: forever here
    assert kv.ttl("k") is None
    assert kv.touch("k", 0) is True
    assert kv.get("k") is None


def test_touch_uses_the_configured_timeout(
    db: None, use_caches: Callable[..., None], frozen: FrozenDateTimeFactory
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "TIMEOUT": 30})
    cache = caches["keyval"]
    cache.set("k", 1, timeout=None)
    assert cache.touch("k") is True
    assert cache.ttl("k") == 30


def test_ttl(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    # django-redis's answers: 0 for a missing key, None for a persistent one.
    assert kv.ttl("absent") == 0
    kv.set("forever", 1)
    kv.set("brief", 1, timeout=100)
    assert kv.ttl("forever") is None
    assert kv.ttl("brief") == 100
    frozen.tick(99.4)
    assert kv.ttl("brief") == 1  # rounded, as Redis's TTL
    assert kv.expires_in("brief") == pytest.approx(0.6)
    kv.set("v", 1, timeout=7, version=3)
    assert kv.ttl("v", version=3) == 7
    assert kv.ttl("v") == 0


def test_expires_in(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    """The float form of ttl, with KeyError for a missing key."""
    with pytest.raises(KeyError):
        kv.expires_in("absent")
    kv.set("forever", 1)
    kv.set("brief", 1, timeout=100)
    assert kv.expires_in("forever") is None
    frozen.tick(99.5)
    assert kv.expires_in("brief") == pytest.approx(0.5)


def test_persist(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    assert kv.persist("absent") is False
    kv.set("k", 1, timeout=10)
    assert kv.persist("k") is True
    frozen.tick(TEN_YEARS)
    assert kv.get("k") == 1
    assert kv.ttl("k") is None
    # Redis's PERSIST: True only when an expiry was removed.
    assert kv.persist("k") is False


def test_incr_does_not_extend_or_remove_the_expiry(
    kv: KeyValCache, frozen: FrozenDateTimeFactory
) -> None:
    kv.set("n", 1, timeout=10)
    frozen.tick(5)
    kv.incr("n")
    kv.decr("n", 0.5)
    frozen.tick(5)
    assert not kv.has_key("n")


# -- purging expired rows -------------------------------------------------------------


def test_expiring_writes_purge_expired_rows_of_every_store(
    make_cache: Callable[..., KeyValCache], frozen: FrozenDateTimeFactory
) -> None:
    other = make_cache("other", OPTIONS={"PURGE_EVERY": 0})
    other.set_many({f"e{i}": i for i in range(6)}, timeout=10)
    cache = make_cache("purging", OPTIONS={"PURGE_EVERY": 4, "PURGE_BATCH": 3})
    frozen.tick(20)
    for i in range(3):
        cache.set(f"live{i}", i, timeout=100)
    for i in range(5):
        cache.set(f"persistent{i}", i)  # writes without a timeout are not counted
    assert Entry.objects.count() == 14
    cache.set("live3", 3, timeout=100)  # the fourth expiring write
    assert Entry.objects.count() == 15 - 3
    cache.set_many({f"live{i}": i for i in range(4, 8)}, timeout=100)  # four more
    assert Entry.objects.count() == 16 - 3
    assert cache.count() == 13  # every row left is live
    assert other.count() == 0


def test_purge_every_zero_never_purges(
    make_cache: Callable[..., KeyValCache], frozen: FrozenDateTimeFactory
) -> None:
    cache = make_cache("kept", OPTIONS={"PURGE_EVERY": 0})
    for i in range(20):
        cache.set(f"k{i}", i, timeout=1)
        frozen.tick(2)
    assert Entry.objects.count() == 20
    assert cache.count() == 0


def test_the_default_purges_every_hundred_expiring_writes(
    make_cache: Callable[..., KeyValCache], frozen: FrozenDateTimeFactory
) -> None:
    cache = make_cache()
    cache.set_many({f"old{i}": i for i in range(50)}, timeout=1)
    frozen.tick(2)
    cache.set_many({f"new{i}": i for i in range(49)}, timeout=100)
    assert Entry.objects.count() == 99
    cache.set("new49", 49, timeout=100)
    assert Entry.objects.count() == 50


@pytest.mark.parametrize(
    "bind",
    [
        lambda: KeyVal("s").set,
        lambda: caches["keyval"].store("s").set,
    ],
    ids=["new KeyVal each write", "new store() each write"],
)
def test_purging_does_not_depend_on_reusing_one_object(
    db: None,
    use_caches: Callable[..., None],
    frozen: FrozenDateTimeFactory,
    bind: Callable[[], Callable[..., Any]],
) -> None:
    # Applications write as ``KeyVal("s").set(...)``: the purge schedule must
    # count those writes too, or the table grows without bound.
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"PURGE_EVERY": 3}})
    for i in range(5):
        bind()(f"old{i}", i, timeout=1)
    frozen.tick(2)
    for i in range(6):
        bind()(f"new{i}", i, timeout=100)
    assert Entry.objects.count() == 6


def test_purging_through_one_kept_keyval(
    db: None, use_caches: Callable[..., None], frozen: FrozenDateTimeFactory
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"PURGE_EVERY": 3}})
    store = KeyVal("s")
    for i in range(5):
        store.set(f"old{i}", i, timeout=1)
    frozen.tick(2)
    for i in range(6):
        store.set(f"new{i}", i, timeout=100)
    assert Entry.objects.count() == 6


def test_purge_expired(
    make_cache: Callable[..., KeyValCache], frozen: FrozenDateTimeFactory
) -> None:
    cache = make_cache("a", OPTIONS={"PURGE_EVERY": 0})
    other = cache.store("b")
    cache.set_many({f"a{i}": i for i in range(5)}, timeout=1)
    other.set_many({f"b{i}": i for i in range(3)}, timeout=1)
    cache.set("live", 1, timeout=100)
    other.set("persistent", 1)
    assert cache.purge_expired() == 0
    frozen.tick(1)
    assert cache.purge_expired(limit=5) == 5
    assert Entry.objects.count() == 5
    assert cache.purge_expired() == 3
    assert cache.purge_expired() == 0
    assert sorted(bytes(key) for key in Entry.objects.values_list("key", flat=True)) == [
        b":1:live",
        b":1:persistent",
    ]


def test_purge_expired_defaults_to_purge_batch(
    make_cache: Callable[..., KeyValCache], frozen: FrozenDateTimeFactory
) -> None:
    cache = make_cache(OPTIONS={"PURGE_EVERY": 0, "PURGE_BATCH": 2})
    cache.set_many({f"k{i}": i for i in range(5)}, timeout=1)
    frozen.tick(1)
    assert cache.purge_expired() == 2
    assert cache.purge_expired(limit=10) == 3
