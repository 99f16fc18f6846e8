"""The lean path to the database: Django's connection without a cursor wrapper.

``connection.cursor()`` costs more than the query itself on SQLite (a new
cursor and wrapper per call, placeholder conversion by regex, debug checks).
When nothing is watching the queries, :func:`cursor` runs statements on one
driver cursor kept per connection, after the same checks Django's cursor makes
(connection set-up, health check, async-safety, thread sharing, a transaction
marked for rollback) and with the same error translation to ``django.db``
exceptions. When ``DEBUG`` is on, a ``CaptureQueriesContext`` is active or an
``execute_wrapper`` is installed, it returns Django's own cursor instead, so
every query is seen as usual; likewise on a connection shared between threads.
Either way the statement runs on the connection Django manages, inside any
``atomic()`` block that is open.
"""

from __future__ import annotations

from _thread import get_ident
from asyncio import _get_running_loop
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from django.conf import settings
from django.db import DatabaseError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from .exceptions import ReadOnlyDatabase

T = TypeVar("T")


class Cursor(Protocol):
    """What the dialects use of a cursor: Django's CursorWrapper has it all."""

    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> Any: ...
    def execute(self, sql: str, params: Sequence[Any] | None = ...) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> Any: ...


class LeanCursor:
    """A driver cursor, reused for every statement on one raw connection.

    SQL comes in Django's ``%s`` style and is translated once per text for
    drivers that want another one (SQLite's ``?``). Results are always read to
    the end, so no statement stays active between calls (on SQLite an active
    statement would hold a read lock).

    On PostgreSQL with psycopg 3 the cursor binds parameters on the server
    whatever Django's own cursors do: the statement text goes as it is, with
    typed parameters, in the extended protocol's unnamed statement, instead of
    being rebuilt with quoted literals on every call. A batch's arrays then
    travel in binary (client-side, psycopg escapes every bytea item with a
    regular expression). It prepares named statements only when the
    connection asks for them (``OPTIONS["prepare_threshold"]``), so connection
    poolers in transaction mode keep working as with Django's defaults.
    """

    __slots__ = ("_cursor", "_db", "_raw", "_translate")

    def __init__(self, db: BaseDatabaseWrapper) -> None:
        self._db = db
        self._raw = db.connection
        self._cursor = _server_binding_cursor(db) or db.connection.cursor()
        self._translate: dict[str, str] | None = {} if db.vendor == "sqlite" else None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if self._translate is not None:
            translated = self._translate.get(sql)
            if translated is None:
                translated = self._translate[sql] = sql.replace("%s", "?")
            sql = translated
        try:
            self._cursor.execute(sql, params or ())
        except Exception:
            # Translated as Django's cursor does (sqlite3.OperationalError ->
            # django.db.OperationalError, the driver's error as __cause__),
            # without entering the wrapper on every successful statement.
            try:
                with self._db.wrap_database_errors:
                    raise
            except DatabaseError as exc:
                raise_if_read_only(self._db.alias, exc)
                raise

    def fetchone(self) -> Any:
        rows = self._cursor.fetchall()
        return rows[0] if rows else None

    def fetchall(self) -> Any:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def lastrowid(self) -> Any:
        return self._cursor.lastrowid

    def __enter__(self) -> LeanCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _server_binding_cursor(db: BaseDatabaseWrapper) -> Any:
    """A psycopg 3 cursor with server-side binding on ``db``'s connection, or
    None for any other driver."""
    if db.vendor != "postgresql":
        return None
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        return None
    import psycopg

    return psycopg.Cursor(db.connection)


def in_atomic_block(alias: str) -> bool:
    """``connections[alias].in_atomic_block``, without asgiref's lookup of
    the connection where it is a plain thread-local one (a sync thread that
    has used it): a tenth of the cost, for the near cache's hits."""
    if _get_running_loop() is None:
        handler: Any = connections
        storage = getattr(handler._connections, "_storage", None)
        wrapper = getattr(storage, alias, None)
        if wrapper is not None:
            return bool(wrapper.in_atomic_block)
    return bool(connections[alias].in_atomic_block)


