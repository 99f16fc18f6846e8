"""Races between real processes on the django-redis API: locks that never
have two holders, increments of hash fields and sorted set scores that lose
nothing, set members added, popped and moved exactly once, and a lock whose holder
is killed taken over once its timeout passes.

The workers are those of ``tests/test_concurrency.py`` (:mod:`tests.
concurrency_worker`) running the jobs of :mod:`tests.redis_concurrency_worker`
against committed data; with ``KEYVAL_TEST_REFERENCE=redis`` the same jobs
race on django-redis and Redis.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from . import redis_concurrency_worker as jobs
from .concurrency_worker import WorkerPool
from .redis_reference import REFERENCE, cache_spec, ours_only

PROCESSES = 4
SQLITE_BUSY_TIMEOUT = 30
SERIALIZER = getattr(settings, "KEYVAL_TEST_SERIALIZER", "pickle")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def database(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """What a worker needs to reach the test database, as in
    tests/test_concurrency.py: on SQLite, WAL and a busy timeout."""
    options = dict(connection.settings_dict["OPTIONS"])
    sqlite = connection.vendor == "sqlite"
    if sqlite:
        options["timeout"] = SQLITE_BUSY_TIMEOUT
        options["init_command"] = "PRAGMA synchronous=NORMAL"
        _journal_mode(django_db_blocker, "wal")
    elif connection.vendor == "postgresql":
        options["options"] = "-c synchronous_commit=off"
    try:
        yield {"NAME": connection.settings_dict["NAME"], "OPTIONS": options}
    finally:
        if sqlite:
            _journal_mode(django_db_blocker, "delete")


def _journal_mode(django_db_blocker: Any, mode: str) -> None:
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f"PRAGMA journal_mode={mode}")
        assert cursor.fetchone()[0] == mode


@pytest.fixture(scope="module")
def workers(database: dict[str, Any]) -> Iterator[WorkerPool]:
    pool = WorkerPool(PROCESSES, database)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def spec() -> tuple[str, str, dict[str, Any]]:
    return cache_spec(SERIALIZER)


def _flatten(results: list[list[Any]]) -> list[Any]:
    return [result for per_worker in results for result in per_worker]


def _report(message: str) -> None:
    where = "redis" if REFERENCE else connection.vendor
    print(f"\n[redis-concurrency/{where}] {message}")


def test_a_lock_never_has_two_holders(rcache: Any, workers: WorkerPool, spec: Any) -> None:
    """4 processes x 2 threads x 25 turns of one lock: nobody finds another
    inside, every turn is counted, and (ours) the fencing tokens rise in the
    order of the holdings."""
    turns = 25
    workers.run(jobs.warm_up, spec=spec)
    began = time.monotonic()
    results = workers.run(jobs.lock_turns, threads=2, spec=spec, name="the-lock", turns=turns)
    _report(f"lock turns: 8 x {turns} in {time.monotonic() - began:.2f}s")

    outcomes = _flatten(results)
    assert sum(outcome["overlaps"] for outcome in outcomes) == 0
    holdings = sorted(h for outcome in outcomes for h in outcome["holdings"])
    total = PROCESSES * 2 * turns
    assert [sequence for sequence, _ in holdings] == list(range(1, total + 1))
    assert rcache.get("sequence") == total
    # No release was lost: the lock is free, and nobody is inside.
    assert rcache.has_key("the-lock") is False
    assert rcache.has_key("inside") is False
    if not REFERENCE:
        assert all(type(token) is int for _, token in holdings)
        backwards = [
            (earlier, later)
            for earlier, later in itertools.pairwise(holdings)
            if later[1] <= earlier[1]
        ]
        # (sequence number, fencing token) of each holding that got a token
        # no larger than the holding before it.
        assert backwards == []


def test_a_killed_holder_s_lock_is_taken_after_its_timeout(
    rcache: Any, database: dict[str, Any], spec: Any
) -> None:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    holder = context.Process(
        target=jobs.hold_and_wait, args=(child, database, spec, "crashy"), daemon=True
    )
    holder.start()
    child.close()
    try:
        assert parent.poll(60), "the holder never took the lock"
        dead_token = parent.recv()
        taken_at = time.monotonic()
    finally:
        holder.kill()
        holder.join(30)
        parent.close()
    assert holder.exitcode is not None
    lock = rcache.lock("crashy", timeout=10)
    if time.monotonic() - taken_at < jobs.HOLD_TIMEOUT / 2:
        assert lock.acquire(blocking=False) is False
    assert lock.acquire(blocking_timeout=10, sleep=0.02) is True
    waited = time.monotonic() - taken_at
    _report(f"killed holder: lock taken over {waited:.2f}s after it was taken")
    # Not before the dead holder's timeout (less the time its report took to
    # arrive), and not long after.
    assert jobs.HOLD_TIMEOUT - 0.5 < waited < jobs.HOLD_TIMEOUT + 5
    if not REFERENCE:
        assert lock.fencing_token > dead_token
    lock.release()


@ours_only("django-redis 7 has no hincrby")
def test_hincrby_race_loses_nothing(rcache: Any, workers: WorkerPool, spec: Any) -> None:
    times = 150
    rcache.hset("h", "other", "kept")
    began = time.monotonic()
    results = workers.run(jobs.hincrby_field, spec=spec, key="h", times=times)
    _report(f"hincrby race: 4 x {times} in {time.monotonic() - began:.2f}s")
    seen = sorted(_flatten(_flatten(results)))
    assert seen == list(range(1, PROCESSES * times + 1))
    assert rcache.hget("h", "n") == PROCESSES * times
    assert rcache.hget("h", "other") == "kept"


def test_zincrby_race_loses_nothing(rcache: Any, workers: WorkerPool, spec: Any) -> None:
    times = 150
    began = time.monotonic()
    results = workers.run(jobs.zincrby_member, spec=spec, key="z", times=times)
    _report(f"zincrby race: 4 x {times} in {time.monotonic() - began:.2f}s")
    seen = sorted(_flatten(_flatten(results)))
    assert seen == [float(n) for n in range(1, PROCESSES * times + 1)]
    assert rcache.zscore("z", "m") == PROCESSES * times
    assert rcache.zcard("z") == 1


def test_sadd_race_adds_each_member_once(rcache: Any, workers: WorkerPool, spec: Any) -> None:
    members = [f"m{i:03}" for i in range(200)]
    began = time.monotonic()
    results = workers.run(jobs.sadd_members, spec=spec, key="s", members=members)
    _report(f"sadd race: 4 x {len(members)} in {time.monotonic() - began:.2f}s")
    assert sum(_flatten(results)) == len(members)
    assert rcache.scard("s") == len(members)
    assert rcache.smembers("s") == set(members)


@pytest.mark.parametrize("count", [None, 3], ids=["one", "three"])
def test_spop_race_hands_out_each_member_once(
    rcache: Any, workers: WorkerPool, spec: Any, count: int | None
) -> None:
    members = [f"m{i:03}" for i in range(300)]
    rcache.sadd("s", *members)
    began = time.monotonic()
    results = workers.run(jobs.spop_all, spec=spec, key="s", count=count)
    _report(f"spop race ({count}): {len(members)} in {time.monotonic() - began:.2f}s")
    popped = Counter(_flatten(_flatten(results)))
    assert {member: n for member, n in popped.items() if n != 1} == {}
    assert set(popped) == set(members)
    assert rcache.has_key("s") is False


def test_smove_race_moves_each_member_once(rcache: Any, workers: WorkerPool, spec: Any) -> None:
    """8 movers take members from one set: each member is moved by exactly
    one of them, into that one's set, and the source is gone."""
    members = [f"m{i:03}" for i in range(150)]
    rcache.sadd("src", *members)
    began = time.monotonic()
    results = workers.run(jobs.smove_all, threads=2, spec=spec, source="src", members=members)
    _report(f"smove race: {len(members)} by 8 in {time.monotonic() - began:.2f}s")
    moved = Counter(_flatten(_flatten(results)))
    assert {member: n for member, n in moved.items() if n != 1} == {}
    assert set(moved) == set(members)
    held = {
        f"to-{worker}-{thread}": set(mine)
        for worker, per_worker in enumerate(results)
        for thread, mine in enumerate(per_worker)
    }
    for key, mine in held.items():
        assert rcache.smembers(key) == mine, key
    assert rcache.has_key("src") is False


