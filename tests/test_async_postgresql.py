"""PostgreSQL's native driver (keyval_backend.aio.postgresql): pipelined
reads, writes on connections of their own, and what goes wrong on the way.

The behaviour every database shares is tested in test_async_native; these
tests are about the pool: many tasks' statements in flight on one
connection, each answer to its own sender, one statement's error or
cancellation touching no other, and writes that wait for a row lock without
stalling the reads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, OperationalError, ProgrammingError, connection

from keyval_backend.cache import KeyValCache
from tests import test_async_native

# The driver's modules are imported by the tests, which skip elsewhere (and
# without psycopg, the postgres extra, PostgreSQL's tests do not run).
pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's native driver"
)


# A KeyValCache on a committing test database, its dialect built.
cache = test_async_native.cache


def _pool(cache: KeyValCache) -> Any:
    from keyval_backend.aio.postgresql import Pool

    driver = cache._native()
    assert driver is not None
    pool = driver.pool()  # type: ignore[attr-defined]
    assert isinstance(pool, Pool)
    return pool


def _sync_connection() -> Any:
    """A connection of the test's own, outside Django (to hold locks)."""
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    return psycopg.connect(**params)


def test_placeholders_become_numbered_parameters() -> None:
    from keyval_backend.aio.postgresql import _query

    assert _query("SELECT %s, %s") == b"SELECT $1, $2"
    assert _query("SELECT 'a%%b' || %s") == b"SELECT 'a%b' || $1"
    assert _query("SELECT 1") == b"SELECT 1"


def test_every_concurrent_read_gets_its_own_answer(cache: KeyValCache) -> None:
    cache.set_many({f"k{i}": i for i in range(500)})

    async def read_all() -> tuple[list[Any], int, int]:
        await cache.aget("k0")
        values = await asyncio.gather(*(cache.aget(f"k{i}") for i in range(500)))
        pool = _pool(cache)
        return values, pool.most, max(len(c.in_flight) for c in pool.connections)

    values, most, in_flight = asyncio.run(read_all())
    assert values == list(range(500))
    assert most <= 10
    assert in_flight == 0


def test_reads_share_connections_several_statements_in_flight(cache: KeyValCache) -> None:
    cache.set("k", "v")

    async def burst() -> tuple[list[Any], int]:
        await cache.aget("k")
        pool = _pool(cache)
        pool.max_size = 2
        tasks = [asyncio.ensure_future(cache.aget("k")) for _ in range(200)]
        await asyncio.sleep(0)  # every task has sent its statement
        deepest = max(len(c.in_flight) for c in pool.connections)
        return await asyncio.gather(*tasks), deepest

    values, deepest = asyncio.run(burst())
    assert values == ["v"] * 200
    assert deepest > 50  # pipelined, not one at a time


def test_one_reads_error_is_its_own(cache: KeyValCache) -> None:
    cache.set_many({f"k{i}": i for i in range(20)})

    async def mixed() -> list[Any]:
        driver = cache._native()
        assert driver is not None
        await cache.aget("k0")
        # Sent in the same turn of the loop: one group on one connection.
        calls = [cache.aget(f"k{i}") for i in range(10)]
        calls.insert(5, driver.read("SELECT no_such_column FROM keyval_backend_entry", ()))
        calls += [cache.aget(f"k{i}") for i in range(10, 20)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(mixed())
    error = results.pop(5)
    assert isinstance(error, ProgrammingError)
    assert type(error).__module__ == "django.db.utils"
    assert "no_such_column" in str(error)
    assert results == list(range(20))


def test_a_failed_write_leaves_the_reads_and_the_connection_alone(cache: KeyValCache) -> None:
    cache.set("k", "v")

    async def fail_then_use() -> tuple[Any, list[Any], int]:
        driver = cache._native()
        assert driver is not None
        await cache.aget("k")
        pool = _pool(cache)
        reads = [cache.aget("k") for _ in range(50)]
        bad = driver.run("INSERT INTO keyval_backend_entry (id) VALUES (NULL)", ())
        results = await asyncio.gather(bad, *reads, return_exceptions=True)
        return results[0], list(results[1:]), pool.size

    error, values, size = asyncio.run(fail_then_use())
    assert isinstance(error, DatabaseError)
    assert values == ["v"] * 50
    assert size >= 1


def test_a_cancelled_read_drops_its_answer_and_keeps_the_connection(cache: KeyValCache) -> None:
    cache.set("k", "v")

    async def cancel_a_read() -> tuple[list[Any], int, int]:
        driver = cache._native()
        assert driver is not None
        await cache.aget("k")
        pool = _pool(cache)
        before = len(pool.connections)
        task = asyncio.create_task(driver.read("SELECT pg_sleep(0.2)", ()))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)  # its answer arrives, and is dropped
        values = await asyncio.gather(*(cache.aget("k") for _ in range(20)))
        return values, before, len(pool.connections)

    values, before, after = asyncio.run(cancel_a_read())
    assert values == ["v"] * 20
    assert after >= before  # nothing was closed


def test_a_write_waiting_for_a_row_lock_does_not_stall_the_reads(cache: KeyValCache) -> None:
    cache.set_many({"locked": "before", "other": "free"})
    holder = _sync_connection()
    holder.execute(
        "SELECT 1 FROM keyval_backend_entry WHERE store_hash = %s FOR UPDATE",
        (cache._store_hash,),
    )  # the store's rows stay locked until the commit below

    async def write_while_locked() -> tuple[float, list[Any], float]:
        await cache.aget("other")
        started = time.perf_counter()
        threading.Timer(0.5, holder.commit).start()
        write = asyncio.create_task(cache.aset("locked", "after"))
        await asyncio.sleep(0.05)
        values = await asyncio.gather(*(cache.aget("other") for _ in range(100)))
        reads_took = time.perf_counter() - started
        await write
        return reads_took, values, time.perf_counter() - started

    try:
        reads_took, values, write_took = asyncio.run(write_while_locked())
    finally:
        holder.close()
    assert values == ["free"] * 100
    assert reads_took < 0.4  # while the write still waited
    assert write_took >= 0.45
    assert cache.get("locked") == "after"


