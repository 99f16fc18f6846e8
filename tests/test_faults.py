"""Faults: a writer killed mid-batch, a session the server ends, statements
that lose a deadlock or fail, a rollback, and when a write is committed.

A store people trust more than a cache must not be left half-written by a
process that dies, must not answer "missing" when it means "the database is
gone", and must take part in the caller's transaction like any other write.

The killed writer is a real OS process ("spawn", so it inherits no
connection) working on the committed data of ``transactional_db``; SQLite runs
on its file in WAL mode, as a multi-process deployment would. This module is
imported by that process before Django is set up, so nothing at module level
may need the app registry.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import (
    DatabaseError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper

from keyval_backend import KeyVal, db
from keyval_backend.cache import KeyValCache
from keyval_backend.db import DEADLOCK_ATTEMPTS

# Characters of each value (random hex, which either serializer stores) of a
# killed batch: large enough that most of a batch's time is spent inside the
# statement, where the kill should land.
VALUE_SIZE = 2048
# Writers killed per batch size.
KILL_ROUNDS = 3
# Longest a worker may take to start, write a batch, or a killed session to
# disappear from the server: far above need, so only a hang reaches it.
STEP_TIMEOUT = 60.0
# Seconds a SQLite connection waits for the write lock.
SQLITE_BUSY_TIMEOUT = 30

# Behind PgBouncer in transaction pooling mode (KEYVAL_TEST_POOLER=1) a
# client's session is not a server session: there is no server process that
# is this connection's to end, or to outlive a killed client.
NEEDS_OWN_SESSION = pytest.mark.skipif(
    getattr(django_settings, "KEYVAL_TEST_POOLER", False),
    reason="a pooled connection has no server session of its own to end",
)


def _batch_key(batch: int, n: int) -> str:
    return f"{batch:04}-{n:05}"


def _session_id(db: BaseDatabaseWrapper) -> int | None:
    """The server's id of this connection's session (None on SQLite)."""
    sql = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}
    if db.vendor not in sql:
        return None
    with db.cursor() as cursor:
        cursor.execute(sql[db.vendor])
        return int(cursor.fetchone()[0])


def _writer(
    conn: Connection, database: dict[str, Any], store: str, keys: int, batches: int | None
) -> None:
    """A writer process: once told to go, ``set_many`` of ``keys`` fresh keys
    with random values, batch after batch (forever when ``batches`` is None),
    saying "begin" before each batch and "done" after it."""
    import django
    from django.conf import settings

    settings.DATABASES["default"].update(database)
    django.setup()
    conn.send(("session", _session_id(connection)))
    conn.recv()
    cache = caches["keyval"].store(store)
    rng = random.Random()
    batch = 0
    while batches is None or batch < batches:
        data = {_batch_key(batch, n): rng.randbytes(VALUE_SIZE // 2).hex() for n in range(keys)}
        conn.send(("begin", batch))
        cache.set_many(data)
        conn.send(("done", batch))
        batch += 1
    connection.close()


class Writer:
    """A :func:`_writer` process and what it said.

    Starting one costs a Python and Django start-up, so every writer a test
    needs is started at once, and each waits for :meth:`go`.
    """

    def __init__(self, store: str, keys: int, batches: int | None = None) -> None:
        self.store = store
        self.keys = keys
        database: dict[str, Any] = {"NAME": connection.settings_dict["NAME"]}
        if connection.vendor == "sqlite":
            database["OPTIONS"] = {
                **connection.settings_dict["OPTIONS"],
                "timeout": SQLITE_BUSY_TIMEOUT,
            }
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_writer, args=(child, database, store, keys, batches), daemon=True
        )
        self.process.start()
        child.close()
        self.session: int | None = None
        self.begun: int | None = None
        self.done: int | None = None

    def go(self) -> None:
        """Start writing (after the "session" message has been read)."""
        self._conn.send("go")

    def expect(self, kind: str) -> Any:
        """Wait for the next message, which must be of ``kind``."""
        if not self._conn.poll(STEP_TIMEOUT):
            raise AssertionError(f"writer sent no {kind!r} in {STEP_TIMEOUT}s")
        try:
            got, detail = self._conn.recv()
        except EOFError:
            self.process.join(STEP_TIMEOUT)
            raise AssertionError(
                f"writer died (exit code {self.process.exitcode}) before {kind!r}"
            ) from None
        assert got == kind, (got, detail)
        self._note(got, detail)
        return detail

    def kill(self) -> None:
        """SIGKILL, read what it said before dying, and wait until its
        server session is over."""
        self.process.kill()
        self.process.join(STEP_TIMEOUT)
        try:
            while self._conn.poll():
                self._note(*self._conn.recv())
        except EOFError:
            pass
        _wait_until_session_gone(self.session)

    def close(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(STEP_TIMEOUT)
        self._conn.close()
        self.process.close()

    def _note(self, kind: str, detail: Any) -> None:
        if kind == "begin":
            self.begun = detail
        elif kind == "done":
            self.done = detail


@pytest.fixture
def wal(transactional_db: None) -> Iterator[None]:
    """SQLite in WAL mode for the test, back to the default afterwards; other
    databases as they are."""
    if connection.vendor != "sqlite":
        yield
        return
    _journal_mode("wal")
    try:
        yield
    finally:
        _journal_mode("delete")


def _journal_mode(mode: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA journal_mode={mode}")
        assert cursor.fetchone()[0] == mode


def _wait_until_session_gone(session: int | None, db: BaseDatabaseWrapper = connection) -> None:
    """Wait (bounded) until the server has ended a dead client's session, so
    that whatever it does with the unfinished work (roll back, or finish an
    autocommit statement it had received) is done before counting."""
    if session is None:
        return
    sql = {
        "postgresql": "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = %s",
        "mysql": "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s",
    }[db.vendor]
    deadline = time.monotonic() + STEP_TIMEOUT
    with db.cursor() as cursor:
        while True:
            cursor.execute(sql, [session])
            if cursor.fetchone()[0] == 0:
                return
            assert time.monotonic() < deadline, f"session {session} outlived its client"
            time.sleep(0.05)


def _batches(store: str) -> Counter[int]:
    """Keys present in ``store``, counted by the batch that wrote them."""
    return Counter(int(key.split("-")[0]) for key in caches["keyval"].store(store).iter_keys())


def _report(message: str) -> None:
    """A line for ``pytest -s``: what each kill hit, per database."""
    print(f"\n[faults/{connection.vendor}] {message}")


def _kill_mid_batch(writer: Writer, rng: random.Random) -> str:
    """Let a writer finish one batch, to learn how long a batch takes, kill
    it a random fraction of that into the next one, and check the store:
    every batch begun is there completely or not at all. Return what the
    kill hit."""
    writer.go()
    writer.expect("begin")
    began = time.monotonic()
    writer.expect("done")
    batch_seconds = time.monotonic() - began
    writer.expect("begin")
    time.sleep(rng.uniform(0, batch_seconds))
    writer.kill()

    counts = _batches(writer.store)
    assert writer.begun is not None
    assert writer.done is not None
    assert set(counts) <= set(range(writer.begun + 1))
    assert {batch: n for batch, n in counts.items() if n != writer.keys} == {}
    assert all(counts[batch] == writer.keys for batch in range(writer.done + 1))
    if writer.done == writer.begun:
        return "between batches"
    return "batch rolled back" if counts[writer.begun] == 0 else "batch committed"


@NEEDS_OWN_SESSION
def test_writer_killed_mid_set_many_writes_all_or_nothing(wal: None) -> None:
    """SIGKILL a process inside ``set_many``: every batch it began is in the
    store completely or not at all, the database is intact, and another
    process then writes and reads as before.

    Batches of 1,000 rows are one INSERT; of 2,500 rows, three statements in
    one transaction (rows are written 1,000 per statement).
    """
    rng = random.Random()
    plan = [
        (f"killed-{keys}-{round_}", keys) for keys in (1000, 2500) for round_ in range(KILL_ROUNDS)
    ]
    writers: list[Writer] = []
    outcomes: dict[int, Counter[str]] = {1000: Counter(), 2500: Counter()}
    began = time.monotonic()
    try:
        writers.extend(Writer(store, keys) for store, keys in plan)
        # And one that carries on after the kills.
        writers.append(Writer("after-kill", 1000, batches=1))
        for writer in writers:
            writer.session = writer.expect("session")
        started = time.monotonic() - began
        *killed, survivor = writers
        for writer in killed:
            outcomes[writer.keys][_kill_mid_batch(writer, rng)] += 1
            if connection.vendor == "sqlite":
                with connection.cursor() as cursor:
                    cursor.execute("PRAGMA integrity_check")
                    assert cursor.fetchall() == [("ok",)]
        survivor.go()
        survivor.expect("begin")
        survivor.expect("done")
    finally:
        for writer in writers:
            writer.close()
    _report(
        f"{len(writers)} writers started in {started:.1f}s, "
        f"the rest took {time.monotonic() - began - started:.1f}s"
    )
    for keys, hits in outcomes.items():
        _report(f"{KILL_ROUNDS} writers killed in set_many of {keys} keys: {dict(hits)}")

    found = caches["keyval"].store("after-kill").get_many([_batch_key(0, n) for n in range(1000)])
    assert len(found) == 1000
    assert all(len(value) == VALUE_SIZE for value in found.values())
    KeyVal("after-kill").set("still", "writable")
    assert KeyVal("after-kill").get("still") == "writable"


# -- the server ends the session ------------------------------------------------


def _cache() -> KeyValCache:
    cache = caches["keyval"]
    assert isinstance(cache, KeyValCache)
    return cache


# One call of each kind, on the keys "text" (= "old") and "n" (= 5).
OPS: dict[str, Callable[[], Any]] = {
    "get": lambda: _cache().get("text"),
    "get_many": lambda: _cache().get_many(["text", "n"]),
    "has_key": lambda: _cache().has_key("text"),
    "ttl": lambda: _cache().ttl("text"),
    "count": lambda: _cache().count(),
    "iter_keys": lambda: list(_cache().iter_keys()),
    "set": lambda: _cache().set("text", "new"),
    "upsert": lambda: _cache().upsert("fresh", "new"),
    "add": lambda: _cache().add("fresh", "new"),
    "set_many": lambda: _cache().set_many({"text": "new", "fresh": "new"}),
    "incr": lambda: _cache().incr("n"),
    "touch": lambda: _cache().touch("text", 60),
    "pop": lambda: _cache().pop("text"),
    "delete": lambda: _cache().delete("text"),
    "delete_many": lambda: _cache().delete_many(["text", "n"]),
    "clear": lambda: _cache().clear(),
    "keyval_get": lambda: KeyVal("default").get("text"),
    "keyval_exists": lambda: KeyVal("default").exists("text"),
    "keyval_set": lambda: KeyVal("default").set("text", "new"),
    "keyval_len": lambda: len(KeyVal("default")),
}


def _terminate_this_session() -> None:
    """End this connection's server session from another connection, as an
    administrator, a failover or an idle timeout would."""
    session = _session_id(connection)
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_terminate_backend(%s)", [session])
                assert cursor.fetchone()[0] is True
            else:
                cursor.execute(f"KILL CONNECTION {int(session or 0)}")
        _wait_until_session_gone(session, other)
    finally:
        other.close()


@pytest.fixture
def server(transactional_db: None) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no server to end the session")


@NEEDS_OWN_SESSION
def test_terminated_session_raises_then_recovers(server: None) -> None:
    """For every kind of call: the first call after the server ended the
    session raises DatabaseError, never a miss, False or None that would read
    as an answer; nothing was written; and once Django's connection is closed
    (as it is at the end of a request that saw the error) the call works."""
    cache = _cache()
    outcomes: dict[str, str] = {}
    for name, op in OPS.items():
        cache.flush_all()
        cache.set_many({"text": "old", "n": 5})
        _terminate_this_session()
        try:
            result = op()
        except DatabaseError as exc:
            outcomes[name] = type(exc).__name__
        else:
            outcomes[name] = f"returned {result!r}"
        connection.close()
        assert cache.get_many(["text", "n", "fresh"]) == {"text": "old", "n": 5}, name
        op()
    _report(f"first call after the session was ended: {outcomes}")
    assert {name: got for name, got in outcomes.items() if got.startswith("returned")} == {}


@NEEDS_OWN_SESSION
def test_health_checks_reconnect_after_termination(
    server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``CONN_HEALTH_CHECKS`` the next request reconnects before its
    first query, as Django promises, and the store answers correctly."""
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()  # the setting is read on connect
    cache = _cache()
    cache.set("text", "old")
    _terminate_this_session()
    close_old_connections()  # what request_started runs
    assert cache.get("text") == "old"
    assert KeyVal("default").set("text", "new") is False


