"""The structure commands whose bodies are steps, on their native async path.

Every test of tests/test_redis_hashes.py, test_redis_sets.py,
test_redis_zsets.py, test_redis_expiry.py and test_redis_keys.py runs again
here with each command that is steps (see keyval_backend/structures/steps.py),
every expiry verb, and ``keys``/``iter_keys``, replaced by its ``a*`` twin,
awaited on one event loop for the module. On SQLite and PostgreSQL a twin
that took Django's thread instead of running in the loop fails the test;
MariaDB has no native driver and takes the thread, so there the same tests
check the thread path.

The native path uses connections of its own, so these tests commit
(``transactional_db``) instead of running inside the test's transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

import keyval_backend.cache
import keyval_backend.structures.base
import keyval_backend.structures.expiry
from keyval_backend.cache import KeyValCache
from tests import (
    test_async_native,
    test_redis_expiry,
    test_redis_hashes,
    test_redis_keys,
    test_redis_sets,
    test_redis_zsets,
)
from tests.conftest import SERIALIZER
from tests.redis_reference import REFERENCE, build_cache, cache_spec
from tests.test_async_native import NATIVE_VENDOR, Awaited
from tests.test_redis_sets import two_sets  # noqa: F401  (a fixture of the tests below)
from tests.test_redis_zsets import five  # noqa: F401  (a fixture of the tests below)

# One event loop for the module, as test_async_native has.
runner = test_async_native.runner

pytestmark = pytest.mark.skipif(REFERENCE, reason="django-redis has no async hash commands")

# The commands whose bodies are steps (the others' twins take the thread),
# the expiry verbs, whose twins are the core's native atouch/adelete, and the
# key listings, which page on the native driver.
NATIVE_TWINS = (
    frozenset(name for name in dir(KeyValCache) if hasattr(getattr(KeyValCache, name), "steps"))
    | {"expire", "pexpire", "expire_at", "pexpire_at", "persist", "ttl", "pttl", "expires_in"}
    | {
        "keys",
        "iter_keys",
    }
)


@pytest.fixture
def no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a database with a native driver, fail any twin that takes the thread."""
    if not NATIVE_VENDOR:
        return

    def refuse(method: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{method.__name__} took the thread")

    async def refuse_core(method: Any, *args: Any) -> Any:
        raise AssertionError(f"{method.__name__} took the thread")

    monkeypatch.setattr(keyval_backend.structures.base, "sync_to_async", refuse)
    monkeypatch.setattr(keyval_backend.structures.expiry, "sync_to_async", refuse)
    monkeypatch.setattr(keyval_backend.cache, "_in_thread", refuse_core)


@pytest.fixture
def make_rcache(
    transactional_db: None, runner: asyncio.Runner, no_thread: None
) -> Callable[..., Awaited]:
    def make(**params: Any) -> Awaited:
        cache = build_cache(cache_spec(SERIALIZER, **params))
        cache.set("warm", 0)  # builds the dialect, as any first call does
        cache.delete("warm")
        return Awaited(cache, runner, NATIVE_TWINS)

    return make


# test_hashes_..., test_sets_..., test_zsets_..., test_expiry_...: the
# modules share names.
for _module in (
    test_redis_hashes,
    test_redis_sets,
    test_redis_zsets,
    test_redis_expiry,
    test_redis_keys,
):
    _structure = _module.__name__.rsplit("_", 1)[1]
    for _name, _test in vars(_module).items():
        if _name.startswith("test_"):
            globals()[f"test_{_structure}_{_name[5:]}"] = _test


def test_the_structure_commands_have_native_twins() -> None:
    for name in (
        *("hset", "hget", "hgetall", "sadd", "spop", "smembers", "smove", "zadd", "zrange"),
        "delete_pattern",
    ):
        assert name in NATIVE_TWINS, name


@pytest.mark.skipif(not NATIVE_VENDOR, reason="MariaDB/MySQL take the thread")
def test_a_hash_command_runs_in_the_loop_on_the_drivers_connection(
    make_rcache: Callable[..., Awaited],
) -> None:
    """What the twin writes, the sync path reads at once, and the other way."""
    cache = make_rcache()
    assert cache.hset("h", "a", 1) == 1
    assert cache._cache.hget("h", "a") == 1
    cache._cache.hset("h", "b", 2)
    assert cache.hgetall("h") == {"a": 1, "b": 2}
    assert connection.vendor in ("sqlite", "postgresql")


@pytest.mark.skipif(not NATIVE_VENDOR, reason="MariaDB/MySQL take the thread")
def test_concurrent_moves_of_one_member_move_it_once(
    make_rcache: Callable[..., Awaited], runner: asyncio.Runner
) -> None:
    """asmove of one member by 20 tasks at once (on PostgreSQL, over several
    connections): one moves it, the others find it gone."""
    cache = make_rcache()._cache
    cache.sadd("src", "m", "other")

    async def race() -> list[bool]:
        moves = (cache.asmove("src", f"to-{n}", "m") for n in range(20))
        return list(await asyncio.gather(*moves))

    moved = runner.run(race())
    assert moved.count(True) == 1
    winner = moved.index(True)
    assert cache.smembers(f"to-{winner}") == {"m"}
    assert cache.smembers("src") == {"other"}
    # The losers' destinations were made and dropped again, or never made.
    assert sorted(cache.keys("to-*")) == [f"to-{winner}"]


@pytest.mark.skipif(not NATIVE_VENDOR, reason="MariaDB/MySQL take the thread")
def test_keys_are_read_a_page_per_statement_as_they_are_iterated(
    make_rcache: Callable[..., Awaited], runner: asyncio.Runner
) -> None:
    cache = make_rcache()._cache
    cache.set_many({f"k{i:02}": i for i in range(25)})

    async def first_page_then_a_write() -> list[str]:
        keys = cache.aiter_keys("k*", itersize=10)
        seen = [await anext(keys) for _ in range(10)]
        # Read after the first page: a key written now is in a later page.
        await cache.aset("k99", 99)
        return seen + [key async for key in keys]

    keys = runner.run(first_page_then_a_write())
    assert keys == [f"k{i:02}" for i in range(25)] + ["k99"]
