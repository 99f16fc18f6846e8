"""A real hot standby behind the ``replica`` alias: a router that sends reads
there moves none of the store's operations; ``OPTIONS["READ_DATABASE"]``
reads it, stale as it may be; a store pointed at it fails with one clear error.

Needs ``KEYVAL_PG_REPLICA_PORT``, the port of a streaming hot standby of the
test server (.ci/pg_topology.sh makes one on 5433). The standby's WAL replay
is paused for a test that needs a lagging replica: nothing written meanwhile
is visible there, so any read that reached it would miss.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections

from keyval_backend.cache import KeyValCache
from keyval_backend.exceptions import ReadOnlyDatabase
from tests.test_read_database import ReadsToReplica
from tests.topology import require_postgres, unavailable

ALIASES = ["default", "replica"]
pytestmark = pytest.mark.django_db(transaction=True, databases=ALIASES)


def one(alias: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def standby() -> Iterator[None]:
    """``replica`` pointed at the standby's copy of the test database."""
    require_postgres()
    port = django_settings.KEYVAL_PG_REPLICA_PORT
    if not port:
        unavailable("no hot standby: set KEYVAL_PG_REPLICA_PORT (.ci/run starts one on 5433)")
    replica = connections["replica"]
    mirrored = replica.settings_dict
    replica.close()
    # A new dict: a test mirror shares the primary's, which must stay as it is.
    replica.settings_dict = {**connections["default"].settings_dict, "PORT": port}
    try:
        deadline = time.monotonic() + 30
        while True:  # the standby replays the test database's creation
            try:
                in_recovery = one("replica", "SELECT pg_is_in_recovery()")
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    unavailable(f"the standby on port {port} does not answer: {exc}")
                replica.close()
                time.sleep(0.2)
        if not in_recovery:
            unavailable(f"the server on port {port} is not a standby (pg_is_in_recovery false)")
        yield
    finally:
        replica.close()
        replica.settings_dict = mirrored


def caught_up(timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary has written."""
    target = one("default", "SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + timeout
    while not one("replica", "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)):
        assert time.monotonic() < deadline, "the standby did not catch up"
        time.sleep(0.05)


@contextmanager
def lagging() -> Iterator[None]:
    """The standby replays nothing while the block runs: a replica that lags."""
    caught_up()
    one("replica", "SELECT pg_wal_replay_pause()")
    try:
        while one("replica", "SELECT pg_get_wal_replay_pause_state()") != "paused":
            time.sleep(0.01)
        yield
    finally:
        one("replica", "SELECT pg_wal_replay_resume()")


def test_the_standby_replicates_the_test_database(make_cache: Callable[..., KeyValCache]) -> None:
    primary = make_cache()
    reader = make_cache(OPTIONS={"READ_DATABASE": "replica"})
    primary.set("k", "v")
    caught_up()
    assert reader.get("k") == "v"
    assert one("replica", "SELECT current_setting('transaction_read_only')") == "on"


def test_with_reads_routed_to_the_replica_the_store_uses_the_primary(
    make_cache: Callable[..., KeyValCache], settings: Any
) -> None:
    settings.DATABASE_ROUTERS = [f"{__name__}.ReadsToReplica"]
    cache = make_cache()
    assert cache.database == "default"
    with lagging():
        cache.set("k", "v", timeout=600)
        cache.set("n", 1)
        assert cache.get("k") == "v"
        assert cache.get_many(["k", "n"]) == {"k": "v", "n": 1}
        assert cache.has_key("k")
        assert sorted(cache.iter_keys()) == ["k", "n"]
        assert cache.count() == 2
        assert 0 < cache.ttl("k") <= 600
        assert cache.add("k", "other") is False
        assert cache.incr("n") == 2
        assert cache.pop("k") == "v"
        assert cache.get("k") is None


def test_read_database_reads_the_replica_stale(make_cache: Callable[..., KeyValCache]) -> None:
    cache = make_cache(OPTIONS={"READ_DATABASE": "replica"})
    cache.set("k", "old")
    caught_up()
    with lagging():
        cache.set("k", "new")
        cache.set("n", 1)
        # Stale-tolerant reads see the replica as it was...
        assert cache.get("k") == "old"
        assert cache.get_many(["k", "n"]) == {"k": "old"}
        assert not cache.has_key("n")
        assert cache.count() == 1
        # ...while what decides a write sees the primary.
        assert cache.add("n", 5) is False
        assert cache.incr("n") == 2
        assert cache.ttl("n") is None
        assert cache.pop("k") == "new"
    caught_up()
    assert cache.get("k") is None
    assert cache.get("n") == 2


@pytest.mark.parametrize("how", ["OPTIONS['DATABASE']", "db_for_write"])
def test_a_store_writing_to_the_standby_fails_clearly(
    make_cache: Callable[..., KeyValCache], settings: Any, how: str
) -> None:
    if how == "db_for_write":
        settings.DATABASE_ROUTERS = [f"{__name__}.{WritesToReplica.__name__}"]
        cache = make_cache()
    else:
        cache = make_cache(OPTIONS={"DATABASE": "replica"})
    assert cache.get("k") is None  # a standby reads
    for write in (lambda: cache.set("k", "v"), lambda: cache.add("k", "v"), cache.clear):
        with pytest.raises(ReadOnlyDatabase, match=r"'replica' is read-only \(cannot execute"):
            write()


class WritesToReplica(ReadsToReplica):
    """A misconfigured router: writes to the replica too."""

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "replica"
