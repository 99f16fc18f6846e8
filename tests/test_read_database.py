"""Which database each operation uses: the write alias, always, unless
``OPTIONS["READ_DATABASE"]`` sends the reads that tolerate staleness elsewhere;
and the one clear error of a write that reaches a database that only reads.

Runs on every database: ``replica`` (tests/settings.py) is a test mirror of
the test database, and each statement is seen on the alias it ran on. The
same promises against a real hot standby are in tests/test_replica.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, connections

from keyval_backend import db
from keyval_backend.cache import KeyValCache
from keyval_backend.exceptions import ReadOnlyDatabase

ALIASES = ["default", "replica"]

# Reads a stale replica may serve: OPTIONS["READ_DATABASE"] moves them.
READS: dict[str, Callable[[KeyValCache], Any]] = {
    "get": lambda c: c.get("k"),
    "get_many": lambda c: c.get_many(["k", "n"]),
    "has_key": lambda c: c.has_key("k"),
    "iter_keys": lambda c: list(c.iter_keys()),
    "iter_items": lambda c: list(c.iter_items()),
    "count": lambda c: c.count(),
}
# Everything else writes, or reads to decide a write: never moved.
WRITES: dict[str, Callable[[KeyValCache], Any]] = {
    "set": lambda c: c.set("k", "w"),
    "add": lambda c: c.add("new", 1),
    "upsert": lambda c: c.upsert("k", "u"),
    "touch": lambda c: c.touch("k", 60),
    "ttl": lambda c: c.ttl("k"),
    "incr": lambda c: c.incr("n"),
    "incr_python": lambda c: c.incr("n", 2**64),
    "pop": lambda c: c.pop("k"),
    "delete": lambda c: c.delete("k"),
    "set_many": lambda c: c.set_many({"a": 1, "b": 2}),
    "delete_many": lambda c: c.delete_many(["a", "b"]),
    "purge_expired": lambda c: c.purge_expired(),
    "clear": lambda c: c.clear(),
    "stores": lambda c: c.stores(),
}


class ReadsToReplica:
    """The usual primary/replica router: reads of every model to the replica."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return "replica"

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "default"


@pytest.fixture
def seen() -> Iterator[list[str]]:
    """The alias of every statement run while the test runs."""
    aliases: list[str] = []

    def spy(alias: str) -> Callable[..., Any]:
        def record(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
            aliases.append(alias)
            return execute(sql, *args)

        return record

    with (
        connections["default"].execute_wrapper(spy("default")),
        connections["replica"].execute_wrapper(spy("replica")),
    ):
        yield aliases


def filled(cache: KeyValCache) -> KeyValCache:
    cache.set("k", "v")
    cache.set("n", 1)
    return cache


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("operation", [*READS.values(), *WRITES.values()], ids=[*READS, *WRITES])
def test_a_router_sending_reads_to_a_replica_moves_nothing(
    make_cache: Callable[..., KeyValCache],
    settings: Any,
    seen: list[str],
    operation: Callable[[KeyValCache], Any],
) -> None:
    # A read of a just-written key must not come from a lagging replica, so
    # the store asks the router for its write database only.
    settings.DATABASE_ROUTERS = [f"{__name__}.ReadsToReplica"]
    cache = filled(make_cache())
    seen.clear()
    operation(cache)
    assert set(seen) == {"default"}


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("operation", READS.values(), ids=READS.keys())
def test_read_database_serves_the_stale_tolerant_reads(
    make_cache: Callable[..., KeyValCache],
    seen: list[str],
    operation: Callable[[KeyValCache], Any],
) -> None:
    cache = filled(make_cache(OPTIONS={"READ_DATABASE": "replica"}))
    seen.clear()
    operation(cache)
    assert set(seen) == {"replica"}


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("operation", WRITES.values(), ids=WRITES.keys())
def test_read_database_leaves_writes_on_the_write_database(
    make_cache: Callable[..., KeyValCache],
    seen: list[str],
    operation: Callable[[KeyValCache], Any],
) -> None:
    cache = filled(make_cache(OPTIONS={"READ_DATABASE": "replica"}))
    seen.clear()
    operation(cache)
    assert set(seen) == {"default"}


@pytest.mark.django_db(databases=ALIASES)
def test_read_database_follows_store_views(
    make_cache: Callable[..., KeyValCache], seen: list[str]
) -> None:
    cache = make_cache(OPTIONS={"READ_DATABASE": "replica"})
    cache.store("other").get("k")
    cache.facade_view("third").get("k")
    assert seen == ["replica", "replica"]


@pytest.mark.parametrize("value", [1, ["replica"], b"replica"])
def test_read_database_must_be_an_alias(make_cache: Callable[..., KeyValCache], value: Any) -> None:
    cache = make_cache(OPTIONS={"READ_DATABASE": value})
    with pytest.raises(ImproperlyConfigured, match="READ_DATABASE"):
        cache.get("k")


# -- a write on a database that only reads -------------------------------------------


@pytest.fixture
def read_only_session() -> Iterator[None]:
    """This connection's next transactions read only, as on a hot standby."""
    statements = {
        "postgresql": (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        ),
        "mysql": ("SET SESSION TRANSACTION READ ONLY", "SET SESSION TRANSACTION READ WRITE"),
        "sqlite": ("PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
    }
    on, off = statements[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(on)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(off)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("debug", [False, True], ids=["lean cursor", "Django's cursor"])
@pytest.mark.parametrize("operation", ["set", "add", "incr", "pop", "set_many", "clear"])
def test_a_write_on_a_read_only_database_names_the_option(
    kv: KeyValCache, settings: Any, read_only_session: None, debug: bool, operation: str
) -> None:
    settings.DEBUG = debug
    assert kv.get("k") is None  # reads work
    with pytest.raises(ReadOnlyDatabase) as raised:
        WRITES[operation](kv)
    message = str(raised.value)
    assert "'default' is read-only" in message
    assert "OPTIONS['DATABASE']" in message
    assert "db_for_write()" in message
    assert "OPTIONS['READ_DATABASE']" in message
    assert isinstance(raised.value, DatabaseError)
    assert isinstance(raised.value.__cause__, DatabaseError)  # Django's, the driver's behind


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("debug", [False, True], ids=["lean cursor", "Django's cursor"])
def test_other_errors_are_left_as_they_are(kv: KeyValCache, settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    with pytest.raises(DatabaseError) as raised:
        db.cursor("default").execute("SELECT no_such_column FROM keyval_backend_entry")
    assert not isinstance(raised.value, ReadOnlyDatabase)
