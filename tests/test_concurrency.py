"""Races between real processes on a real database.

The backend promises that each single-key operation is one atomic statement:
of racing writers exactly one creates a key, a popped value goes to exactly
one caller, no increment is lost. Only separate processes with their own
connections, released at the same instant, can break such promises, so these
tests run :mod:`tests.concurrency_worker` workers against the committed data
of ``transactional_db``. SQLite runs in WAL mode with a busy timeout, as a
multi-process deployment would; there a "database is locked" is a failure.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from keyval_backend import KeyVal
from keyval_backend.facade import keyval_cache
from keyval_backend.identity import encode_name, name_hash
from keyval_backend.models import Entry

from . import concurrency_worker as jobs
from .concurrency_worker import WorkerPool

PROCESSES = 4
# Seconds a SQLite writer waits for the write lock before "database is locked".
SQLITE_BUSY_TIMEOUT = 30


@pytest.fixture(scope="module")
def workers(django_db_setup: None, django_db_blocker: Any) -> Iterator[WorkerPool]:
    """Worker processes on the test database, shared by the module's tests."""
    options = dict(connection.settings_dict["OPTIONS"])
    sqlite = connection.vendor == "sqlite"
    # Commits that wait for the disk would make these tests measure the disk,
    # not the locking; durability is not what they test.
    if sqlite:
        options["timeout"] = SQLITE_BUSY_TIMEOUT
        options["init_command"] = "PRAGMA synchronous=NORMAL"  # WAL's usual companion
        _journal_mode(django_db_blocker, "wal")
    elif connection.vendor == "postgresql" and not getattr(settings, "KEYVAL_TEST_POOLER", False):
        # (PgBouncer refuses a connection's startup options.)
        options["options"] = "-c synchronous_commit=off"
    database = {"NAME": connection.settings_dict["NAME"], "OPTIONS": options}
    pool = WorkerPool(PROCESSES, database)
    try:
        yield pool
    finally:
        pool.close()
        if sqlite:
            # Leave the file as other test modules expect it.
            _journal_mode(django_db_blocker, "delete")


def _journal_mode(django_db_blocker: Any, mode: str) -> None:
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f"PRAGMA journal_mode={mode}")
        assert cursor.fetchone()[0] == mode


def _key_hashes(keys: list[str], store: str = "default") -> list[str]:
    """The ``key_hash`` of each key as the facade and ``caches["keyval"]`` make it."""
    cache = keyval_cache().store(store)
    return [name_hash(encode_name(cache.make_key(key))) for key in keys]


def _seed_expired(store: str, keys: list[str]) -> None:
    """Rows for ``keys`` that expired a minute ago, without waiting: written
    with a timeout, then moved into the past through the model."""
    keyval_cache().store(store).set_many({key: "stale" for key in keys}, timeout=3600)
    rows = Entry.objects.filter(key_hash__in=_key_hashes(keys, store))
    assert rows.update(expires=time.time() - 60) == len(keys)


def _store_rows(store: str) -> Any:
    return Entry.objects.filter(store_hash=name_hash(encode_name(store)))


def _flatten(results: list[list[Any]]) -> list[Any]:
    return [result for per_worker in results for result in per_worker]


def _report(message: str) -> None:
    """A line for ``pytest -s``: the numbers a reviewer wants per database."""
    print(f"\n[concurrency/{connection.vendor}] {message}")


def _not_once(keys: list[str], counts: Counter[str]) -> dict[str, int]:
    """Keys whose count is not exactly 1, with their counts."""
    return {key: counts[key] for key in keys if counts[key] != 1}


