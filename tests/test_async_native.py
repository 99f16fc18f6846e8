"""The async API on its native path (keyval_backend.aio), on every database.

The sync tests of the cache API and of expiry run again here through the
``a*`` methods: the ``kv`` fixture of this module is a KeyValCache whose
methods with an async twin await it, on one event loop for the module. Then
what only the async path has: when it takes the thread, transactions,
several event loops, cancellation, a busy SQLite database.

The native path uses connections of its own, so these tests commit
(``transactional_db``) instead of running inside the test's transaction.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import DatabaseError, connection, connections, transaction

import keyval_backend.cache
from keyval_backend import aio
from keyval_backend.aio import NativeTransactionError
from keyval_backend.aio import sqlite as aio_sqlite
from keyval_backend.cache import KeyValCache
from tests import test_cache_api, test_expiry

NATIVE_VENDOR = connection.vendor in ("sqlite", "postgresql")
# The methods whose async twins the sync tests below exercise.
TWINS = {
    "get", "set", "add", "upsert", "touch", "delete", "has_key", "pop", "incr", "decr",
    "get_or_set", "get_many", "set_many", "delete_many", "ttl", "pttl", "expires_in",
    "incr_version", "decr_version", "clear",
}  # fmt: skip


class Awaited:
    """A KeyValCache whose methods in ``twins`` (TWINS unless given) run
    their ``a*`` twin instead."""

    def __init__(
        self, cache: KeyValCache, runner: asyncio.Runner, twins: frozenset[str] | set[str] = TWINS
    ) -> None:
        self._cache = cache
        self._runner = runner
        self._twins = twins

    def __getattr__(self, name: str) -> Any:
        if name in self._twins:
            twin = getattr(self._cache, f"a{name}")
            return lambda *args, **kwargs: self._runner.run(_awaited(twin(*args, **kwargs)))
        return getattr(self._cache, name)

    def __contains__(self, key: Any) -> bool:
        return bool(self.has_key(key))

    def store(self, name: str) -> Awaited:
        return Awaited(self._cache.store(name), self._runner, self._twins)


async def _awaited(called: Any) -> Any:
    """What an ``a*`` twin gives: a coroutine's result, or an async
    iterator's items as an iterator (the sync method's iterator)."""
    if inspect.isasyncgen(called):
        return iter([item async for item in called])
    return await called


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner
        # The thread path's connections (Django's sync thread for this loop).
        runner.run(sync_to_async(connections.close_all)())


@pytest.fixture
def kv(transactional_db: None, use_caches: Callable[..., None], runner: asyncio.Runner) -> Awaited:
    use_caches(keyval={"BACKEND": "keyval_backend.cache.KeyValCache"})
    from django.core.cache import caches

    return Awaited(caches["keyval"], runner)  # type: ignore[arg-type]


# -- the sync tests, through the async methods ------------------------------------

test_get_of_a_missing_key_returns_the_default = (
    test_cache_api.test_get_of_a_missing_key_returns_the_default
)
test_set_and_get_round_trip = test_cache_api.test_set_and_get_round_trip
test_add_writes_only_a_missing_key = test_cache_api.test_add_writes_only_a_missing_key
test_add_replaces_an_expired_key = test_cache_api.test_add_replaces_an_expired_key
test_upsert_reports_whether_the_key_was_new = (
    test_cache_api.test_upsert_reports_whether_the_key_was_new
)
test_touch_only_touches_existing_keys = test_cache_api.test_touch_only_touches_existing_keys
test_delete_reports_whether_the_key_existed = (
    test_cache_api.test_delete_reports_whether_the_key_existed
)
test_has_key_and_in = test_cache_api.test_has_key_and_in
test_get_or_set = test_cache_api.test_get_or_set
test_pop = test_cache_api.test_pop
test_versions_are_separate_keys = test_cache_api.test_versions_are_separate_keys
test_incr_version_and_decr_version_move_the_value = (
    test_cache_api.test_incr_version_and_decr_version_move_the_value
)
test_get_many_returns_present_keys_in_the_callers_order = (
    test_cache_api.test_get_many_returns_present_keys_in_the_callers_order
)
test_get_many_accepts_any_iterable_once = test_cache_api.test_get_many_accepts_any_iterable_once
test_set_many_writes_every_pair = test_cache_api.test_set_many_writes_every_pair
test_delete_many = test_cache_api.test_delete_many
test_many_keys_in_one_call_beyond_a_batch = test_cache_api.test_many_keys_in_one_call_beyond_a_batch
test_incr_and_decr = test_cache_api.test_incr_and_decr
test_incr_runs_in_sql_and_keeps_the_expiry = (
    test_cache_api.test_incr_runs_in_sql_and_keeps_the_expiry
)
test_incr_of_a_float_keeps_the_expiry = test_cache_api.test_incr_of_a_float_keeps_the_expiry
test_incr_of_an_int_by_a_float = test_cache_api.test_incr_of_an_int_by_a_float
test_incr_beyond_64_bits = test_cache_api.test_incr_beyond_64_bits
test_decr_beyond_64_bits_and_back = test_cache_api.test_decr_beyond_64_bits_and_back
test_incr_of_a_missing_key_is_a_valueerror = (
    test_cache_api.test_incr_of_a_missing_key_is_a_valueerror
)
test_incr_of_a_non_number_is_a_typeerror = test_cache_api.test_incr_of_a_non_number_is_a_typeerror
test_an_unpicklable_value_is_refused_and_the_old_one_kept = (
    test_cache_api.test_an_unpicklable_value_is_refused_and_the_old_one_kept
)
test_the_cache_api_warns_about_unportable_keys_but_stores_them = (
    test_cache_api.test_the_cache_api_warns_about_unportable_keys_but_stores_them
)
test_zero_and_negative_timeouts_are_never_visible = (
    test_expiry.test_zero_and_negative_timeouts_are_never_visible
)
test_float_seconds = test_expiry.test_float_seconds
test_expiry_is_exact_to_the_second = test_expiry.test_expiry_is_exact_to_the_second
test_an_expired_entry_is_not_brought_back_by_touch = (
    test_expiry.test_an_expired_entry_is_not_brought_back_by_touch
)
test_add_over_an_expired_entry_wins = test_expiry.test_add_over_an_expired_entry_wins
test_set_over_an_expired_entry_takes_the_new_expiry = (
    test_expiry.test_set_over_an_expired_entry_takes_the_new_expiry
)
test_touch = test_expiry.test_touch
test_ttl = test_expiry.test_ttl
test_expires_in = test_expiry.test_expires_in
test_incr_does_not_extend_or_remove_the_expiry = (
    test_expiry.test_incr_does_not_extend_or_remove_the_expiry
)


# -- what only the async path has ---------------------------------------------------

native_only = pytest.mark.skipif(not NATIVE_VENDOR, reason="MariaDB/MySQL take the thread")


@pytest.fixture
def cache(transactional_db: None, use_caches: Callable[..., None]) -> KeyValCache:
    use_caches(keyval={"BACKEND": "keyval_backend.cache.KeyValCache"})
    from django.core.cache import caches

    backend = caches["keyval"]
    assert isinstance(backend, KeyValCache)
    backend.set("warm", 0)  # builds the dialect, as any first call does
    return backend


@pytest.fixture
def no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any call that takes the thread path."""

    async def refuse(method: Any, *args: Any) -> Any:
        raise AssertionError(f"{method.__name__} took the thread")

    monkeypatch.setattr(keyval_backend.cache, "_in_thread", refuse)