# -- rollback ---------------------------------------------------------------------


def _table() -> list[tuple[Any, ...]]:
    """Every row of the table, every column, as plain values."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM keyval_backend_entry ORDER BY id")
        return [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
            for row in cursor.fetchall()
        ]


class Rollback(Exception):
    """Raised to leave an atomic block the way an application error would."""


def _write_everything_then_fail() -> None:
    """In a transaction, every kind of write through both APIs, each checked
    as it is made; then an error."""
    with transaction.atomic():
        _write_everything()
        raise Rollback


def _write_everything() -> None:
    cache = _cache()
    live = cache.count()
    cache.set("text", "new")
    assert cache.add("fresh", 1) is True
    assert cache.incr("n", 10) == 15
    assert cache.pop("popped") == "p"
    assert cache.delete("deleted") is True
    assert cache.touch("text", 60) is True
    cache.set_many({f"many-{n:04}": n for n in range(2500)})  # several statements
    cache.delete_many(["many-0000", "many-0001"])
    cache.store("other").clear()
    KeyVal("facade").set("k", ["written"])
    assert KeyVal("facade").pop("gone") == "g"
    assert cache.get("text") == "new"
    assert cache.count() == live + 1 - 2 + 2500 - 2  # fresh, popped and deleted, many-*
    assert caches["keyval"].store("other").count() == 0


def _seed() -> None:
    cache = caches["keyval"]
    cache.set_many({"text": "old", "n": 5, "popped": "p", "deleted": "d"})
    cache.store("other").set_many({"a": 1, "b": 2})
    KeyVal("facade").set("gone", "g")


def test_rolled_back_writes_leave_no_trace(transactional_db: None) -> None:
    """Writes inside ``transaction.atomic()`` that rolls back are undone,
    row for row, column for column; reads inside the block saw them."""
    _seed()
    before = _table()
    with pytest.raises(Rollback):
        _write_everything_then_fail()
    assert _table() == before
    assert caches["keyval"].get_many(["text", "n", "fresh"]) == {"text": "old", "n": 5}


def test_rolled_back_savepoint_keeps_the_outer_writes(transactional_db: None) -> None:
    """A nested block that rolls back undoes only its own writes; the
    outer block's commit keeps the rest."""
    _seed()
    before = _table()
    with transaction.atomic():
        caches["keyval"].set("outer", "kept")
        with pytest.raises(Rollback):
            _write_everything_then_fail()
    after = _table()
    assert after[: len(before)] == before
    assert len(after) == len(before) + 1
    assert caches["keyval"].get("outer") == "kept"


