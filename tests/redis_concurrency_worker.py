"""Jobs for ``tests/test_redis_concurrency.py``, run in the worker processes
of :class:`tests.concurrency_worker.WorkerPool`, and a lock holder that is
killed while it holds.

Every job builds its own cache from a :func:`tests.redis_reference.cache_spec`
(a KeyValCache on the test database, or the reference's RedisCache), so the
same races run against both.
"""

from __future__ import annotations

import random
import time
from multiprocessing.connection import Connection
from typing import Any

from .redis_reference import build_cache

Spec = tuple[str, str, dict[str, Any]]
# The timeout of the lock :func:`hold_and_wait` takes, in seconds.
HOLD_TIMEOUT = 2


def warm_up(worker: int, thread: int, spec: Spec) -> None:
    """Nothing but a first statement: started workers, and a warm cache."""
    build_cache(spec).has_key("warm-up")


def lock_turns(worker: int, thread: int, spec: Spec, name: str, turns: int) -> dict[str, Any]:
    """Take lock ``name`` ``turns`` times. Inside, claim a shared marker
    (``add``, which fails if another holder is inside), take the next number
    of a shared sequence, and record it with the holding's fencing token."""
    cache = build_cache(spec)
    holdings: list[tuple[int, int | None]] = []
    overlaps = 0
    for _ in range(turns):
        lock = cache.lock(name, timeout=60, sleep=0.002, blocking_timeout=60)
        assert lock.acquire(), "blocking_timeout ran out"
        try:
            if not cache.add("inside", worker):
                overlaps += 1
            sequence = cache.incr("sequence", ignore_key_check=True)
            holdings.append((sequence, getattr(lock, "fencing_token", None)))
            cache.delete("inside")
        finally:
            lock.release()
    return {"holdings": holdings, "overlaps": overlaps}


def hincrby_field(worker: int, thread: int, spec: Spec, key: str, times: int) -> list[int]:
    cache = build_cache(spec)
    return [cache.hincrby(key, "n") for _ in range(times)]


def zincrby_member(worker: int, thread: int, spec: Spec, key: str, times: int) -> list[float]:
    cache = build_cache(spec)
    return [cache.zincrby(key, 1.0, "m") for _ in range(times)]


def sadd_members(worker: int, thread: int, spec: Spec, key: str, members: list[str]) -> int:
    """Add every member, in an order of this worker's own, one call each;
    how many of them this worker added."""
    cache = build_cache(spec)
    mine = list(members)
    random.Random(worker).shuffle(mine)
    return sum(cache.sadd(key, member) for member in mine)


def spop_all(worker: int, thread: int, spec: Spec, key: str, count: int | None) -> list[Any]:
    """Pop until the set is empty (one member a call, or ``count``)."""
    cache = build_cache(spec)
    popped: list[Any] = []
    while True:
        got = cache.spop(key, count)
        if count is None:
            if got is None:
                return popped
            popped.append(got)
        else:
            if not got:
                return popped
            popped.extend(got)


def smove_all(worker: int, thread: int, spec: Spec, source: str, members: list[str]) -> list[str]:
    """Move every member of ``source`` into a set of this worker's own, in an
    order of its own; the members this worker moved."""
    cache = build_cache(spec)
    mine = list(members)
    random.Random(worker * 10 + thread).shuffle(mine)
    return [member for member in mine if cache.smove(source, f"to-{worker}-{thread}", member)]


def smove_round(
    worker: int, thread: int, spec: Spec, keys: list[str], members: list[str], rounds: int
) -> int:
    """Move every member along the ring of sets ``keys``, each worker from a
    set of its own in each round, ``rounds`` times; how many moves succeeded."""
    cache = build_cache(spec)
    moved = 0
    for turn in range(rounds):
        start = (worker * 2 + thread + turn) % len(keys)
        source, destination = keys[start], keys[(start + 1) % len(keys)]
        moved += sum(cache.smove(source, destination, member) for member in members)
    return moved


def get_or_set_locked(worker: int, thread: int, spec: Spec, key: str) -> Any:
    """``get_or_set(lock=True)`` of a slow computation that counts its runs."""
    cache = build_cache(spec)

    def compute() -> str:
        cache.incr("computations", ignore_key_check=True)
        time.sleep(0.3)
        return f"computed by {worker}"

    return cache.get_or_set(key, compute, lock=True, blocking_timeout=30)


def hold_and_wait(conn: Connection, database: dict[str, Any], spec: Spec, name: str) -> None:
    """A process that takes lock ``name`` (for ``HOLD_TIMEOUT`` seconds),
    reports its fencing token and waits, holding it, to be killed."""
    import django
    from django.conf import settings

    settings.DATABASES["default"].update(database)
    django.setup()
    cache = build_cache(spec)
    lock = cache.lock(name, timeout=HOLD_TIMEOUT)
    assert lock.acquire(blocking=False)
    conn.send(getattr(lock, "fencing_token", None))
    conn.recv()  # never comes: the test kills this process
