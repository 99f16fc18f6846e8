"""What every native async driver shares: when the event loop may run a
statement itself, one set of resources per event loop, and Django's errors.

A driver runs one statement at a time for an alias, in the running event
loop, on connections of its own (never Django's, which belong to a thread).
The statements are the dialect's texts, the rows the codec's: a driver only
moves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from asgiref.sync import AsyncToSync
from django import db as django_db
from django.conf import settings
from django.db import OperationalError, connections
from django.db.transaction import TransactionManagementError

from ..db import DEADLOCK_ATTEMPTS, is_deadlock, raise_if_read_only
from ..exceptions import ReadOnlyDatabase
from ..sql import Dialect

T = TypeVar("T")
S = TypeVar("S", bound="LoopState")
# (rows, rowcount) of a statement: rows read to the end, [] without a result.
Result = tuple[list[Any], int]

# Django's exceptions, most specific first, as DatabaseErrorWrapper maps
# driver (PEP 249) exceptions onto them by name.
_DJANGO_ERRORS = (
    django_db.DataError,
    django_db.OperationalError,
    django_db.IntegrityError,
    django_db.InternalError,
    django_db.ProgrammingError,
    django_db.NotSupportedError,
    django_db.DatabaseError,
    django_db.InterfaceError,
    django_db.Error,
)


class NativeTransactionError(TransactionManagementError):
    """An ``a*`` method was awaited in the thread of an open ``atomic()``
    block: its statement can neither join that transaction (the block's
    connection cannot run statements from inside an event loop) nor run
    outside it."""


def translated(exc: BaseException, module: Any, alias: str) -> BaseException:
    """``exc`` of the driver ``module`` as the ``django.db`` exception
    Django's own cursor would raise (the driver's error as its cause), or as
    ReadOnlyDatabase where the lean cursor raises that."""
    for django_type in _DJANGO_ERRORS:
        if isinstance(exc, getattr(module, django_type.__name__)):
            error = django_type(*exc.args)
            error.__cause__ = exc
            if isinstance(error, django_db.DatabaseError):
                try:
                    raise_if_read_only(alias, error)
                except ReadOnlyDatabase as read_only:
                    return read_only
            return error
    return exc


def native_allowed(alias: str) -> bool:
    """True when this call may run in the event loop, on the driver's own
    connection; False when it must take Django's thread (the thread path).

    The thread path is taken wherever a statement on another connection
    would be wrong or unseen: under ``async_to_sync`` (the sync caller's
    thread may be in ``atomic()``: the thread path joins it), and where
    Django observes queries (``DEBUG``, ``CaptureQueriesContext``,
    ``execute_wrapper``). A loop running in the thread of an open
    ``atomic()`` block (``asyncio.run`` inside it) raises
    NativeTransactionError instead of writing outside the transaction.

    What cannot change during a task (its caller, the connection its
    context sees) is looked up once per task.
    """
    if settings.DEBUG:
        return False
    task = asyncio.current_task()
    seen = _tasks.get(task) if task is not None else None
    if seen is None:
        seen = {}
        if task is not None:
            _tasks[task] = seen
    wrapper = seen.get(alias, _UNSEEN)
    if wrapper is _UNSEEN:
        wrapper = seen[alias] = _task_wrapper(alias)
    elif wrapper is _NO_CONNECTION:
        # If the context has made its connection since, that one is watched
        # from now on.
        wrapper = seen[alias] = _context_wrapper(alias) or _NO_CONNECTION
    if wrapper is _NO_CONNECTION:
        return True  # nothing watches a connection the context has not made
    return wrapper is not None and not (wrapper.execute_wrappers or wrapper.force_debug_cursor)


# Per task: each alias's connection as the task's context sees it,
# _NO_CONNECTION while it has none, or None where the task must take the
# thread.
_tasks: weakref.WeakKeyDictionary[asyncio.Task[Any], dict[str, Any]] = weakref.WeakKeyDictionary()
_UNSEEN: Any = object()
_NO_CONNECTION: Any = object()


def _context_wrapper(alias: str) -> Any:
    """The connection of ``alias`` this context has, without making one
    (``connections[alias]`` would: a new wrapper, 90 µs, in every task that
    has not used the database yet)."""
    handler: Any = connections
    return getattr(handler._connections, alias, None)


def _task_wrapper(alias: str) -> Any:
    if getattr(AsyncToSync.executors, "current", None) is not None or (
        asyncio.get_running_loop() in AsyncToSync.loop_thread_executors
    ):
        return None
    # In a loop, Django's connections are per context: the sync code of this
    # thread (asyncio.run inside atomic()) has its own, in the thread-local
    # storage under asgiref's context storage.
    handler: Any = connections
    thread_storage = getattr(handler._connections, "_storage", None)
    current = _context_wrapper(alias)
    for wrapper in (getattr(thread_storage, alias, None), current):
        if wrapper is not None and (
            wrapper.in_atomic_block or (wrapper.connection is not None and not wrapper.autocommit)
        ):
            raise NativeTransactionError(
                f"an async KeyValCache method was awaited in a thread whose connection "
                f"{alias!r} is in a transaction (atomic() or autocommit off): it cannot join "
                "that transaction from an event loop, and will not run outside it. Call the "
                "sync method, or reach the async one through async_to_sync(), which runs it "
                "in the transaction."
            )
    return _NO_CONNECTION if current is None else current


async def retry_on_deadlock(operation: Callable[[], Awaitable[T]]) -> T:
    """:func:`keyval_backend.db.retry_on_deadlock` for a native statement
    (never in a transaction: the native path refuses to run in one)."""
    attempt = 1
    while True:
        try:
            return await operation()
        except OperationalError as exc:
            if attempt == DEADLOCK_ATTEMPTS or not is_deadlock(exc):
                raise
            attempt += 1


class LoopState:
    """A driver's resources in one event loop (connections, a pool)."""

    async def aclose(self) -> None:
        raise NotImplementedError