@native_only
@pytest.mark.usefixtures("no_thread")
def test_every_core_method_runs_without_the_thread(cache: KeyValCache) -> None:
    async def calls() -> None:
        assert await cache.aset("k", {"a": 1}) is True
        assert await cache.aget("k") == {"a": 1}
        assert await cache.aget("absent", "d") == "d"
        assert await cache.aadd("k", 2) is False
        assert await cache.aadd("n", 1, timeout=100) is True
        assert await cache.aset("n", 5, xx=True) is True
        assert await cache.aset("n", 6, nx=True) is False
        assert await cache.aupsert("u", 1) is True
        assert await cache.aincr("n", 3) == 8
        assert await cache.adecr("n") == 7
        assert await cache.aincr("c", 2, ignore_key_check=True) == 2
        assert await cache.ahas_key("n") is True
        assert await cache.atouch("n", 50) is True
        assert await cache.attl("n") == 50
        assert 49 < (await cache.aexpires_in("n") or 0) <= 50
        assert await cache.aset_many({"m1": 1, "m2": [2]}) == []
        assert await cache.aget_many(["m1", "m2", "x"]) == {"m1": 1, "m2": [2]}
        assert await cache.apop("m2") == [2]
        await cache.adelete_many(["m1", "u"])
        assert await cache.adelete("k") is True
        assert await cache.aget_or_set("g", lambda: "made") == "made"
        other = cache.store("other")
        await other.aset("o", 1)
        await other.aclear()
        assert await other.aget("o") is None

    asyncio.run(calls())
    assert cache.get_many(["n", "c", "g", "m1", "u", "k"]) == {"n": 7, "c": 2, "g": "made"}


