"""Behind PgBouncer in transaction pooling mode (``KEYVAL_TEST_POOLER=1``,
``KEYVAL_PG_PORT`` its port): the run really is pooled, and the store keeps no
state in a server session that pooling would hand to someone else.

In transaction mode a client holds a server connection for one transaction
only. What breaks there is session state: named prepared statements (before
PgBouncer 1.21's ``max_prepared_statements``), ``SET`` outside a transaction,
advisory locks, ``WITH HOLD`` cursors, ``LISTEN``. The store's statements run
in psycopg's unnamed statement (``prepare_threshold`` stays None, Django's
default), each in its own transaction or the caller's ``atomic()``.

.ci/run runs the PostgreSQL modules that cover every statement kind through
the pooler; this module checks that they did go through it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections

from keyval_backend.cache import KeyValCache
from tests.topology import require_postgres, unavailable

pytestmark = pytest.mark.django_db(transaction=True)
# More clients than PgBouncer's pool has server connections (default_pool_size
# = 20 in .ci/pg_topology.sh): they must share them, transaction by transaction.
CLIENTS = 30
ROUNDS = 20


@pytest.fixture(autouse=True)
def pooled() -> None:
    require_postgres()
    if not django_settings.KEYVAL_TEST_POOLER:
        unavailable(
            "not behind PgBouncer: run with KEYVAL_TEST_POOLER=1 and KEYVAL_PG_PORT set to "
            "its port (.ci/run starts one on 6432)"
        )


def admin_console(command: str) -> list[tuple[Any, ...]]:
    """Rows of a command of PgBouncer's admin console (simple protocol only)."""
    import psycopg

    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"],
        port=params["PORT"],
        user=params["USER"],
        dbname="pgbouncer",
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
    ) as admin:
        return list(admin.execute(command).fetchall())


def test_the_run_goes_through_pgbouncer_in_transaction_mode() -> None:
    config = {row[0]: row[1] for row in admin_console("SHOW CONFIG")}
    assert config["pool_mode"] == "transaction"
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_server_port()")
        server_port = cursor.fetchone()[0]
    assert str(server_port) != str(connection.settings_dict["PORT"])  # a proxy between
    assert connection.connection.prepare_threshold is None


def test_clients_sharing_server_connections_each_see_their_own_store(
    make_cache: Callable[..., KeyValCache],
) -> None:
    """Every kind of statement from more clients than there are server
    connections: no answer depends on which server connection ran it."""
    cache = make_cache()
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        store = cache.store(f"client-{n}")
        try:
            start.wait()
            for r in range(ROUNDS):
                key = f"k{r}"
                assert store.add(key, n) is True
                assert store.add(key, -1) is False
                assert store.get(key) == n
                assert store.incr(key, r) == n + r
                store.set_many({"a": (n, r), "b": r}, timeout=60)
                assert store.get_many(["a", "b", key]) == {"a": (n, r), "b": r, key: n + r}
                assert 0 < store.ttl("a") <= 60
                assert store.touch("b", None) is True
                assert store.has_key("b")
                assert sorted(store.iter_keys()) == sorted(
                    ["a", "b", *(f"k{i}" for i in range(r + 1))]
                )
                assert store.count() == r + 3
                assert store.pop("a") == (n, r)
                store.delete_many(["b"])
                assert store.delete("nothing") is False
            store.clear()
            assert store.count() == 0
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    pools = admin_console("SHOW POOLS")
    assert pools  # the pooler served this database


def test_the_near_cache_refuses_notifications_through_the_pooler(
    make_cache: Callable[..., KeyValCache],
) -> None:
    """LISTEN through a pooler in transaction mode is not heard reliably: the
    listener notices and the near cache stays bypassed (never stale)."""
    from keyval_backend import near

    near.reset()
    try:
        cache = make_cache("near-pooled", OPTIONS={"NEAR_CACHE": {}})
        cache.set("k", "v")
        assert cache.get("k") == "v"
        listener: Any = cache.near_cache.watcher  # type: ignore[union-attr]
        deadline = time.monotonic() + 15
        while listener.reconnects == 0:
            assert time.monotonic() < deadline, "the listener trusted a pooled connection"
            time.sleep(0.05)
        cache.set("k", "w")
        assert cache.get("k") == "w"
    finally:
        near.reset()