# -- statements that lose a deadlock, or fail --------------------------------------


class FailingStatements:
    """A ``connection.execute_wrapper``: the statements on the table that
    ``matches`` picks, counted from 1, fail with ``error`` where their number
    is in ``failing`` (instead of running, as a statement the server rolled
    back); every statement runs otherwise."""

    def __init__(self, matches: Callable[[str], bool], failing: range, error: Exception) -> None:
        self.matches = matches
        self.failing = failing
        self.error = error
        self.seen = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "keyval_backend_entry" in sql and self.matches(sql.lstrip().upper()):
            self.seen += 1
            if self.seen in self.failing:
                raise self.error
        return execute(sql, params, many, context)


def _deadlock() -> OperationalError:
    """A deadlock as ``keyval_backend.db.is_deadlock`` reads it: MySQL's error
    1213 (PostgreSQL's SQLSTATE 40P01 is read from the driver's exception)."""
    return OperationalError(1213, "Deadlock found when trying to get lock")


def _writes(sql: str) -> bool:
    return not sql.startswith("SELECT")


def _purges(sql: str) -> bool:
    # The purge is the one DELETE with a LIMIT when MAX_ENTRIES is not set.
    return sql.startswith("DELETE") and "LIMIT" in sql


# Each single-key write and batch that retries a lost deadlock: the call, what
# it returns, and the check that it did its work (on "k" = 1 and "gone" = 1).
RETRIED: dict[str, tuple[Callable[[KeyValCache], Any], Any, Callable[[KeyValCache], bool]]] = {
    "set": (lambda c: c.set("k", 2), True, lambda c: c.get("k") == 2),
    "upsert": (lambda c: c.upsert("k", 2), False, lambda c: c.get("k") == 2),
    "add": (lambda c: c.add("new", 2), True, lambda c: c.get("new") == 2),
    "touch": (lambda c: c.touch("k", 600), True, lambda c: c.ttl("k") is not None),
    "delete": (lambda c: c.delete("k"), True, lambda c: not c.has_key("k")),
    "pop": (lambda c: c.pop("k"), 1, lambda c: not c.has_key("k")),
    "incr": (lambda c: c.incr("k"), 2, lambda c: c.get("k") == 2),
    "set_many": (lambda c: c.set_many({"k": 2, "new": 2}), [], lambda c: c.get("new") == 2),
    "delete_many": (lambda c: c.delete_many(["k", "gone"]), None, lambda c: c.count() == 0),
    "delete_pattern": (lambda c: c.delete_pattern("*"), 2, lambda c: c.count() == 0),
    "purge_expired": (lambda c: c.purge_expired(), 1, lambda c: c.count() == 2),
}