@native_only
def test_writes_are_seen_at_once_by_the_other_path(cache: KeyValCache) -> None:
    async def write_then_read() -> Any:
        await cache.aset("from async", 1)
        value = await cache.aget("from sync")
        await cache.adelete("gone")
        return value

    cache.set("from sync", 2)
    cache.set("gone", 3)
    assert asyncio.run(write_then_read()) == 2
    assert cache.get("from async") == 1
    assert not cache.has_key("gone")


@native_only
def test_several_event_loops_each_have_and_close_their_own(cache: KeyValCache) -> None:
    driver = aio._drivers[(cache._get_dialect().alias, cache._get_dialect().table)]
    assert driver is not None
    states = []

    async def use() -> None:
        await cache.aset("k", len(states))
        states.append(await driver._state())

    for _ in range(3):
        asyncio.run(use())
    assert len({id(state) for state in states}) == 3
    for state in states:
        if driver.vendor == "postgresql":
            assert state.closed  # type: ignore[attr-defined]
        else:
            with pytest.raises(sqlite3.ProgrammingError):  # closed
                state.inline.execute("SELECT 1")  # type: ignore[attr-defined]
    assert cache.get("k") == 2


@native_only
def test_aclose_closes_the_loops_connections_and_the_next_call_reopens(
    cache: KeyValCache,
) -> None:
    async def close_and_use() -> Any:
        await cache.aset("k", 1)
        await cache.aclose()
        return await cache.aget("k")

    assert asyncio.run(close_and_use()) == 1


def test_a_loop_in_the_thread_of_an_atomic_block_refuses(cache: KeyValCache) -> None:
    if not NATIVE_VENDOR:
        pytest.skip("the thread path has no way to tell")
    with transaction.atomic(), pytest.raises(NativeTransactionError, match="atomic"):
        asyncio.run(cache.aset("k", 1))
    assert not cache.has_key("k")


def test_async_to_sync_in_an_atomic_block_joins_the_transaction(cache: KeyValCache) -> None:
    class Rollback(Exception):
        pass

    @transaction.atomic
    def write_and_roll_back() -> None:
        async_to_sync(cache.aset)("k", 1)
        assert cache.get("k") == 1
        assert async_to_sync(cache.aget)("k") == 1
        raise Rollback

    with pytest.raises(Rollback):
        write_and_roll_back()
    assert not cache.has_key("k")
    assert async_to_sync(cache.aget)("k") is None


def test_debug_takes_the_thread(cache: KeyValCache, settings: Any) -> None:
    settings.DEBUG = True

    async def which() -> Any:
        return cache._native()

    assert asyncio.run(which()) is None


def test_database_errors_are_djangos(cache: KeyValCache) -> None:
    bad = cache.store("bad")
    bad._dialect = None
    if not NATIVE_VENDOR:
        return

    async def run_bad() -> None:
        driver = cache._native()
        assert driver is not None
        await driver.run("SELECT no_such_column FROM keyval_backend_entry", ())

    with pytest.raises(DatabaseError) as raised:
        asyncio.run(run_bad())
    assert type(raised.value).__module__ == "django.db.utils"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's pool")
def test_a_cancelled_statement_leaves_no_broken_connection(cache: KeyValCache) -> None:
    async def cancel_mid_statement() -> Any:
        driver = cache._native()
        assert driver is not None
        await cache.aset("k", "before")
        pool = driver.pool()  # type: ignore[attr-defined]
        task = asyncio.create_task(driver.run("SELECT pg_sleep(10)", ()))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Every connection the pool serves afterwards works.
        values = await asyncio.gather(*(cache.aget("k") for _ in range(30)))
        return values, pool.size, pool.most

    started = time.perf_counter()
    values, size, most = asyncio.run(cancel_mid_statement())
    assert time.perf_counter() - started < 5  # the loop ended without waiting for the sleep
    assert values == ["before"] * 30
    assert size <= most <= 10
    # The server was asked to cancel the statement, not left running it.
    assert _backends_running("SELECT pg_sleep(10)", within=5) == 0