@pytest.mark.parametrize("previous", ["none", "expired"])
def test_set_race_creates_each_key_once(
    transactional_db: None, workers: WorkerPool, previous: str
) -> None:
    """8 writers (4 processes x 2 threads) set the same keys, new or with an
    expired row in place: the upsert reports "new" to exactly one of them,
    and counts every write."""
    keys = [f"race-{previous}-{i:03}" for i in range(200)]
    if previous == "expired":
        _seed_expired("race", keys)
    began = time.monotonic()
    results = workers.run(jobs.set_keys, threads=2, store="race", keys=keys)
    _report(f"set race ({previous}): 8 x {len(keys)} sets in {time.monotonic() - began:.2f}s")

    created = Counter(key for won in _flatten(results) for key in won)
    assert _not_once(keys, created) == {}
    kv = KeyVal("race")
    assert len(kv) == len(keys)
    assert all(kv[key][2] == key for key in keys)
    writes = _store_rows("race").values_list("writes", flat=True)
    assert sorted(writes) == [PROCESSES * 2] * len(keys)


def test_pop_race_hands_out_each_value_once(transactional_db: None, workers: WorkerPool) -> None:
    """4 processes pop the same 2,000 keys in the same order: every value
    reaches exactly one of them and nothing is left behind."""
    keys = [f"pop-{i:04}" for i in range(2000)]
    values = {key: {"key": key, "n": n} for n, key in enumerate(keys)}
    keyval_cache().store("pop").set_many(values)
    began = time.monotonic()
    results = workers.run(jobs.pop_keys, store="pop", keys=keys)
    _report(f"pop race: 4 poppers x {len(keys)} keys in {time.monotonic() - began:.2f}s")

    popped = _flatten(results)
    assert _not_once(keys, Counter(key for got in popped for key in got)) == {}
    assert {key: value for got in popped for key, value in got.items()} == values
    assert not _store_rows("pop").exists()


def pop_keys_without_delete_returning(
    worker: int, thread: int, store: str, keys: list[str]
) -> dict[str, Any]:
    """:func:`jobs.pop_keys` the way MySQL pops, which lacks ``DELETE ...
    RETURNING``: ``SELECT ... FOR UPDATE`` then ``DELETE`` in a transaction
    (MariaDB, which has it, only takes this path here)."""
    from keyval_backend.cache import TABLE
    from keyval_backend.sql import dialect_for

    dialect = dialect_for("default", TABLE)
    dialect.has_delete_returning = False  # type: ignore[attr-defined]
    try:
        return jobs.pop_keys(worker, thread, store, keys)
    finally:
        dialect.has_delete_returning = True  # type: ignore[attr-defined]


def test_pop_race_without_delete_returning_hands_out_each_value_once(
    transactional_db: None, workers: WorkerPool
) -> None:
    """The same race through MySQL's two-statement pop."""
    if connection.vendor != "mysql":
        pytest.skip("MySQL's pop: run on MariaDB")
    keys = [f"pop-{i:04}" for i in range(500)]
    values = {key: {"key": key, "n": n} for n, key in enumerate(keys)}
    keyval_cache().store("pop").set_many(values)
    results = workers.run(pop_keys_without_delete_returning, store="pop", keys=keys)

    popped = _flatten(results)
    assert _not_once(keys, Counter(key for got in popped for key in got)) == {}
    assert {key: value for got in popped for key, value in got.items()} == values
    assert not _store_rows("pop").exists()


@pytest.mark.parametrize(("start", "times"), [(0, 500), (0.5, 100)], ids=["native int", "float"])
def test_incr_race_loses_nothing_and_keeps_expiry(
    transactional_db: None, workers: WorkerPool, start: float, times: int
) -> None:
    """4 processes x ``times`` incr on one expiring key: every increment
    counts, each caller sees a distinct new value, and the expiry stays as it
    was. An int is added in SQL; a float, which SQL cannot add to, is read,
    added in Python and written back only if the row is unchanged, trying
    again otherwise."""
    cache = keyval_cache()
    cache.set("counter", start, timeout=3600)
    (key_hash,) = _key_hashes(["counter"])
    expires = Entry.objects.get(key_hash=key_hash).expires
    began = time.monotonic()
    results = workers.run(jobs.incr_key, key="counter", times=times)
    _report(
        f"incr race ({type(start).__name__}): 4 x {times} incr of one key "
        f"in {time.monotonic() - began:.2f}s"
    )

    seen = sorted(value for values in _flatten(results) for value in values)
    assert seen == [start + n for n in range(1, PROCESSES * times + 1)]
    assert cache.get("counter") == start + PROCESSES * times
    assert Entry.objects.get(key_hash=key_hash).expires == expires