def _seed_for_retries(cache: KeyValCache) -> None:
    cache.set_many({"k": 1, "gone": 1})
    cache.set("expired", 1, timeout=-1)  # expired at once, purged by purge_expired


@pytest.mark.parametrize(("call", "returns", "done"), RETRIED.values(), ids=RETRIED.keys())
def test_a_write_that_loses_a_deadlock_runs_again(
    transactional_db: None,
    call: Callable[[KeyValCache], Any],
    returns: Any,
    done: Callable[[KeyValCache], bool],
) -> None:
    """The server rolls a deadlock's victim back whole, so outside a
    transaction the statement runs again, up to DEADLOCK_ATTEMPTS times in
    all, and the caller gets its answer as if nothing had happened."""
    cache = _cache()
    _seed_for_retries(cache)
    losses = FailingStatements(_writes, range(1, DEADLOCK_ATTEMPTS), _deadlock())
    with connection.execute_wrapper(losses):
        assert call(cache) == returns
    assert losses.seen == DEADLOCK_ATTEMPTS
    assert done(cache)


@pytest.mark.parametrize(
    ("error", "deadlock"),
    [
        (OperationalError(1213, "Deadlock found when trying to get lock"), True),
        # MariaDB's report of a deadlock on InnoDB's AUTO-INC lock (MDEV-33593).
        (OperationalError(1467, "Failed to read auto-increment value from storage engine"), True),
        (OperationalError(1205, "Lock wait timeout exceeded"), False),
        (OperationalError("server closed the connection unexpectedly"), False),
    ],
)
def test_what_counts_as_a_deadlock(error: OperationalError, deadlock: bool) -> None:
    assert db.is_deadlock(error) is deadlock


