"""The near cache (``OPTIONS["NEAR_CACHE"]``, docs/near_cache.rst).

Outside a transaction only (``transactional_db``): inside one, which is where
pytest-django's ``db`` runs a test, the near cache is bypassed by design.
The other process of the cross-process tests is a real one
(:mod:`tests.near_jobs` run by a :class:`tests.concurrency_worker.WorkerPool`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from keyval_backend import KeyVal, near
from keyval_backend.cache import KeyValCache
from keyval_backend.exceptions import WrongTypeError
from keyval_backend.models import Entry

from . import near_jobs
from .concurrency_worker import WorkerPool
from .conftest import KEYVAL_BACKEND, SERIALIZER

pytestmark = pytest.mark.django_db(transaction=True)

STORE = near_jobs.STORE
# MariaDB's lease in these tests: short, so that waiting it out is quick.
POLL_INTERVAL = 0.2
# How long a write of another process may take to reach a PostgreSQL listener
# here before a test fails (the benchmark measures the real figure).
PUSH_DEADLINE = 5.0


@pytest.fixture(autouse=True)
def fresh_near() -> Iterator[None]:
    """Every test starts with no memory and no watcher (and leaves none)."""
    near.reset()
    yield
    near.reset()


@pytest.fixture
def nc(use_caches: Callable[..., None]) -> KeyValCache:
    """``caches["keyval"]`` on store STORE with the near cache on."""
    use_caches(
        keyval={
            "BACKEND": KEYVAL_BACKEND,
            "LOCATION": STORE,
            "OPTIONS": {"NEAR_CACHE": {"POLL_INTERVAL": POLL_INTERVAL}},
        }
    )
    cache = caches["keyval"]
    assert isinstance(cache, KeyValCache)
    wait_until_current(cache)
    return cache


def wait_until_current(cache: KeyValCache) -> None:
    """Until the watcher trusts memory (PostgreSQL: the listener is up)."""
    memory = cache.near_cache
    assert memory is not None
    deadline = time.monotonic() + PUSH_DEADLINE
    while not memory.watcher.current():
        assert time.monotonic() < deadline, "the near cache never became current"
        time.sleep(0.01)


def eventually(read: Callable[[], Any], expected: Any, within: float) -> float:
    """Seconds until ``read()`` gives ``expected`` (fails after ``within``)."""
    start = time.monotonic()
    while (value := read()) != expected:
        assert time.monotonic() - start < within, f"still {value!r} after {within} s"
        time.sleep(0.005)
    return time.monotonic() - start


def settle(cache: KeyValCache, *keys: str) -> None:
    """Read ``keys`` until memory serves them all. On PostgreSQL this
    process's own writes come back as notifications too, a moment later,
    and drop what was read in between (harmless: one more read)."""
    memory = cache.near_cache
    assert memory is not None
    deadline = time.monotonic() + PUSH_DEADLINE
    while True:
        for key in keys:
            cache.get(key)
        before = memory.stats()["hits"]
        for key in keys:
            cache.get(key)
        if memory.stats()["hits"] - before == len(keys):
            return
        assert time.monotonic() < deadline, "memory never kept the keys"
        time.sleep(0.005)


def held(cache: KeyValCache) -> int:
    memory = cache.near_cache
    assert memory is not None
    return int(memory.stats()["entries"])


# -- reads ---------------------------------------------------------------------------


def test_second_read_comes_from_memory_without_a_query(nc: KeyValCache) -> None:
    nc.set("theme", "dark")
    assert nc.get("theme") == "dark"
    settle(nc, "theme")
    hits = nc.near_cache.stats()["hits"]  # type: ignore[union-attr]
    with CaptureQueriesContext(connection) as queries:
        assert nc.get("theme") == "dark"
        assert nc.has_key("theme")
    assert len(queries) == 0
    assert nc.near_cache.stats()["hits"] == hits + 2  # type: ignore[union-attr]


def test_a_miss_is_remembered_until_the_key_is_written(nc: KeyValCache) -> None:
    assert nc.get("absent", "default") == "default"
    with CaptureQueriesContext(connection) as queries:
        assert nc.get("absent", "other") == "other"
        assert not nc.has_key("absent")
    assert len(queries) == 0
    nc.set("absent", 1)
    assert nc.get("absent") == 1


def test_a_caller_mutating_its_value_cannot_change_the_next_one(nc: KeyValCache) -> None:
    nc.set("prefs", {"tags": ["a"]})
    first = nc.get("prefs")
    first["tags"].append("mutated")
    assert nc.get("prefs") == {"tags": ["a"]}
    assert nc.get("prefs") is not nc.get("prefs")


def test_immutable_values_round_trip(nc: KeyValCache) -> None:
    values: dict[str, Any] = {"s": "text", "i": 2**70, "f": 1.5, "n": None, "l": [1, "x"]}
    if SERIALIZER == "pickle":
        values.update(b=b"\x00bytes", t=(1, "x"))
    for key, value in values.items():
        nc.set(key, value)
    for _ in range(2):
        assert {key: nc.get(key, "missing") for key in values} == values


def test_get_many_takes_what_memory_holds_and_reads_the_rest(nc: KeyValCache) -> None:
    nc.set_many({"a": 1, "b": 2, "c": 3})
    assert nc.get("a") == 1
    assert nc.get("zz") is None
    settle(nc, "a", "zz")
    with CaptureQueriesContext(connection) as queries:
        assert nc.get_many(["a", "zz"]) == {"a": 1}
    assert len(queries) == 0
    assert nc.get_many(["c", "a", "b", "zz"]) == {"c": 3, "a": 1, "b": 2}
    assert list(nc.get_many(["c", "a", "b"])) == ["c", "a", "b"]


def test_expiry_is_honoured_from_memory(nc: KeyValCache, frozen: Any) -> None:
    nc.set("token", "t", timeout=10)
    assert nc.get("token") == "t"
    frozen.tick(9)
    assert nc.get("token") == "t"
    frozen.tick(2)
    assert nc.get("token") is None


def test_memory_is_bounded_least_recently_used_first(use_caches: Callable[..., None]) -> None:
    use_caches(
        keyval={
            "BACKEND": KEYVAL_BACKEND,
            "LOCATION": STORE,
            "OPTIONS": {"NEAR_CACHE": {"MAX_ENTRIES": 3}},
        }
    )
    cache = caches["keyval"]
    wait_until_current(cache)
    cache.set_many({f"k{i}": i for i in range(5)})
    settle(cache, "k0", "k1", "k2")
    cache.get("k3")  # k0 goes: least recently used
    cache.get("k1")  # k1 is now the most recent; k0 went first
    assert held(cache) == 3
    with CaptureQueriesContext(connection) as queries:
        assert cache.get("k1") == 1
        assert cache.get("k3") == 3
    assert len(queries) == 0
    assert cache.near_cache.get(cache._store_hash, cache._key_hash("k0", None)) is near.MISS
    assert cache.get("k0") == 0  # read again from the database


def test_structures_and_locks_are_never_kept(nc: KeyValCache) -> None:
    nc.hset("h", "field", 1)
    for _ in range(2):
        with pytest.raises(WrongTypeError):
            nc.get("h")
    lock = nc.lock("job")
    assert lock.acquire(blocking=False)
    lock.release()
    assert held(nc) == 0


def test_every_thread_and_store_view_shares_one_memory(nc: KeyValCache) -> None:
    other = nc.store("elsewhere")
    nc.set("k", "here")
    other.set("k", "there")
    assert (nc.get("k"), other.get("k")) == ("here", "there")
    assert nc.near_cache is other.near_cache
    settle(nc, "k")
    settle(other, "k")
    assert held(nc) == 2


# -- writes drop what they change, in this process at once ------------------------------

WRITES: dict[str, tuple[Callable[[KeyValCache], Any], Any]] = {
    "set": (lambda c: c.set("k", "new"), "new"),
    "set xx": (lambda c: c.set("k", "new", xx=True), "new"),
    "upsert": (lambda c: c.upsert("k", "new"), "new"),
    "add after delete": (lambda c: (c.delete("k"), c.add("k", "new")), "new"),
    "delete": (lambda c: c.delete("k"), None),
    "pop": (lambda c: c.pop("k"), None),
    "delete_many": (lambda c: c.delete_many(["k", "other"]), None),
    "set_many": (lambda c: c.set_many({"k": "new", "other": 1}), "new"),
    "clear": (lambda c: c.clear(), None),
    "flush_all": (lambda c: c.flush_all(), None),
    "expire 0": (lambda c: c.expire("k", 0), None),
    "delete_pattern": (lambda c: c.delete_pattern("k*"), None),
    "touch 0": (lambda c: c.touch("k", 0), None),
    "KeyVal.set": (lambda c: KeyVal(STORE).set("k", "new"), "new"),
    "KeyVal.delete": (lambda c: KeyVal(STORE).delete("k"), None),
    "admin edit (ORM save)": (lambda c: _orm_set(c, "k", "new"), "new"),
    "admin delete (ORM)": (lambda c: _orm_row(c, "k").delete(), None),
}


def _orm_row(cache: KeyValCache, key: str) -> Entry:
    return Entry.objects.get(store_hash=cache._store_hash, key_hash=cache._key_hash(key, None))


def _orm_set(cache: KeyValCache, key: str, value: Any) -> None:
    row = _orm_row(cache, key)
    row.format, row.value, row.number = cache._codec.encode(cache._identity(row.key_hash), value)
    row.save()


@pytest.mark.parametrize("write", list(WRITES))
def test_a_write_is_read_back_at_once(nc: KeyValCache, write: str) -> None:
    operation, expected = WRITES[write]
    nc.set("k", "old")
    assert nc.get("k") == "old"
    operation(nc)
    assert nc.get("k") == expected


@pytest.mark.parametrize("delta", [1, -1, 2.5])
def test_incr_is_read_back_at_once(nc: KeyValCache, delta: float) -> None:
    nc.set("n", 10)
    assert nc.get("n") == 10
    nc.incr("n", delta)  # type: ignore[arg-type]
    assert nc.get("n") == 10 + delta
    nc.incr("fresh", 5, ignore_key_check=True)
    assert nc.get("fresh") == 5


def test_persist_and_expire_are_read_back(nc: KeyValCache, frozen: Any) -> None:
    nc.set("k", "v", timeout=5)
    assert nc.get("k") == "v"
    assert nc.persist("k")
    frozen.tick(10)
    assert nc.get("k") == "v"
    assert nc.expire("k", 1)
    assert nc.get("k") == "v"
    frozen.tick(2)
    assert nc.get("k") is None


# -- transactions bypass memory --------------------------------------------------------


def test_a_rollback_leaves_nothing_in_memory(nc: KeyValCache) -> None:
    nc.set("k", "committed")
    assert nc.get("k") == "committed"
    seen = []

    def write_then_fail() -> None:
        with transaction.atomic():
            nc.set("k", "rolled back")
            seen.append(nc.get("k"))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert seen == ["rolled back"]  # the transaction read its own write
    assert nc.get("k") == "committed"
    assert nc.get("k") == "committed"


def test_reads_in_a_transaction_go_to_the_database(nc: KeyValCache) -> None:
    nc.set("k", "v")
    nc.get("k")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert nc.get("k") == "v"
    assert len(queries) >= 1


def test_a_commit_drops_what_the_transaction_wrote(nc: KeyValCache) -> None:
    nc.set("k", "old")
    with transaction.atomic():
        nc.set("k", "new")
    assert nc.get("k") == "new"


# -- async -------------------------------------------------------------------------------


def test_aget_hits_memory_and_awrites_drop(nc: KeyValCache) -> None:
    memory = nc.near_cache
    assert memory is not None

    async def hit(key: str) -> Any:
        """``aget`` until memory serves it: on PostgreSQL the notification of
        this process's own write may drop a value read before it arrived."""
        deadline = time.monotonic() + PUSH_DEADLINE
        while True:
            before = memory.stats()["hits"]
            value = await nc.aget(key)
            if memory.stats()["hits"] > before:
                return value
            assert time.monotonic() < deadline, "memory never kept the key"
            await asyncio.sleep(0.005)

    async def scenario() -> list[Any]:
        await nc.aset("k", {"v": 1})
        seen = [await nc.aget("k"), await hit("k")]
        await nc.aset("k", "two")
        seen.append(await nc.aget("k"))
        await nc.adelete("k")
        seen.append(await nc.aget("k", "gone"))
        seen.append(await nc.ahas_key("k"))
        seen.append(await nc.aget_many(["k"]))
        await nc.aclose()
        return seen

    assert asyncio.run(scenario()) == [{"v": 1}, {"v": 1}, "two", "gone", False, {}]


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    [
        [],
        {"MAX_ENTRIES": 0},
        {"MAX_ENTRIES": "10"},
        {"POLL_INTERVAL": 0},
        {"POLL_INTERVAL": float("inf")},
        {"LISTEN_DATABASE": 5},
        {"TYPO": 1},
    ],
)
def test_a_bad_setting_is_a_clear_error(setting: Any) -> None:
    cache = KeyValCache(STORE, {"OPTIONS": {"NEAR_CACHE": setting}})
    with pytest.raises(ImproperlyConfigured, match="NEAR_CACHE"):
        cache.get("k")