def _backends_running(query: str, within: float) -> int:
    """How many server backends still run ``query`` once ``within`` seconds
    have passed, or as soon as none does (a cancel request is answered
    asynchronously by the server)."""
    deadline = time.monotonic() + within
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND query = %s",
                [query],
            )
            running = int(cursor.fetchone()[0])
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's pool")
def test_a_thousand_concurrent_reads_use_at_most_the_pools_connections(
    cache: KeyValCache,
) -> None:
    cache.set("k", "v")

    async def many() -> tuple[list[Any], int]:
        await cache.aget("k")
        pool = cache._native().pool()  # type: ignore[union-attr]
        values = await asyncio.gather(*(cache.aget("k") for _ in range(1000)))
        return values, pool.most

    values, opened = asyncio.run(many())
    assert values == ["v"] * 1000
    assert opened <= 10


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's busy hand-off")
def test_a_busy_sqlite_database_waits_in_a_thread_not_in_the_loop(cache: KeyValCache) -> None:
    path = connection.settings_dict["NAME"]
    cache.set("k", "before")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, until committed

    async def write_while_locked() -> tuple[Any, float, Any]:
        ticks = []

        async def ticker() -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.001)

        ticking = asyncio.create_task(ticker())
        read = await cache.aget("k")  # reads do not wait for the writer
        threading.Timer(0.3, holder.commit).start()
        started = time.perf_counter()
        await cache.aset("k", "after")  # waits in the thread
        waited = time.perf_counter() - started
        ticking.cancel()
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        return read, waited, max(gaps)

    try:
        read, waited, worst_gap = asyncio.run(write_while_locked())
    finally:
        holder.close()
    assert read == "before"
    assert waited >= 0.25
    assert worst_gap < 0.2  # the loop kept running meanwhile
    assert cache.get("k") == "after"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's inline statements")
def test_a_task_awaiting_inline_statements_back_to_back_lets_others_run(
    cache: KeyValCache,
) -> None:
    cache.set("k", "v")

    async def reads_and_a_ticker() -> tuple[int, float]:
        turns = 0
        done = False

        async def ticker() -> None:
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        started = time.perf_counter()
        for _ in range(2000):  # no await that suspends but the reads' own
            await cache.aget("k")
        took = time.perf_counter() - started
        done = True
        await ticking
        return turns, took

    turns, took = asyncio.run(reads_and_a_ticker())
    # The reads yield once per TURN_BUDGET of inline statements: 2,000 of
    # them take 40 ms or more, so 160 turns or more; without it, one.
    assert took > 20 * aio_sqlite.TURN_BUDGET
    assert turns >= 20


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's busy hand-off")
def test_a_cancelled_wait_for_the_lock_leaves_the_connection_usable(cache: KeyValCache) -> None:
    path = connection.settings_dict["NAME"]
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    async def cancel_then_write() -> Any:
        task = asyncio.create_task(cache.aset("k", "cancelled"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        holder.commit()
        await cache.aset("k", "after")
        return await cache.aget("k")

    try:
        assert asyncio.run(cancel_then_write()) == "after"
    finally:
        holder.close()


@native_only
@pytest.mark.django_db(databases=["default", "replica"], transaction=True)
def test_read_database_serves_the_native_reads_too(use_caches: Callable[..., None]) -> None:
    use_caches(
        keyval={
            "BACKEND": "keyval_backend.cache.KeyValCache",
            "OPTIONS": {"READ_DATABASE": "replica"},
        }
    )
    from django.core.cache import caches

    cache = caches["keyval"]
    cache.set("k", "v")
    assert cache.get("k") == "v"  # builds the replica's dialect, as any first read does

    async def paths() -> tuple[Any, ...]:
        reads, writes = cache._native_read(), cache._native()
        assert reads is not None
        assert writes is not None
        assert await cache.aget("k") == "v"
        assert await cache.aget_many(["k"]) == {"k": "v"}
        assert await cache.ahas_key("k") is True
        read = reads.read
        aliases = []

        async def spy(sql: str, params: Any) -> Any:
            aliases.append(reads.alias)
            return await read(sql, params)

        reads.read = spy  # type: ignore[method-assign]
        try:
            assert await cache.akeys("*") == ["k"]
            assert [key async for key in cache.aiter_keys("k*")] == ["k"]
        finally:
            del reads.read
        assert aliases == ["replica", "replica"]
        assert await cache.aset("k", "w") is True
        return reads.alias, writes.alias

    assert asyncio.run(paths()) == ("replica", "default")
    assert cache.get("k") == "w"


@pytest.mark.skipif(NATIVE_VENDOR, reason="SQLite and PostgreSQL have a driver")
def test_mariadb_takes_the_thread(cache: KeyValCache) -> None:
    async def which() -> Any:
        return cache._native()

    assert asyncio.run(which()) is None
    assert async_to_sync(cache.aset)("k", 1) is True
    assert asyncio.run(cache.aget("k")) == 1
