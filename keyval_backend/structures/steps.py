"""Structure commands as steps: one body for a sync method and its async twin.

A command's body is a generator that yields the statements it needs and is
sent back each one's result, ``(rows, rowcount)``. It does no I/O itself, so
:func:`drive` runs it on Django's connection (the sync method) and
:func:`adrive` on the alias's native async driver (the ``a*`` twin, no
thread hop): the same SQL, checks and errors on both paths. A statement's
database error is thrown back into the body, where the body may handle it as
the sync code would.

What a statement cannot say runs as :class:`InThread`: a sync callable that
:func:`adrive` hands to Django's thread (a write of more members than one
statement holds, which needs a transaction of several statements).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

from asgiref.sync import sync_to_async
from django.db import DatabaseError, transaction

from .. import aio, db

if TYPE_CHECKING:
    from ..aio import Driver

T = TypeVar("T")
P = ParamSpec("P")
# (rows, rowcount): rows read to the end, [] for a statement without rows.
Result = tuple[list[Any], int]


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement in autocommit mode. ``rows``: it returns rows to read.
    ``write``: run it again if it lost a deadlock (the server rolled it back
    whole)."""

    sql: str
    params: Sequence[Any]
    rows: bool = True
    write: bool = False


@dataclass(frozen=True, slots=True)
class Atomic:
    """Statements in one transaction (the first locks a row the others
    need); the result is the last one's. Run again whole after a deadlock."""

    statements: tuple[Statement, ...]


@dataclass(frozen=True, slots=True)
class InThread:
    """A sync callable, run as it is by :func:`drive` and in Django's thread
    by :func:`adrive`; the result is its return value."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


Request = Statement | Atomic | InThread
Steps = Generator[Request, Any, T]


def drive(alias: str, steps: Steps[T]) -> T:
    """Run ``steps`` on Django's connection of ``alias``."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        reply = error = None
        try:
            reply = _run(alias, request)
        except DatabaseError as exc:
            error = exc


async def adrive(driver: Driver[Any], steps: Steps[T]) -> T:
    """Run ``steps`` in the event loop, on ``driver``'s connections."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        reply = error = None
        try:
            reply = await _arun(driver, request)
        except DatabaseError as exc:
            error = exc


def command(body: Callable[Concatenate[Any, P], Steps[T]]) -> Callable[Concatenate[Any, P], T]:
    """The sync method of a command whose body is steps; the body stays
    reachable as ``.steps`` for :func:`~.base.async_twins` to drive natively."""

    @wraps(body)
    def method(self: Any, *args: P.args, **kwargs: P.kwargs) -> T:
        return drive(self._get_dialect().alias, body(self, *args, **kwargs))

    method.steps = body  # type: ignore[attr-defined]
    return cast("Callable[Concatenate[Any, P], T]", method)


def _execute(cursor: db.Cursor, statement: Statement) -> Result:
    cursor.execute(statement.sql, statement.params)
    rows = list(cursor.fetchall()) if statement.rows else []
    return rows, cursor.rowcount


def _run(alias: str, request: Request) -> Any:
    if isinstance(request, InThread):
        return request.function(*request.args)
    if isinstance(request, Atomic):
        statements = request.statements

        def attempt() -> Result:
            with transaction.atomic(using=alias), db.cursor(alias) as cursor:
                results = [_execute(cursor, statement) for statement in statements]
            return results[-1]

        return db.retry_on_deadlock(alias, attempt)

    statement = request

    def once() -> Result:
        with db.cursor(alias) as cursor:
            return _execute(cursor, statement)

    return db.retry_on_deadlock(alias, once) if statement.write else once()


async def _arun(driver: Driver[Any], request: Request) -> Any:
    if isinstance(request, InThread):
        return await sync_to_async(request.function, thread_sensitive=True)(*request.args)
    if isinstance(request, Atomic):
        texts = [(statement.sql, statement.params) for statement in request.statements]
        return await aio.retry_on_deadlock(lambda: driver.run_atomic(texts))
    statement = request
    if statement.write:
        return await aio.retry_on_deadlock(lambda: driver.run(statement.sql, statement.params))
    return await driver.read(statement.sql, statement.params)


__all__ = ["Atomic", "InThread", "Result", "Statement", "Steps", "adrive", "command", "drive"]