def test_off_by_default_and_with_none() -> None:
    assert KeyValCache(STORE, {}).near_cache is None
    assert KeyValCache(STORE, {"OPTIONS": {"NEAR_CACHE": None}}).near_cache is None
    assert KeyValCache(STORE, {"OPTIONS": {"NEAR_CACHE": {}}}).near_cache is not None


# -- other processes -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_process(django_db_setup: None, django_db_blocker: Any) -> Iterator[WorkerPool]:
    """One worker process on the test database: "another web worker"."""
    options = dict(connection.settings_dict["OPTIONS"])
    if connection.vendor == "sqlite":
        options["timeout"] = 30
    pool = WorkerPool(1, {"NAME": connection.settings_dict["NAME"], "OPTIONS": options})
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(params=["delete", "wal"])
def journal(request: pytest.FixtureRequest, django_db_blocker: Any) -> Iterator[str]:
    """SQLite in both journal modes (each its own watcher: the WAL index, or
    PRAGMA data_version); one run elsewhere."""
    if connection.vendor != "sqlite":
        if request.param == "wal":
            pytest.skip("journal modes are SQLite's")
        yield "server"
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f"PRAGMA journal_mode={request.param}")
    near.reset()
    yield request.param
    near.reset()
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=delete")


def within_bound(nc: KeyValCache, key: str, expected: Any) -> float:
    """The read after another process's write: at once on SQLite, after the
    notification on PostgreSQL, after the lease on MariaDB."""
    if connection.vendor == "sqlite":
        assert nc.get(key) == expected
        return 0.0
    if connection.vendor == "mysql":
        return eventually(lambda: nc.get(key), expected, POLL_INTERVAL + 1)
    return eventually(lambda: nc.get(key), expected, PUSH_DEADLINE)