def test_smove_round_a_ring_of_sets_keeps_each_member_in_one_set(
    rcache: Any, workers: WorkerPool, spec: Any
) -> None:
    """Members moved round three sets by 8 movers at once, each starting
    from its own set (row locks taken in every order, a member moved on and
    back between two statements of another move): none is lost or doubled."""
    keys = ["a", "b", "c"]
    members = [f"m{i:02}" for i in range(30)]
    for n, key in enumerate(keys):
        rcache.sadd(key, *members[n :: len(keys)])
    began = time.monotonic()
    workers.run(jobs.smove_round, threads=2, spec=spec, keys=keys, members=members, rounds=4)
    _report(f"smove round 3 sets: 8 x 4 x {len(members)} in {time.monotonic() - began:.2f}s")
    held = {key: rcache.smembers(key) for key in keys}
    doubled = {
        member
        for one, other in itertools.combinations(keys, 2)
        for member in held[one] & held[other]
    }
    assert doubled == set()
    assert set().union(*held.values()) == set(members)


@ours_only("django-redis's get_or_set has no lock=")
def test_get_or_set_with_a_lock_computes_once(rcache: Any, workers: WorkerPool, spec: Any) -> None:
    results = _flatten(workers.run(jobs.get_or_set_locked, spec=spec, key="k"))
    assert rcache.get("computations") == 1
    assert len(set(results)) == 1
    assert rcache.get("k") == results[0]