def test_writes_claim_connections_while_reads_keep_them_busy(cache: KeyValCache) -> None:
    cache.set_many({f"k{i}": i for i in range(100)})

    async def mixed() -> tuple[list[Any], list[Any], int]:
        await cache.aget("k0")
        pool = _pool(cache)
        pool.max_size = 2
        reads = [cache.aget(f"k{i % 100}") for i in range(400)]
        writes = [cache.aset(f"w{i}", i) for i in range(40)]
        results = await asyncio.gather(*reads, *writes)
        after = await cache.aget_many([f"w{i}" for i in range(40)])
        return results[:400], [after[f"w{i}"] for i in range(40)], pool.most

    values, written, most = asyncio.run(mixed())
    assert values == [i % 100 for i in range(400)]
    assert written == list(range(40))
    assert most <= 10  # the pool's first connections, before max_size shrank


def test_a_write_is_seen_by_the_next_read_on_any_connection(cache: KeyValCache) -> None:
    async def write_then_read() -> list[tuple[Any, Any]]:
        seen = []
        for i in range(50):
            # Reads in flight keep other connections busy meanwhile.
            noise = [asyncio.ensure_future(cache.aget("noise")) for _ in range(5)]
            await cache.aset("k", i)
            seen.append((i, await cache.aget("k")))
            await asyncio.gather(*noise)
        return seen

    for i, value in asyncio.run(write_then_read()):
        assert value == i


@pytest.mark.skipif(
    getattr(settings, "KEYVAL_TEST_POOLER", False),
    reason="behind PgBouncer the server's connection is the pooler's, not the pool's",
)
def test_a_connection_the_server_ends_is_replaced(cache: KeyValCache) -> None:
    cache.set("k", "v")

    async def terminate_then_read() -> list[Any]:
        driver = cache._native()
        assert driver is not None
        await cache.aget("k")
        rows, _ = await driver.read("SELECT pg_backend_pid()", ())
        killer = _sync_connection()
        killer.execute("SELECT pg_terminate_backend(%s)", (rows[0][0],))
        killer.close()
        await asyncio.sleep(0.2)  # the loop reads the end of the connection
        results = []
        for _ in range(3):
            try:
                results.append(await cache.aget("k"))
            except OperationalError:
                results.append("failed")
        return results

    results = asyncio.run(terminate_then_read())
    assert results[-2:] == ["v", "v"]


@pytest.fixture
def prepare_threshold() -> Iterator[Callable[[int], None]]:
    """Set ``OPTIONS["prepare_threshold"]`` for the pools the test opens."""
    options = connection.settings_dict["OPTIONS"]
    had, old = "prepare_threshold" in options, options.get("prepare_threshold")

    def use(threshold: int) -> None:
        options["prepare_threshold"] = threshold

    yield use
    if had:
        options["prepare_threshold"] = old
    else:
        options.pop("prepare_threshold", None)


def test_prepare_threshold_prepares_statements_by_name(
    cache: KeyValCache, prepare_threshold: Callable[[int], None]
) -> None:
    prepare_threshold(1)
    cache.set_many({f"k{i}": i for i in range(5)})

    async def reads() -> tuple[list[Any], list[Any]]:
        driver = cache._native()
        assert driver is not None
        values = [await cache.aget(f"k{i}") for i in range(5)]
        values.append(await cache.aget("missing", "default"))
        rows, _ = await driver.read("SELECT name FROM pg_prepared_statements", ())
        return values, rows

    values, rows = asyncio.run(reads())
    assert values == [0, 1, 2, 3, 4, "default"]
    assert any(name.startswith("_keyval_") for (name,) in rows)


def test_a_prepare_skipped_by_another_reads_error_is_prepared_again(
    cache: KeyValCache, prepare_threshold: Callable[[int], None]
) -> None:
    prepare_threshold(0)  # every text prepared at its first use
    cache.set("k", "v")

    async def error_then_reads() -> list[Any]:
        driver = cache._native()
        assert driver is not None
        await driver.read("SELECT 1", ())
        _pool(cache).max_size = 1
        # One group on the one connection: the error first, so the server
        # skips the PREPARE of the read after it.
        bad = driver.read("SELECT no_such_column FROM keyval_backend_entry", ())
        results = await asyncio.gather(bad, cache.aget("k"), return_exceptions=True)
        return [*results, await cache.aget("k"), await cache.ahas_key("k")]

    error, *values = asyncio.run(error_then_reads())
    assert isinstance(error, ProgrammingError)
    assert values == ["v", "v", True]


def test_a_prepared_statement_the_server_dropped_is_prepared_again(
    cache: KeyValCache, prepare_threshold: Callable[[int], None]
) -> None:
    prepare_threshold(0)
    cache.set("k", "v")

    async def drop_then_read() -> list[Any]:
        driver = cache._native()
        assert driver is not None
        assert await cache.aget("k") == "v"  # prepared on the pool's connection
        await driver.read("DEALLOCATE ALL", ())  # as a pooler's DISCARD ALL does
        results: list[Any] = []
        for _ in range(2):
            try:
                results.append(await cache.aget("k"))
            except ProgrammingError as exc:
                results.append(exc)
        return results

    first, second = asyncio.run(drop_then_read())
    assert isinstance(first, ProgrammingError)
    assert "does not exist" in str(first)
    assert second == "v"