@pytest.mark.parametrize("previous", ["none", "expired"])
def test_add_race_has_one_winner(
    transactional_db: None, workers: WorkerPool, previous: str
) -> None:
    """4 processes add the same keys: one wins each, and its value is the
    one stored, whether the key is new or its row is there but expired."""
    cache = keyval_cache()
    keys = [f"add-{previous}-{i:03}" for i in range(200)]
    if previous == "expired":
        _seed_expired("default", keys)
    began = time.monotonic()
    results = workers.run(jobs.add_keys, keys=keys)
    _report(f"add race ({previous}): 4 x {len(keys)} adds in {time.monotonic() - began:.2f}s")

    winners = {key: [worker, 0, key] for worker, (won,) in enumerate(results) for key in won}
    assert _not_once(keys, Counter(key for (won,) in results for key in won)) == {}
    # As lists: the workers store tuples, which JSON gives back as lists.
    assert {key: list(value) for key, value in cache.get_many(keys).items()} == winners
    writes = Entry.objects.filter(key_hash__in=_key_hashes(keys)).values_list("writes", flat=True)
    assert sorted(writes) == [1] * len(keys)


def test_purge_spares_rows_revived_under_it(transactional_db: None, workers: WorkerPool) -> None:
    """2 processes make keys expired then live again while 2 others purge
    expired rows: every key ends up live with its value.

    A purge that chose a row while it was expired must re-check the expiry
    when it gets to the row, and neither side may fail: a deadlock between
    two single statements is an error no caller can help.
    """
    # Live rows of another store that every purge scans past, so that the
    # time between choosing rows and deleting them is that of a real table.
    keyval_cache().store("ballast").set_many({f"b-{i:05}": i for i in range(5000)})
    keys = [f"flap-{i:04}" for i in range(300)]
    began = time.monotonic()
    results = workers.run(jobs.flap_or_purge, store="flap", keys=keys, setters=2)
    purged = sum(_flatten(results))
    _report(f"purge vs revive: {purged} rows purged in {time.monotonic() - began:.2f}s")

    live = KeyVal("flap")
    lost = [key for key in keys if list(live.get_default(key, ())) != ["live", key]]
    assert lost == [], f"{len(lost)} live keys deleted by a concurrent purge: {lost[:10]}"


def test_mixed_load_has_no_errors(transactional_db: None, workers: WorkerPool) -> None:
    """About 10 s of 90% get / 10% set from 4 processes over 10,000 keys: no
    error at all (on SQLite, "database is locked" included) and no miss."""
    keys = [f"load-{i:05}" for i in range(10_000)]
    keyval_cache().store("load").set_many({key: ("seed", key) for key in keys})
    results = workers.run(jobs.mixed_load, store="load", keys=keys, seconds=10.0, set_ratio=0.1)

    stats = _flatten(results)
    gets = sum(s["gets"] for s in stats)
    sets = sum(s["sets"] for s in stats)
    errors = sum(s["errors"] for s in stats)
    seconds = max(s["seconds"] for s in stats)
    _report(
        f"mixed load: {gets} gets + {sets} sets in {seconds:.2f}s = "
        f"{(gets + sets) / seconds:.0f} ops/s, {errors} errors"
    )
    tracebacks = [tb for s in stats for tb in s["tracebacks"]]
    assert errors == 0, "\n".join(tracebacks)
    assert gets > 0
    assert sets > 0
