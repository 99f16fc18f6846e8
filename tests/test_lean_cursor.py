"""The lean path keeps every promise Django's own cursor keeps.

``keyval_backend.db.cursor`` skips Django's cursor wrapper when nothing
observes queries; these tests hold it to what that wrapper does: refuse to run
in an event loop's thread, refuse to query in a transaction marked for
rollback, translate driver errors to ``django.db`` exceptions, reconnect after
a close, show every query to ``execute_wrapper``, ``CaptureQueriesContext`` and
``DEBUG``, and run inside the caller's ``atomic()``. Each is checked on a
connection already in use (the lean cursor's fast path) as well as on a fresh
one where that differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import SynchronousOnlyOperation
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from keyval_backend import db
from keyval_backend.cache import KeyValCache

OPERATIONS: dict[str, Callable[[KeyValCache], Any]] = {
    "get": lambda c: c.get("k"),
    "set": lambda c: c.set("k", "v"),
    "delete": lambda c: c.delete("k"),
    "incr": lambda c: c.incr("n"),
    "get_many": lambda c: c.get_many(["k", "n"]),
}


@pytest.fixture
def used(kv: KeyValCache) -> KeyValCache:
    """The cache after a few statements: the lean cursor exists and the
    connection is open, so the next call takes the fast path."""
    kv.set("k", "v")
    kv.set("n", 1)
    kv.get("k")
    return kv


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_an_event_loop_thread_is_refused(
    used: KeyValCache, operation: Callable[[KeyValCache], Any]
) -> None:
    async def in_the_loop() -> Any:
        return operation(used)

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(in_the_loop())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_an_event_loop_thread_is_refused_on_an_open_connection(
    kv: KeyValCache, operation: Callable[[KeyValCache], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's context gets a connection of its own: opened while Django
    allows it, then used once it no longer does (the lean cursor's fast path,
    where the connection is not opened again)."""
    kv.set("n", 1)

    async def in_the_loop() -> None:
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        try:
            kv.get("k")
            monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE")
            with pytest.raises(SynchronousOnlyOperation):
                operation(kv)
        finally:
            monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
            connection.close()

    asyncio.run(in_the_loop())


@pytest.mark.django_db(transaction=True)
def test_an_event_loop_thread_is_allowed_when_django_allows_it(
    kv: KeyValCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    kv.set("k", "v")

    async def in_the_loop() -> Any:
        # The loop's context has a connection of its own, closed here.
        try:
            return kv.get("k")
        finally:
            connection.close()

    assert asyncio.run(in_the_loop()) == "v"


def test_the_async_api_runs_in_a_thread(used: KeyValCache) -> None:
    # async_to_sync, as Django runs async code: the thread-sensitive calls of
    # the async API come back to this thread and its connection.
    async def in_the_loop() -> Any:
        await used.aset("a", 1)
        return await used.aget("a"), await used.aget_many(["a", "k"])

    assert async_to_sync(in_the_loop)() == (1, {"a": 1, "k": "v"})


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_a_transaction_marked_for_rollback_refuses_queries(
    used: KeyValCache, operation: Callable[[KeyValCache], Any]
) -> None:
    with transaction.atomic():
        used.set("k", "inside")
        transaction.set_rollback(True)
        with pytest.raises(TransactionManagementError):
            operation(used)
    assert used.get("k") == "v"


def test_driver_errors_are_django_errors(used: KeyValCache) -> None:
    cursor = db.cursor(connection.alias)
    # In a savepoint: on PostgreSQL an error aborts the test's transaction.
    with pytest.raises(DatabaseError) as raised, transaction.atomic():
        cursor.execute("SELECT no_such_column FROM keyval_backend_entry")
    assert type(raised.value).__module__ == "django.db.utils"
    assert raised.value.__cause__ is not None  # the driver's own error
    assert used.get("k") == "v"  # and the connection is still usable


@pytest.mark.django_db(transaction=True)
def test_a_closed_connection_is_reopened(kv: KeyValCache) -> None:
    # Outside a transaction: Django itself keeps a connection closed inside
    # atomic() closed until the block ends.
    kv.set("k", "v")
    connection.close()
    assert connection.connection is None
    assert kv.get("k") == "v"
    kv.set("k", "again")
    assert kv.get("k") == "again"


def test_execute_wrappers_see_every_statement(used: KeyValCache) -> None:
    seen: list[str] = []

    def spy(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        for operation in OPERATIONS.values():
            operation(used)
    assert len(seen) == len(OPERATIONS)
    assert all("keyval_backend_entry" in sql for sql in seen)


@pytest.mark.parametrize("debug", [False, True], ids=["DEBUG off", "DEBUG on"])
def test_captured_queries_are_the_statements_run(
    used: KeyValCache, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    with CaptureQueriesContext(connection) as captured:
        for operation in OPERATIONS.values():
            operation(used)
    assert len(captured) == len(OPERATIONS)


def test_debug_logs_queries_without_a_capture(used: KeyValCache, settings: Any) -> None:
    settings.DEBUG = True
    connection.queries_log.clear()
    used.get("k")
    used.set("k", "w")
    assert [q["sql"].split()[0] for q in connection.queries] == ["SELECT", "INSERT"]


def test_statements_join_the_callers_transaction(used: KeyValCache) -> None:
    class Abort(Exception):
        pass

    def write_then_fail() -> None:
        with transaction.atomic():
            used.set("k", "rolled back")
            used.incr("n")
            used.delete("gone")
            assert used.get("k") == "rolled back"
            raise Abort

    with pytest.raises(Abort):
        write_then_fail()
    assert used.get("k") == "v"
    assert used.get("n") == 1
