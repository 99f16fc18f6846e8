"""Import the table of django-keyval 0.1.x (``django_keyval__kvstore``).

The old table holds one row a key: ``id``, ``name`` (the store), ``key`` and
``value``, the text of ``pickle.dumps(value)``. Under Python 2 that is a
protocol 0 pickle, ASCII text stored as it is; under Python 3 the column got
the ``repr`` of the bytes (``b'...'``), which is read back with
``ast.literal_eval`` (it evaluates literals only, never code).

Unpickling runs code: the rows imported must come from a trusted database.
Each value is written through the cache API (``facade_view(name)``), so it is
signed with this project's SECRET_KEY and reads back through ``KeyVal(name)``.
"""

from __future__ import annotations

import ast
import pickle
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from .cache import KeyValCache

OLD_TABLE = "django_keyval__kvstore"
# Rows read per query: one page in memory at a time.
PAGE_SIZE = 500


class BadRow(ValueError):
    """A row of the old table that cannot be imported; names its ``id``."""

    def __init__(self, row_id: Any, reason: str) -> None:
        super().__init__(f"row id {row_id}: {reason}")
        self.row_id = row_id
        self.reason = reason


@dataclass
class ImportResult:
    imported: int = 0  # written where the key was absent
    replaced: int = 0  # written over an existing key (replace=True)
    skipped: int = 0  # not written: the key exists (replace=False)
    bad_rows: int = 0  # not written: reported to on_bad_row


def old_rows(database: str, table: str = OLD_TABLE) -> Iterator[tuple[Any, str, str, str]]:
    """``(id, name, key, value)`` of every row of the old table, in id order,
    a page at a time: each page starts after the last id of the one before,
    so no cursor stays open between pages and memory stays constant."""
    connection = connections[database]
    qn = connection.ops.quote_name
    select = f"SELECT {qn('id')}, {qn('name')}, {qn('key')}, {qn('value')} FROM {qn(table)} "
    order = f"ORDER BY {qn('id')} LIMIT %s"
    # The first page has no lower bound on id: ids may be zero or negative.
    sql, params = select + order, [PAGE_SIZE]
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            page = cursor.fetchall()
        yield from page
        if len(page) < PAGE_SIZE:
            return
        sql, params = f"{select}WHERE {qn('id')} > %s {order}", [page[-1][0], PAGE_SIZE]


def pickle_bytes(text: str | bytes) -> bytes:
    """The pickle stored in a ``value`` column.

    A Python 3 row holds ``repr(bytes)``; a Python 2 row the protocol 0
    pickle itself, ASCII but for the raw bytes of non-ASCII ``unicode``
    characters, which a text column may hand back as code points below 256.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("latin-1")
    stripped = text.strip()
    if stripped[:2] in ("b'", 'b"'):
        data = ast.literal_eval(stripped)
        if not isinstance(data, bytes):
            raise ValueError("not the repr of a bytes object")
        return data
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def unpickle(text: str | bytes) -> Any:
    """The value of a ``value`` column. Python 2 ``str`` objects were bytes
    holding (in practice) UTF-8 text: they are read as ``str``. The caller
    vouches for the row (the command's --yes): unpickling runs code."""
    return pickle.loads(pickle_bytes(text), encoding="utf-8")


def import_table(
    backend: KeyValCache,
    *,
    database: str,
    table: str = OLD_TABLE,
    replace: bool = False,
    on_bad_row: Callable[[BadRow], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Copy every row of the old ``table`` in ``database`` into ``backend``'s
    stores (the row's ``name``), key by key through the cache API.

    Existing keys are kept (and counted as skipped) unless ``replace``. All or
    nothing: the first bad row raises BadRow and nothing is written. With
    ``on_bad_row``, bad rows are passed to it instead and the rest is written.
    """
    result = ImportResult()
    views: dict[str, KeyValCache] = {}
    atomic = transaction.atomic(using=backend.database) if on_bad_row is None else nullcontext()
    with atomic:
        for done, (row_id, name, key, text) in enumerate(old_rows(database, table), 1):
            try:
                if not isinstance(name, str) or not isinstance(key, str):
                    raise BadRow(row_id, "name and key must be text")
                try:
                    value = unpickle(text)
                except Exception as exc:
                    raise BadRow(
                        row_id, f"cannot unpickle the value: {type(exc).__name__}: {exc}"
                    ) from exc
                view = views.get(name)
                if view is None:
                    view = views[name] = backend.facade_view(name)
                try:
                    if replace:
                        if view.upsert(key, value):
                            result.imported += 1
                        else:
                            result.replaced += 1
                    elif view.add(key, value):
                        result.imported += 1
                    else:
                        result.skipped += 1
                except (TypeError, ValueError, pickle.PicklingError) as exc:
                    raise BadRow(row_id, f"the value cannot be stored: {exc}") from exc
            except BadRow as exc:
                if on_bad_row is None:
                    raise
                result.bad_rows += 1
                on_bad_row(exc)
            if progress is not None:
                progress(done)
    return result