def test_a_write_that_keeps_losing_deadlocks_raises(transactional_db: None) -> None:
    cache = _cache()
    cache.set("k", 1)
    losses = FailingStatements(_writes, range(1, DEADLOCK_ATTEMPTS + 1), _deadlock())
    with connection.execute_wrapper(losses), pytest.raises(OperationalError, match="Deadlock"):
        cache.set("k", 2)
    assert losses.seen == DEADLOCK_ATTEMPTS
    assert cache.get("k") == 1


def test_a_deadlock_inside_a_transaction_is_raised_at_once(transactional_db: None) -> None:
    """In ``atomic()`` the whole transaction was the victim: only the caller
    can run it again, so the first loss is raised."""
    cache = _cache()
    cache.set("k", 1)
    losses = FailingStatements(_writes, range(1, 2), _deadlock())

    @transaction.atomic
    def write_twice() -> None:
        cache.set("before", 1)
        with connection.execute_wrapper(losses):
            cache.set("k", 2)

    with pytest.raises(OperationalError, match="Deadlock"):
        write_twice()
    assert losses.seen == 1
    assert cache.get_many(["k", "before"]) == {"k": 1}


@pytest.fixture
def purging(transactional_db: None, use_caches: Callable[..., None]) -> KeyValCache:
    """``caches["keyval"]`` purging expired rows after every expiring write."""
    use_caches(keyval={"BACKEND": "keyval_backend.cache.KeyValCache",
                       "OPTIONS": {"PURGE_EVERY": 1}})  # fmt: skip
    return _cache()