def cursor(alias: str) -> Cursor:
    """A cursor on the connection of ``alias``: lean when nothing observes
    queries, Django's own otherwise. Use it as a context manager."""
    # Any: the checks below read attributes of BaseDatabaseWrapper that its
    # type stubs leave out (_thread_sharing_count, _thread_ident, ...).
    db: Any = connections[alias]
    # A connection shared between threads (live_server on in-memory SQLite)
    # must not share one cursor: there, each call gets its own.
    if (
        db.execute_wrappers
        or db.force_debug_cursor
        or settings.DEBUG
        or db._thread_sharing_count  # allow_thread_sharing, without its lock
    ):
        return _ObservedCursor(db.cursor(), alias)
    lean: LeanCursor | None = db.__dict__.get("_keyval_cursor")
    if lean is None or lean._raw is not db.connection or db.health_check_enabled:
        db.close_if_health_check_failed()
        db.ensure_connection()
        if lean is None or lean._raw is not db.connection:
            lean = db.__dict__["_keyval_cursor"] = LeanCursor(db)
    else:
        # Connected: all ensure_connection() would still do is refuse to run
        # in an event loop's thread (SynchronousOnlyOperation), so it is
        # called only when a loop is running. (_get_running_loop is asyncio's
        # exported, non-raising form of get_running_loop.)
        if _get_running_loop() is not None:
            db.ensure_connection()
    if db._thread_ident != get_ident():
        db.validate_thread_sharing()
    if db.needs_rollback:
        db.validate_no_broken_transaction()
    return lean


class _ObservedCursor:
    """Django's own cursor (every query seen as usual), with the error of a
    write on a read-only database made clear as on the lean path."""

    __slots__ = ("_alias", "_cursor")

    def __init__(self, cursor: Any, alias: str) -> None:
        self._cursor = cursor
        self._alias = alias

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        try:
            return self._cursor.execute(sql, params)
        except DatabaseError as exc:
            raise_if_read_only(self._alias, exc)
            raise

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> Any:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def lastrowid(self) -> Any:
        return self._cursor.lastrowid

    def __enter__(self) -> _ObservedCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()


# A write on a database that only reads: PostgreSQL's SQLSTATE 25006 (a hot
# standby, default_transaction_read_only), MySQL/MariaDB 1290 (--read-only)
# and 1792 (a read-only transaction), SQLite's SQLITE_READONLY (8).
_POSTGRES_READ_ONLY = "25006"
_MYSQL_READ_ONLY = (1290, 1792)
_SQLITE_READONLY = 8


def raise_if_read_only(alias: str, exc: DatabaseError) -> None:
    """Raise :class:`ReadOnlyDatabase` instead of ``exc`` when ``exc`` says
    that the database of ``alias`` refused a write because it only reads."""
    cause = exc.__cause__ or exc
    args: tuple[Any, ...] = getattr(cause, "args", ())
    if not (
        getattr(cause, "sqlstate", None) == _POSTGRES_READ_ONLY
        or (args and args[0] in _MYSQL_READ_ONLY and "read" in str(cause).lower())
        or (getattr(cause, "sqlite_errorcode", 0) & 0xFF) == _SQLITE_READONLY
    ):
        return
    raise ReadOnlyDatabase(
        f"The database {alias!r} is read-only ({str(cause).strip()}), so it cannot take a "
        "keyval_backend store's writes. A store writes to its cache's OPTIONS['DATABASE'], "
        "else to the alias the database routers' db_for_write() gives for "
        "keyval_backend.Entry: point that at the primary. Reads that may be stale can go "
        "to a replica with OPTIONS['READ_DATABASE']."
    ) from exc


# Deadlock errors: MySQL/MariaDB error 1213, PostgreSQL SQLSTATE 40P01. And
# 1467 ("Failed to read auto-increment value") is how MariaDB reports a
# deadlock on InnoDB's table AUTO-INC lock, which an INSERT ... SELECT holds to
# its end: the transaction is rolled back as for 1213 (MDEV-33593).
_MYSQL_DEADLOCKS = (1213, 1467)
_POSTGRES_DEADLOCK = "40P01"
DEADLOCK_ATTEMPTS = 5


def is_deadlock(exc: BaseException) -> bool:
    """True if the database chose this statement as a deadlock victim (and
    rolled it back whole)."""
    cause = exc.__cause__ or exc
    if getattr(cause, "sqlstate", None) == _POSTGRES_DEADLOCK:
        return True
    args: tuple[Any, ...] = getattr(cause, "args", ())
    return bool(args) and args[0] in _MYSQL_DEADLOCKS


def retry_on_deadlock(alias: str, operation: Callable[[], T]) -> T:
    """Run a single-statement write, again if it lost a deadlock.

    Two statements that lock the same index entries in opposite order (an
    upsert and a purge of expired rows, on InnoDB) can deadlock; the server
    rolls the victim back completely, so running it again is safe. Inside a
    transaction the whole transaction is at stake, so the error is raised.
    """
    attempt = 1
    while True:
        try:
            return operation()
        except OperationalError as exc:
            if (
                attempt == DEADLOCK_ATTEMPTS
                or not is_deadlock(exc)
                or connections[alias].in_atomic_block
            ):
                raise
            attempt += 1
