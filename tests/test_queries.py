"""Round trips: every single-key operation, and every batch of a hundred keys,
is exactly one statement on every database.

One statement is also what makes each operation atomic without a transaction,
so a second query here is a bug, not only a slowdown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from keyval_backend import KeyVal
from keyval_backend.cache import KeyValCache

HUNDRED = {f"k{i}": i for i in range(100)}


@pytest.fixture
def warm(kv: KeyValCache) -> KeyValCache:
    """The cache with its dialect built and some keys in place: the first
    statement on a MariaDB connection also reads the server's version."""
    kv.set_many({"present": "value", "n": 1, **dict(list(HUNDRED.items())[:50])})
    kv.set("brief", "value", timeout=100)
    return kv


SINGLE_KEY: dict[str, Callable[[KeyValCache], Any]] = {
    "get hit": lambda c: c.get("present"),
    "get miss": lambda c: c.get("absent"),
    "set new": lambda c: c.set("new", 1),
    "set overwrite": lambda c: c.set("present", "other"),
    "set with timeout": lambda c: c.set("new", 1, timeout=10),
    "add new": lambda c: c.add("new", 1),
    "add existing": lambda c: c.add("present", 1),
    "upsert new": lambda c: c.upsert("new", 1),
    "upsert existing": lambda c: c.upsert("present", 1),
    "delete hit": lambda c: c.delete("present"),
    "delete miss": lambda c: c.delete("absent"),
    "has_key": lambda c: c.has_key("present"),
    "incr": lambda c: c.incr("n"),
    "decr": lambda c: c.decr("n", 5),
    "pop hit": lambda c: c.pop("present"),
    "pop miss": lambda c: c.pop("absent"),
    "touch": lambda c: c.touch("present", 10),
    "persist": lambda c: c.persist("brief"),
    "ttl": lambda c: c.ttl("brief"),
    "get_or_set hit": lambda c: c.get_or_set("present", 1),
    "get_many(100)": lambda c: c.get_many(HUNDRED),
    "set_many(100)": lambda c: c.set_many(HUNDRED),
    "delete_many(100)": lambda c: c.delete_many(HUNDRED),
    "count": lambda c: c.count(),
    "iter_keys (one page)": lambda c: list(c.iter_keys()),
    "iter_items (one page)": lambda c: list(c.iter_items()),
    "stores": lambda c: c.stores(),
    "clear": lambda c: c.clear(),
    "flush_all": lambda c: c.flush_all(),
    "purge_expired": lambda c: c.purge_expired(),
}


@pytest.mark.parametrize("operation", SINGLE_KEY.values(), ids=SINGLE_KEY.keys())
def test_one_query(
    warm: KeyValCache,
    django_assert_num_queries: Callable[..., Any],
    operation: Callable[[KeyValCache], Any],
) -> None:
    with django_assert_num_queries(1):
        operation(warm)


def test_batches_take_one_statement_per_thousand_keys(warm: KeyValCache) -> None:
    data = {f"b{i:04}": i for i in range(2500)}
    with CaptureQueriesContext(connection) as captured:
        warm.set_many(data)
        warm.get_many(data)
        warm.delete_many(data)
    # set_many's INSERTs run in a transaction (or savepoint) of their own.
    # MySQL's are also cut at 96 KB of rows, counted as names, value and 128
    # bytes: 687 rows of this size, so four statements.
    inserts = 4 if connection.vendor == "mysql" else 3
    kinds = Counter(query["sql"].split()[0].upper() for query in captured.captured_queries)
    assert (kinds["INSERT"], kinds["SELECT"], kinds["DELETE"]) == (inserts, 3, 3)


def test_mysql_batches_stay_under_100_kb(warm: KeyValCache) -> None:
    """A statement's text may not grow with the batch (one value of 40 KB
    and small ones): each stays about under 96 KB, however the rows come."""
    data = {f"small{i:04}": i for i in range(300)} | {"big": "x" * 40_000}
    data |= {f"after{i:04}": "y" * 300 for i in range(300)}
    with CaptureQueriesContext(connection) as captured:
        warm.set_many(data)
    inserts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    if connection.vendor == "mysql":
        assert len(inserts) > 1
        assert all(len(sql) < 150 * 1024 for sql in inserts)
    else:
        assert len(inserts) == 1
    assert warm.get_many(data) == data


FACADE: dict[str, Callable[[KeyVal], Any]] = {
    "set": lambda s: s.set("new", 1),
    "set overwrite": lambda s: s.set("present", 2),
    "get": lambda s: s.get("present"),
    "get_default": lambda s: s.get_default("absent"),
    "exists": lambda s: s.exists("present"),
    "in": lambda s: "present" in s,
    "delete": lambda s: s.delete("present"),
    "pop": lambda s: s.pop("present"),
    "pop_default": lambda s: s.pop_default("absent"),
    "len": len,
    "keys": lambda s: list(s.keys()),
    "items": lambda s: list(s.items("p")),
    "flush": lambda s: s.flush(),
    "flush_all": lambda s: s.flush_all(),
}


@pytest.mark.parametrize("operation", FACADE.values(), ids=FACADE.keys())
def test_one_query_through_the_facade(
    warm: KeyValCache,
    django_assert_num_queries: Callable[..., Any],
    operation: Callable[[KeyVal], Any],
) -> None:
    store = KeyVal("default")
    store.exists("warm")  # builds the store-bound view
    with django_assert_num_queries(1):
        operation(store)


def test_a_fresh_keyval_needs_no_extra_query(
    warm: KeyValCache, django_assert_num_queries: Callable[..., Any]
) -> None:
    with django_assert_num_queries(1):
        KeyVal("default").get("present")


@pytest.mark.parametrize("debug", [False, True], ids=["DEBUG off", "DEBUG on"])
def test_capture_queries_sees_the_statements(warm: KeyValCache, settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    with CaptureQueriesContext(connection) as captured:
        warm.set("k", "v")
        warm.get("k")
        warm.get_many(["k", "present"])
        warm.delete("k")
    assert len(captured.captured_queries) == 4
    assert all("keyval_backend_entry" in query["sql"] for query in captured.captured_queries)


def test_nothing_is_queried_without_a_call(
    kv: KeyValCache, django_assert_num_queries: Callable[..., Any]
) -> None:
    with django_assert_num_queries(0):
        KeyVal("lazy")
        kv.store("lazy")
        kv.get_many([])
        kv.set_many({})
        kv.delete_many([])
        keys = KeyVal("lazy").keys()
    with django_assert_num_queries(1):
        assert list(keys) == []