def test_another_process_write_is_seen_within_the_bound(
    journal: str, nc: KeyValCache, other_process: WorkerPool
) -> None:
    nc.set("k", "old")
    assert nc.get("k") == "old"
    assert nc.get("k") == "old"
    other_process.run(near_jobs.set_value, key="k", value="new")
    within_bound(nc, "k", "new")
    other_process.run(near_jobs.delete_key, key="k")
    within_bound(nc, "k", None)


def test_another_process_rollback_changes_nothing(
    journal: str, nc: KeyValCache, other_process: WorkerPool
) -> None:
    nc.set("k", "kept")
    assert nc.get("k") == "kept"
    assert other_process.run(near_jobs.set_then_roll_back, key="k", value="lost") == [
        ["rolled back"]
    ]
    assert nc.get("k") == "kept"
    if connection.vendor == "mysql":
        time.sleep(POLL_INTERVAL * 1.5)
    assert nc.get("k") == "kept"


def test_an_admin_edit_in_another_process_is_seen(
    journal: str, nc: KeyValCache, other_process: WorkerPool
) -> None:
    nc.set("k", "old")
    assert nc.get("k") == "old"
    other_process.run(near_jobs.edit_through_orm, key="k", value="edited")
    within_bound(nc, "k", "edited")


def test_a_killed_listener_reconnects_and_drops_what_it_may_have_missed(
    nc: KeyValCache, other_process: WorkerPool
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's listener")
    listener: Any = nc.near_cache.watcher  # type: ignore[union-attr]
    nc.set("k", "old")
    assert nc.get("k") == "old"
    assert other_process.run(near_jobs.terminate_listeners) == [[1]]
    # Written while nobody may be listening: the notification can be lost.
    other_process.run(near_jobs.set_value, key="k", value="new")
    eventually(lambda: nc.get("k"), "new", PUSH_DEADLINE)
    eventually(lambda: listener.reconnects >= 1 and listener.current(), True, PUSH_DEADLINE)
    assert nc.get("k") == "new"
    nc.get("k")
    assert nc.near_cache.stats()["hits"] >= 1  # type: ignore[union-attr]
