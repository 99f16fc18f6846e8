"""KeyValCache through Django's cache API, and the methods it adds.

Whatever a Django cache promises is checked here against the database, plus
what a persistent store promises beyond it: binding to named stores, no
eviction unless asked for, and errors that are never swallowed.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import CacheKeyWarning, caches
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils.connection import ConnectionDoesNotExist
from freezegun.api import FrozenDateTimeFactory

import keyval_backend.cache
from keyval_backend import KeyVal
from keyval_backend.cache import INCR_ATTEMPTS, KeyValCache
from keyval_backend.codec import RowCodec
from keyval_backend.models import Entry

KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
NumQueries = Callable[..., Any]


class OtherDatabaseRouter:
    """Sends Entry writes to an alias of its own, to see who picks the database."""

    def db_for_write(self, model: type, **hints: Any) -> str:
        return "routed"


# -- single keys -----------------------------------------------------------------


def test_get_of_a_missing_key_returns_the_default(kv: KeyValCache) -> None:
    assert kv.get("absent") is None
    assert kv.get("absent", "fallback") == "fallback"


ROUND_TRIPS = {
    "json": {"list": [1, 2.5, None], "text": "é🔑", "big": 2**70, "nested": {"a": [{}]}},
    "python": pytest.param(
        {"list": [1, 2.5, None], "tuple": (1, "a"), "bytes": b"\x00\xff", "set": {1}},
        marks=pytest.mark.pickle_only("a tuple, bytes and a set"),
    ),
}


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_set_and_get_round_trip(kv: KeyValCache, value: Any) -> None:
    assert kv.set("k", value) is True  # django-redis's result
    assert kv.get("k") == value
    kv.set("k", "replaced")
    assert kv.get("k") == "replaced"


def test_add_writes_only_a_missing_key(kv: KeyValCache) -> None:
    assert kv.add("k", "first") is True
    assert kv.add("k", "second") is False
    assert kv.get("k") == "first"


def test_add_replaces_an_expired_key(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    kv.set("k", "old", timeout=1)
    frozen.tick(2)
    assert kv.add("k", "new") is True
    assert kv.get("k") == "new"
    assert kv.add("k", "newer") is False


def test_upsert_reports_whether_the_key_was_new(
    kv: KeyValCache, frozen: FrozenDateTimeFactory
) -> None:
    assert kv.upsert("k", 1) is True
    assert kv.upsert("k", 1) is False  # the same value: still an overwrite
    assert kv.upsert("k", 2, timeout=5) is False
    frozen.tick(5)
    assert kv.upsert("k", 3) is True
    assert kv.get("k") == 3


def test_touch_only_touches_existing_keys(kv: KeyValCache) -> None:
    assert kv.touch("absent", 10) is False
    assert not kv.has_key("absent")
    kv.set("k", 1)
    assert kv.touch("k", 10) is True
    assert kv.get("k") == 1


def test_delete_reports_whether_the_key_existed(kv: KeyValCache) -> None:
    kv.set("k", 1)
    assert kv.delete("k") is True
    assert kv.delete("k") is False
    assert kv.get("k") is None


def test_has_key_and_in(kv: KeyValCache) -> None:
    assert not kv.has_key("k")
    assert "k" not in kv
    kv.set("k", None)  # a stored None is a present key
    assert kv.has_key("k")
    assert "k" in kv


def test_get_or_set(kv: KeyValCache) -> None:
    assert kv.get_or_set("k", "computed") == "computed"
    assert kv.get_or_set("k", "other") == "computed"
    assert kv.get_or_set("c", lambda: "called") == "called"
    assert kv.get("c") == "called"


def test_pop(kv: KeyValCache) -> None:
    kv.set("k", [1])
    assert kv.pop("k") == [1]
    assert not kv.has_key("k")
    assert kv.pop("k") is None
    assert kv.pop("k", "fallback") == "fallback"


def test_versions_are_separate_keys(kv: KeyValCache) -> None:
    kv.set("k", "v1")
    kv.set("k", "v2", version=2)
    assert kv.get("k") == "v1"
    assert kv.get("k", version=2) == "v2"
    kv.delete("k", version=2)
    assert kv.get("k") == "v1"


def test_incr_version_and_decr_version_move_the_value(kv: KeyValCache) -> None:
    kv.set("k", "value")
    assert kv.incr_version("k") == 2
    assert kv.get("k") is None
    assert kv.get("k", version=2) == "value"
    assert kv.decr_version("k", version=2) == 1
    assert kv.get("k") == "value"
    assert kv.get("k", version=2) is None
    with pytest.raises(ValueError, match="absent"):
        kv.incr_version("absent")


def test_key_making_is_djangos(make_cache: Callable[..., KeyValCache]) -> None:
    cache = make_cache(KEY_PREFIX="pfx", VERSION=4)
    assert cache.make_key("k") == "pfx:4:k"
    assert cache.make_key("k", version=2) == "pfx:2:k"
    assert cache.make_and_validate_key("k") == "pfx:4:k"
    cache.validate_key("fine")
    with pytest.warns(CacheKeyWarning):
        cache.validate_key("not fine")
    assert cache.get_backend_timeout(None) is None
    assert cache.get_backend_timeout() is None  # TIMEOUT defaults to forever


def test_close_keeps_the_cache_usable(kv: KeyValCache) -> None:
    kv.set("k", 1)
    kv.close()
    assert kv.get("k") == 1


# -- many keys --------------------------------------------------------------------


def test_get_many_returns_present_keys_in_the_callers_order(kv: KeyValCache) -> None:
    kv.set_many({"a": 1, "b": 2, "c": 3})
    assert list(kv.get_many(["c", "missing", "a"]).items()) == [("c", 3), ("a", 1)]
    assert kv.get_many([]) == {}


def test_get_many_accepts_any_iterable_once(kv: KeyValCache) -> None:
    kv.set_many({"a": 1, "b": 2})
    assert kv.get_many(key for key in ["a", "b"]) == {"a": 1, "b": 2}


def test_set_many_writes_every_pair(kv: KeyValCache) -> None:
    kv.set("a", "old")
    assert kv.set_many({"a": 1, "b": [2]}) == []
    assert kv.get_many(["a", "b"]) == {"a": 1, "b": [2]}
    assert kv.set_many({}) == []


def test_delete_many(kv: KeyValCache) -> None:
    kv.set_many({"a": 1, "b": 2, "c": 3})
    kv.delete_many(["a", "c", "missing"])
    assert kv.get_many(["a", "b", "c"]) == {"b": 2}
    kv.delete_many([])


def test_many_keys_in_one_call_beyond_a_batch(kv: KeyValCache) -> None:
    # More rows than one statement holds (MAX_BATCH_ROWS is 1000).
    data = {f"k{i}": i for i in range(2500)}
    kv.set_many(data)
    assert kv.get_many(data) == data
    kv.delete_many(list(data)[:2400])
    assert kv.count() == 100


def test_count_iter_keys_iter_items(kv: KeyValCache) -> None:
    kv.set_many({"p:1": 1, "p:2": 2, "q": 3})
    kv.set("p:3", 3, version=2)
    assert kv.count() == 3
    assert kv.count(version=2) == 1
    assert sorted(kv.iter_keys()) == ["p:1", "p:2", "q"]
    assert sorted(kv.iter_keys("p:*")) == ["p:1", "p:2"]
    assert list(kv.iter_keys("p:*", version=2)) == ["p:3"]
    assert list(kv.iter_keys("p:")) == []  # a glob: "p:" matches only the key "p:"
    assert sorted(kv.iter_items("p")) == [("p:1", 1), ("p:2", 2)]


def test_iteration_yields_each_key_at_most_once_while_keys_change(
    kv: KeyValCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of 3: the writes below land between pages, as another process's would.
    monkeypatch.setattr(keyval_backend.cache, "PAGE_SIZE", 3)
    kept = [f"k{i:02}" for i in range(12)]
    kv.set_many(dict.fromkeys(kept, 0))
    seen = []
    for key in kv.iter_keys():
        if not seen:
            kv.set_many(dict.fromkeys(kept, 1))  # every key rewritten
            kv.delete(kept[5])
            kv.set(kept[5], 2)  # deleted and written again: a new row
            kv.set_many({f"new{i}": i for i in range(6)})
        seen.append(key)
    assert len(seen) == len(set(seen))
    assert set(kept) <= set(seen)  # a key written again keeps its place in the order
    assert len(seen) <= len(kept) + 6


def test_stores_counts_the_live_keys_of_every_store(
    kv: KeyValCache, frozen: FrozenDateTimeFactory
) -> None:
    assert kv.stores() == {}
    kv.set_many({"a": 1, "b": 2})
    kv.set("old", 1, version=2)
    kv.store("other").set("a", 1)
    kv.store("brief").set("a", 1, timeout=1)
    frozen.tick(1)
    assert kv.stores() == {"default": 3, "other": 1}


# -- increments ---------------------------------------------------------------------


def test_incr_and_decr(kv: KeyValCache) -> None:
    kv.set("n", 1)
    assert kv.incr("n") == 2
    assert kv.incr("n", 10) == 12
    assert kv.decr("n") == 11
    assert kv.decr("n", 20) == -9
    assert kv.incr("n", -1) == -10
    assert kv.incr("n", 10) == 0
    assert kv.get("n") == 0


def test_incr_runs_in_sql_and_keeps_the_expiry(
    kv: KeyValCache, frozen: FrozenDateTimeFactory, entry: Callable[..., Entry]
) -> None:
    kv.set("n", 5, timeout=100)
    frozen.tick(40)
    assert kv.incr("n", 2) == 7
    assert kv.ttl("n") == 60
    row = entry(kv, "n")
    assert (row.format, row.number) == ("int", 7)
    frozen.tick(60)
    with pytest.raises(ValueError, match="n"):
        kv.incr("n")


def test_incr_of_a_float_keeps_the_expiry(kv: KeyValCache, frozen: FrozenDateTimeFactory) -> None:
    kv.set("f", 1.5, timeout=100)
    frozen.tick(40)
    assert kv.incr("f", 2) == 3.5
    assert kv.incr("f", 0.25) == 3.75
    assert kv.decr("f", 0.75) == 3.0
    assert kv.get("f") == 3.0
    assert kv.ttl("f") == 60


def lose_incr_races(row: Entry, monkeypatch: pytest.MonkeyPatch, losses: int) -> list[float]:
    """Make the next ``losses`` incrs in Python lose their race: between the
    read and the write, "another process" sets the key (100.0, 200.0, ...).
    Returns those values as they are written."""
    encode = RowCodec.encode
    written: list[float] = []

    def encode_then_lose_the_race(codec: RowCodec, identity: bytes, value: Any) -> Any:
        if len(written) < losses:
            written.append(100.0 * (len(written) + 1))
            fmt, data, number = encode(codec, identity, written[-1])
            Entry.objects.filter(pk=row.pk).update(
                format=fmt, value=data, number=number, writes=F("writes") + 1
            )
        return encode(codec, identity, value)

    monkeypatch.setattr(RowCodec, "encode", encode_then_lose_the_race)
    return written


def test_incr_of_a_float_starts_over_after_a_lost_race(
    kv: KeyValCache, entry: Callable[..., Entry], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its write finds the row changed: it adds to the new value instead, so
    # the other write is not lost.
    kv.set("f", 0.5)
    written = lose_incr_races(entry(kv, "f"), monkeypatch, 3)
    assert kv.incr("f", 1) == 301.0
    assert written == [100.0, 200.0, 300.0]
    assert kv.get("f") == 301.0


def test_incr_of_a_float_gives_up_after_losing_every_race(
    kv: KeyValCache, entry: Callable[..., Entry], monkeypatch: pytest.MonkeyPatch
) -> None:
    kv.set("f", 0.5)
    written = lose_incr_races(entry(kv, "f"), monkeypatch, INCR_ATTEMPTS)
    with pytest.raises(DatabaseError, match="kept losing races"):
        kv.incr("f", 1)
    assert len(written) == INCR_ATTEMPTS
    assert kv.get("f") == written[-1]  # the other writes stand


def test_incr_of_an_int_by_a_float(kv: KeyValCache) -> None:
    kv.set("n", 1)
    assert kv.incr("n", 0.5) == 1.5
    assert kv.get("n") == 1.5


@pytest.mark.parametrize(
    ("start", "delta", "result"),
    [
        (2**63 - 1, 1, 2**63),
        (-(2**63), -1, -(2**63) - 1),
        (1, 2**70, 2**70 + 1),
        (2**100, 1, 2**100 + 1),
        (2**63, -1, 2**63 - 1),
        (2**64, -(2**64), 0),
    ],
    ids=["max+1", "min-1", "huge-delta", "huge-value", "back-into-64-bits", "to-zero"],
)
def test_incr_beyond_64_bits(
    kv: KeyValCache, entry: Callable[..., Entry], start: int, delta: int, result: int
) -> None:
    kv.set("n", start)
    assert kv.incr("n", delta) == result
    assert kv.get("n") == result
    assert type(kv.get("n")) is int
    # Values that fit in 64 bits are native again (so SQL increments them).
    fits = -(2**63) <= result < 2**63
    assert (entry(kv, "n").format == "int") is fits


def test_decr_beyond_64_bits_and_back(kv: KeyValCache) -> None:
    kv.set("n", 2**63 - 2)
    assert kv.incr("n", 3) == 2**63 + 1
    assert kv.decr("n", 3) == 2**63 - 2
    assert kv.incr("n") == 2**63 - 1


def test_incr_of_a_missing_key_is_a_valueerror(kv: KeyValCache) -> None:
    with pytest.raises(ValueError, match="absent"):
        kv.incr("absent")
    with pytest.raises(ValueError, match="absent"):
        kv.decr("absent")
    with pytest.raises(ValueError, match="absent"):
        kv.incr("absent", 0.5)
    assert not kv.has_key("absent")


@pytest.mark.parametrize("value", ["text", [1], None, {"a": 1}], ids=repr)
def test_incr_of_a_non_number_is_a_typeerror(kv: KeyValCache, value: Any) -> None:
    kv.set("k", value)
    with pytest.raises(TypeError):
        kv.incr("k")
    with pytest.raises(TypeError):
        kv.decr("k")
    assert kv.get("k") == value


# -- asynchronous API ----------------------------------------------------------------


def test_every_async_method(kv: KeyValCache) -> None:
    run = async_to_sync
    assert run(kv.aset)("k", 1) is True
    assert run(kv.aget)("k") == 1
    assert run(kv.aget)("absent", "d") == "d"
    assert run(kv.aadd)("k", 2) is False
    assert run(kv.aadd)("a", 2) is True
    assert run(kv.ahas_key)("a") is True
    assert run(kv.atouch)("a", 100) is True
    assert run(kv.aincr)("k", 5) == 6
    assert run(kv.adecr)("k", 2) == 4
    assert run(kv.aupsert)("u", 1) is True
    assert run(kv.aupsert)("u", 2) is False
    assert run(kv.aget_or_set)("g", lambda: "made") == "made"
    assert run(kv.aset_many)({"m1": 1, "m2": 2}) == []
    assert run(kv.aget_many)(["m1", "m2", "absent"]) == {"m1": 1, "m2": 2}
    assert run(kv.adelete_many)(["m1"]) is None
    assert run(kv.apop)("m2") == 2
    assert run(kv.apop)("m2", "gone") == "gone"
    assert run(kv.aincr_version)("u") == 2
    assert kv.get("u", version=2) == 2
    assert run(kv.adecr_version)("u", version=2) == 1
    assert run(kv.adelete)("a") is True
    assert run(kv.adelete)("a") is False
    assert sorted(kv.iter_keys()) == ["g", "k", "u"]
    run(kv.aclose)()
    run(kv.aclear)()
    assert kv.count() == 0


HUNDRED_KEYS = [f"k{i}" for i in range(100)]


@pytest.mark.parametrize(
    ("method", "argument"),
    [
        ("aget_many", HUNDRED_KEYS),
        ("aset_many", dict.fromkeys(HUNDRED_KEYS, "value")),
        ("adelete_many", HUNDRED_KEYS),
    ],
    ids=["aget_many", "aset_many", "adelete_many"],
)
def test_async_batches_are_one_query(
    kv: KeyValCache, django_assert_num_queries: NumQueries, method: str, argument: Any
) -> None:
    kv.set_many({f"k{i}": i for i in range(50)})
    with django_assert_num_queries(1):
        async_to_sync(getattr(kv, method))(argument)


def test_aincr_is_one_query_and_keeps_the_expiry(
    kv: KeyValCache, frozen: FrozenDateTimeFactory, django_assert_num_queries: NumQueries
) -> None:
    # Django 5.2's BaseCache.aincr is get + set: two queries, a lost update
    # under concurrency, and the set replaces the key's expiry.
    kv.set("n", 1, timeout=100)
    frozen.tick(40)
    with django_assert_num_queries(1):
        assert async_to_sync(kv.aincr)("n", 2) == 3
    with django_assert_num_queries(1):
        assert async_to_sync(kv.adecr)("n") == 2
    assert kv.ttl("n") == 60


def test_ahas_key_does_not_read_the_value(kv: KeyValCache, entry: Callable[..., Entry]) -> None:
    # has_key never decodes a value, so an unreadable row is still present;
    # its async twin must agree.
    kv.set("k", "value")
    Entry.objects.filter(pk=entry(kv, "k").pk).update(format="no-such-format")
    assert kv.has_key("k") is True
    assert async_to_sync(kv.ahas_key)("k") is True


# -- stores ------------------------------------------------------------------------


def test_store_binds_the_same_backend_to_another_store(kv: KeyValCache) -> None:
    other = kv.store("other")
    assert isinstance(other, KeyValCache)
    assert (kv.store_name, other.store_name) == ("default", "other")
    kv.set("k", "default's")
    other.set("k", "other's")
    assert kv.get("k") == "default's"
    assert other.get("k") == "other's"
    assert kv.store("other").get("k") == "other's"


def test_store_makes_no_query(kv: KeyValCache, django_assert_num_queries: NumQueries) -> None:
    with django_assert_num_queries(0):
        bound = kv.store("elsewhere")
        assert bound.store_name == "elsewhere"
        assert kv.facade_view("elsewhere").store_name == "elsewhere"


def test_store_names_must_be_str(kv: KeyValCache) -> None:
    with pytest.raises(TypeError, match="str"):
        kv.store(b"bytes")  # type: ignore[arg-type]


def test_aliases_with_one_location_share_a_store(db: None, use_caches: Callable[..., None]) -> None:
    use_caches(
        first={"BACKEND": KEYVAL_BACKEND, "LOCATION": "shared"},
        second={"BACKEND": KEYVAL_BACKEND, "LOCATION": "shared"},
        third={"BACKEND": KEYVAL_BACKEND, "LOCATION": "private"},
        unnamed={"BACKEND": KEYVAL_BACKEND},
    )
    caches["first"].set("k", 1)
    assert caches["second"].get("k") == 1
    assert caches["third"].get("k") is None
    assert caches["unnamed"].get("k") is None
    assert caches["unnamed"].store_name == "default"
    caches["third"].set("k", 3)
    assert caches["first"].get("k") == 1
    assert caches["first"].store("private").get("k") == 3


def test_clear_empties_only_the_bound_store(kv: KeyValCache) -> None:
    kv.set_many({"a": 1, "b": 2})
    other = kv.store("other")
    other.set("a", 1)
    kv.clear()
    assert kv.count() == 0
    assert other.get("a") == 1
    kv.clear()  # an empty store too


def test_flush_all_empties_every_store(kv: KeyValCache) -> None:
    kv.set("a", 1)
    kv.store("other").set("a", 1)
    KeyVal("facade").set("a", 1)
    kv.store("other").flush_all()
    assert Entry.objects.count() == 0
    assert kv.stores() == {}


# -- values that cannot be stored ------------------------------------------------------

# pickle finds functions by name, and a lambda's name leads nowhere: PicklingError.
UNPICKLABLE = lambda: None  # noqa: E731


@pytest.mark.pickle_only("PicklingError; JSON's TypeError is tested in test_serializers_signing")
def test_an_unpicklable_value_is_refused_and_the_old_one_kept(
    kv: KeyValCache, django_assert_num_queries: NumQueries
) -> None:
    kv.set("k", "old")
    unpicklable = UNPICKLABLE
    with django_assert_num_queries(0):  # refused before any SQL
        with pytest.raises(pickle.PickleError):
            kv.set("k", unpicklable)
        with pytest.raises(pickle.PickleError):
            kv.upsert("k", unpicklable)
        with pytest.raises(pickle.PickleError):
            kv.add("new", unpicklable)
        with pytest.raises(pickle.PickleError):
            kv.set_many({"k": "replacement", "new": unpicklable})
    assert kv.get("k") == "old"
    assert not kv.has_key("new")
    assert Entry.objects.count() == 1


# -- key warnings ------------------------------------------------------------------------

MEMCACHED_UNFRIENDLY = ["with space", "tab\there", "x" * 251, "nul\x00"]


@pytest.mark.parametrize("key", MEMCACHED_UNFRIENDLY, ids=["space", "tab", "long", "nul"])
def test_the_cache_api_warns_about_unportable_keys_but_stores_them(
    kv: KeyValCache, key: str
) -> None:
    with pytest.warns(CacheKeyWarning):
        kv.set(key, "stored")
    with pytest.warns(CacheKeyWarning):
        assert kv.get(key) == "stored"
    assert list(kv.iter_keys()) == [key]


@pytest.mark.parametrize("key", MEMCACHED_UNFRIENDLY, ids=["space", "tab", "long", "nul"])
def test_the_facade_never_warns(kv: KeyValCache, key: str) -> None:
    store = KeyVal("s")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.set(key, "stored")
        assert store.get(key) == "stored"
        assert store.exists(key)
        assert list(store.items()) == [(key, "stored")]
        assert store.pop(key) == "stored"
        # A facade view does not change the backend it came from.
        kv.facade_view("s").set(key, 1)
    with pytest.warns(CacheKeyWarning):
        kv.store("s").get(key)


# -- databases, transactions --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_database_errors_propagate(kv: KeyValCache) -> None:
    kv.set("k", 1)
    table = connection.ops.quote_name(Entry._meta.db_table)
    away = connection.ops.quote_name("keyval_backend_entry_away")
    operations: dict[str, Callable[[], Any]] = {
        "get": lambda: kv.get("k"),
        "set": lambda: kv.set("k", 2),
        "add": lambda: kv.add("new", 2),
        "has_key": lambda: kv.has_key("k"),
        "delete": lambda: kv.delete("k"),
        "incr": lambda: kv.incr("k"),
        "get_many": lambda: kv.get_many(["k"]),
        "set_many": lambda: kv.set_many({"k": 2}),
        "pop": lambda: kv.pop("k"),
        "touch": lambda: kv.touch("k"),
        "iter_keys": lambda: list(kv.iter_keys()),
        "count": kv.count,
        "clear": kv.clear,
        "facade get": lambda: KeyVal("default").get("k"),
    }
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {away}")
    try:
        silent = []
        for name, operation in operations.items():
            try:
                operation()
            except DatabaseError:
                continue
            silent.append(name)
        assert silent == [], "these operations hid a database error"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {away} RENAME TO {table}")
    assert kv.get("k") == 1


@pytest.mark.django_db(transaction=True)
def test_a_closed_connection_is_reopened(kv: KeyValCache) -> None:
    # Django closes connections at the end of requests (CONN_MAX_AGE = 0);
    # the next call must open a new one, not reuse anything of the old.
    kv.set("k", 1)
    connection.close()
    assert kv.get("k") == 1
    connection.close()
    kv.set("k", 2)
    assert KeyVal("default").get("k") == 2


def test_writes_in_a_rolled_back_transaction_leave_no_trace(kv: KeyValCache) -> None:
    kv.set_many({"kept": "before", "doomed": "before", "n": 1})

    @transaction.atomic
    def write_then_fail() -> None:
        kv.set("kept", "during")
        kv.set("new", "during")
        kv.add("added", 1)
        kv.delete("doomed")
        kv.incr("n", 10)
        kv.set_many({"many": 1})
        kv.store("other").set("k", 1)
        assert kv.get("kept") == "during"
        raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        write_then_fail()
    assert kv.get_many(["kept", "doomed", "n", "new", "added", "many"]) == {
        "kept": "before",
        "doomed": "before",
        "n": 1,
    }
    assert kv.stores() == {"default": 3}


def test_a_committed_transaction_keeps_its_writes(kv: KeyValCache) -> None:
    with transaction.atomic():
        kv.set("k", 1)
        kv.incr("k")
    assert kv.get("k") == 2


def test_options_database_picks_the_alias(
    make_cache: Callable[..., KeyValCache], settings: Any
) -> None:
    settings.DATABASE_ROUTERS = [f"{__name__}.OtherDatabaseRouter"]
    assert make_cache().database == "routed"
    assert make_cache(OPTIONS={"DATABASE": "default"}).database == "default"
    assert make_cache(OPTIONS={"DATABASE": "default"}).set("k", 1) is True
    nowhere = make_cache(OPTIONS={"DATABASE": "nowhere"})
    assert nowhere.database == "nowhere"
    with pytest.raises(ConnectionDoesNotExist):
        nowhere.get("k")


def test_without_a_router_the_default_database(make_cache: Callable[..., KeyValCache]) -> None:
    assert make_cache().database == "default"


# -- size limits ------------------------------------------------------------------------------


def test_nothing_is_evicted_by_default(kv: KeyValCache) -> None:
    # Django's caches keep at most 300 entries by default; a store keeps all.
    for i in range(500):
        kv.set(f"k{i}", i)
    assert kv.count() == 500
    assert kv.get_many([f"k{i}" for i in range(500)]) == {f"k{i}": i for i in range(500)}


def fill(cache: KeyValCache, frozen: FrozenDateTimeFactory, count: int) -> None:
    """Write k0..k{count-1}, one second apart, so the oldest write is known."""
    for i in range(count):
        cache.set(f"k{i}", i)
        frozen.tick(1)


def test_max_entries_culls_the_oldest_fraction(
    make_cache: Callable[..., KeyValCache], frozen: FrozenDateTimeFactory
) -> None:
    cache = make_cache("culled", OPTIONS={"MAX_ENTRIES": 10, "CULL_FREQUENCY": 2})
    bystander = cache.store("bystander")
    bystander.set_many({f"b{i}": i for i in range(20)})
    fill(cache, frozen, 10)
    assert cache.count() == 10
    cache.set("k10", 10)
    # Full at 10: half of them (the five written first) made room.
    assert sorted(cache.iter_keys(), key=lambda k: int(k[1:])) == [f"k{i}" for i in range(5, 11)]
    assert bystander.count() == 20


def test_culling_drops_expired_entries_first(
    make_cache: Callable[..., KeyValCache], frozen: FrozenDateTimeFactory
) -> None:
    cache = make_cache("culled", OPTIONS={"MAX_ENTRIES": 10, "CULL_FREQUENCY": 2})
    cache.set_many({f"e{i}": i for i in range(3)}, timeout=5)
    fill(cache, frozen, 7)  # ticks past the expiry of e0..e2
    cache.set("k7", 7)
    assert sorted(cache.iter_keys()) == [f"k{i}" for i in range(8)]
    assert Entry.objects.count() == 8


def test_cull_frequency_zero_empties_a_full_store(
    make_cache: Callable[..., KeyValCache], frozen: FrozenDateTimeFactory
) -> None:
    cache = make_cache("culled", OPTIONS={"MAX_ENTRIES": 5, "CULL_FREQUENCY": 0})
    cache.store("bystander").set("b", 1)
    fill(cache, frozen, 5)
    cache.set("last", 1)
    assert list(cache.iter_keys()) == ["last"]
    assert cache.store("bystander").get("b") == 1


def test_culling_applies_to_set_many_and_add(
    make_cache: Callable[..., KeyValCache], frozen: FrozenDateTimeFactory
) -> None:
    cache = make_cache("culled", OPTIONS={"MAX_ENTRIES": 4, "CULL_FREQUENCY": 4})
    fill(cache, frozen, 4)
    cache.set_many({"m1": 1, "m2": 2})
    assert sorted(cache.iter_keys()) == ["k1", "k2", "k3", "m1", "m2"]
    cache.add("a", 1)
    assert cache.count() == 5
    assert not cache.has_key("k1")