class Driver(Generic[S]):
    """Runs statements of one alias in the running event loop.

    Resources are made per event loop on first use and closed when the loop
    shuts its async generators down (``asyncio.run`` does, as does every
    ASGI server's runner), or by :meth:`aclose`: no connection is ever used
    by two loops, and none outlives its loop.
    """

    vendor = ""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.alias = dialect.alias
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, S] = (
            weakref.WeakKeyDictionary()
        )
        # The guard of each state, kept alive with the loop's entry.
        self._guards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, sql: str, params: Sequence[Any]) -> Result:
        """Run one statement in autocommit mode; its rows and row count."""
        raise NotImplementedError

    async def read(self, sql: str, params: Sequence[Any]) -> Result:
        """:meth:`run` for a statement that reads and never waits for a
        lock: a driver may run it beside others (PostgreSQL pipelines it)."""
        return await self.run(sql, params)

    async def run_atomic(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> Result:
        """Run statements in one transaction on one connection; the last
        one's rows and row count."""
        raise NotImplementedError

    async def _state(self) -> S:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = await self._open_state()
            if loop in self._states:  # another task opened one meanwhile
                await state.aclose()
                return self._states[loop]
            self._states[loop] = state
            guard = _close_with_loop(state)
            # Started here, so the loop knows it and closes it at shutdown.
            await guard.asend(None)
            self._guards[loop] = guard
        return state

    async def _open_state(self) -> S:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close this driver's resources in the running loop."""
        loop = asyncio.get_running_loop()
        state = self._states.pop(loop, None)
        guard = self._guards.pop(loop, None)
        if guard is not None:
            await guard.aclose()
        elif state is not None:
            await state.aclose()


async def _close_with_loop(state: LoopState) -> AsyncGenerator[None]:
    """Suspended for the loop's life; closed (by the loop's
    ``shutdown_asyncgens`` or by :meth:`Driver.aclose`), it closes ``state``."""
    try:
        yield
    finally:
        # Whatever goes wrong now, the loop is going.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await state.aclose()