def test_a_purge_that_loses_a_deadlock_never_fails_the_write(purging: KeyValCache) -> None:
    """The purge riding along an expiring write is skipped when it loses a
    deadlock (the next one purges); in ``atomic()`` it runs in a savepoint,
    so the caller's transaction goes on and commits."""
    losses = FailingStatements(_purges, range(1, 100), _deadlock())
    with connection.execute_wrapper(losses):
        purging.set("old", 1, timeout=-1)  # expired at once
        purging.set("outside", 1, timeout=60)
        with transaction.atomic():
            purging.set("inside", 1, timeout=60)
            purging.set("after", 1)
    assert losses.seen == 3
    assert purging.get_many(["outside", "inside", "after"]) == {
        "outside": 1,
        "inside": 1,
        "after": 1,
    }
    assert purging.purge_expired() == 1  # "old" was left for later


def test_a_purge_error_never_fails_the_write(
    purging: KeyValCache, caplog: pytest.LogCaptureFixture
) -> None:
    """Any other error of that purge is logged, not raised: the write it
    rode along with was made (and, outside a transaction, committed) before
    it, so raising would report a failure that did not happen. In
    ``atomic()`` the savepoint keeps the caller's transaction usable."""
    failure = FailingStatements(_purges, range(1, 3), OperationalError("disk I/O error"))
    with connection.execute_wrapper(failure), caplog.at_level("WARNING", "keyval_backend"):
        purging.set("k", 1, timeout=60)
        with transaction.atomic():
            purging.set("inside", 2, timeout=60)
            purging.set("after", 3)
    assert failure.seen == 2
    assert purging.get_many(["k", "inside", "after"]) == {"k": 1, "inside": 2, "after": 3}
    failed = [r for r in caplog.records if r.name == "keyval_backend"]
    assert len(failed) == 2
    assert all("disk I/O error" in str(r.exc_info[1]) for r in failed if r.exc_info)


def test_set_many_with_a_failing_chunk_writes_nothing(transactional_db: None) -> None:
    """2,500 rows are three INSERTs in one transaction: the second failing
    leaves neither the first chunk nor the rest, and the old values stand."""
    cache = _cache()
    cache.set_many({"k0000": "old", "k2499": "old"})
    failure = FailingStatements(lambda sql: sql.startswith("INSERT"), range(2, 3),
                                OperationalError("the server went away"))  # fmt: skip
    with connection.execute_wrapper(failure), pytest.raises(OperationalError, match="away"):
        cache.set_many({f"k{n:04}": n for n in range(2500)})
    assert failure.seen == 2
    assert cache.count() == 2
    assert cache.get_many(["k0000", "k2499"]) == {"k0000": "old", "k2499": "old"}


def test_delete_many_commits_chunk_by_chunk_outside_a_transaction(transactional_db: None) -> None:
    """``delete_many`` of 2,500 keys is three DELETEs, each committed on its
    own outside ``atomic()``: a failing one leaves the chunks before it done.
    Inside ``atomic()`` the caller's rollback undoes them all."""
    cache = _cache()
    keys = [f"k{n:04}" for n in range(2500)]
    cache.set_many(dict.fromkeys(keys, 1))

    def failing_second_delete() -> FailingStatements:
        return FailingStatements(lambda sql: sql.startswith("DELETE"), range(2, 3),
                                 OperationalError("the server went away"))  # fmt: skip

    @transaction.atomic
    def delete_in_a_transaction() -> None:
        with connection.execute_wrapper(failing_second_delete()):
            cache.delete_many(keys)

    with pytest.raises(OperationalError):
        delete_in_a_transaction()
    assert cache.count() == 2500
    with connection.execute_wrapper(failing_second_delete()), pytest.raises(OperationalError):
        cache.delete_many(keys)
    assert cache.count() == 1500


# -- when a write is committed ----------------------------------------------------------


def _read_elsewhere(keys: list[str]) -> dict[str, Any]:
    """``get_many`` on another connection (another thread's): what every
    other connection and process sees, which is what has been committed."""

    def read() -> dict[str, Any]:
        try:
            return _cache().get_many(keys)
        finally:
            connections.close_all()  # this thread's connections

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(read).result()


def test_a_write_is_committed_when_it_returns_or_with_its_transaction(
    transactional_db: None,
) -> None:
    cache = _cache()
    cache.set("alone", 1)
    KeyVal("default").set("facade", 1)
    assert _read_elsewhere(["alone", "facade"]) == {"alone": 1, "facade": 1}
    with transaction.atomic():
        cache.set("in block", 1)
        cache.delete("alone")
        assert _read_elsewhere(["alone", "in block"]) == {"alone": 1}
    assert _read_elsewhere(["alone", "in block"]) == {"in block": 1}
