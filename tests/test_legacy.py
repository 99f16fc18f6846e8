"""``keyval -c import-django-keyval``: the table of django-keyval 0.1.x, read
from a table of the same shape made here, reads back through KeyVal."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from keyval_backend import KeyVal, legacy
from keyval_backend.cache import KeyValCache
from keyval_backend.serializers import BaseSerializer

KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
# Python 2's ``pickle.dumps(value)`` (protocol 0), as stored in the text column.
PY2_ROWS: list[tuple[str, str, str, Any]] = [
    ("settings", "greeting", "S'hello'\np0\n.", "hello"),
    ("settings", "unicode", pickle.dumps("café", 0).decode("latin-1"), "café"),
    ("settings", "answer", "I42\n.", 42),
    ("settings", "nothing", "N.", None),
    ("counters", "config", "(dp0\nS'a'\np1\nI1\nsS'b'\np2\n(lp3\nI2\naI3\nas.",
     {"a": 1, "b": [2, 3]}),
    ("counters", "list", "(lp0\nS'x'\np1\naNaI7\na.", ["x", None, 7]),
]  # fmt: skip
# A row written under Python 3: the column holds ``repr`` of the pickle's bytes.
PY3_ROW = ("settings", "py3", repr(pickle.dumps({"t": (1, 2)})), {"t": (1, 2)})


@pytest.fixture
def old_table(kv: KeyValCache) -> Iterator[Callable[..., None]]:
    """A temporary table shaped like django-keyval's: temporary, so that
    MariaDB does not commit the test's transaction on CREATE TABLE."""
    qn = connection.ops.quote_name
    columns = (
        f"{qn('id')} integer PRIMARY KEY, {qn('name')} varchar(255) NOT NULL, "
        f"{qn('key')} varchar(255) NOT NULL, {qn('value')} text NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {qn(legacy.OLD_TABLE)} ({columns})")

    def fill(rows: list[tuple[str, str, str, Any]], first_id: int = 1) -> None:
        with connection.cursor() as cursor:
            for row_id, (name, key, text, _) in enumerate(rows, first_id):
                cursor.execute(
                    f"INSERT INTO {qn(legacy.OLD_TABLE)} VALUES (%s, %s, %s, %s)",
                    [row_id, name, key, text],
                )

    yield fill
    temporary = " TEMPORARY" if connection.vendor == "mysql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP{temporary} TABLE IF EXISTS {qn(legacy.OLD_TABLE)}")


def run(*args: str) -> str:
    err = io.StringIO()
    call_command("keyval", "-c", "import-django-keyval", *args, stderr=err)
    return err.getvalue()


def test_import_every_row(old_table: Callable[..., None], suite_serializer: BaseSerializer) -> None:
    old_table([*PY2_ROWS, PY3_ROW])
    message = run("--yes")
    assert "Imported 7 entries from django_keyval__kvstore: 7 new." in message
    for name, key, _, value in [*PY2_ROWS, PY3_ROW]:
        # What the serializer gives back: the value itself under pickle, its
        # tuples as lists under json.
        expected = suite_serializer.loads(suite_serializer.dumps(value))
        assert KeyVal(name).get(key) == expected
        assert type(KeyVal(name).get(key)) is type(expected)
    assert len(KeyVal("settings")) == 5


def test_refused_without_yes(old_table: Callable[..., None]) -> None:
    old_table(PY2_ROWS)
    with pytest.raises(CommandError, match="unpickles every row") as failure:
        run()
    assert failure.value.returncode == 2
    assert "\n" not in str(failure.value)
    assert len(KeyVal("settings")) == 0


def test_existing_keys_kept_unless_replace(old_table: Callable[..., None]) -> None:
    old_table(PY2_ROWS)
    KeyVal("settings")["answer"] = "mine"
    assert "6 new" not in (message := run("--yes"))
    assert "5 new, 1 skipped" in message
    assert KeyVal("settings")["answer"] == "mine"
    message = run("--yes", "--replace")
    assert "0 new, 6 replaced" in message
    assert KeyVal("settings")["answer"] == 42


def test_corrupt_row_names_its_id_and_imports_nothing(old_table: Callable[..., None]) -> None:
    old_table(PY2_ROWS)
    old_table([("settings", "bad", "this is no pickle", None)], first_id=100)
    with pytest.raises(CommandError, match=r"row id 100: cannot unpickle") as failure:
        run("--yes")
    assert failure.value.returncode == 3
    assert "nothing was imported" in str(failure.value)
    assert len(KeyVal("settings")) == 0
    assert len(KeyVal("counters")) == 0


def test_continue_on_error_imports_the_rest(old_table: Callable[..., None]) -> None:
    old_table([("settings", "bad", "b'\\x80'", None)], first_id=0)
    old_table(PY2_ROWS)
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 bad row skipped"):
        call_command(
            "keyval", "-c", "import-django-keyval", "--yes", "--continue-on-error", stderr=err
        )
    assert "skipped row id 0" in err.getvalue()
    assert KeyVal("counters")["list"] == ["x", None, 7]


def test_a_value_the_cache_cannot_store_is_a_bad_row(
    old_table: Callable[..., None], use_caches: Callable[..., None]
) -> None:
    """A json cache cannot hold a set: that row is reported by id, like one
    that does not unpickle, and nothing is imported."""
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "json"}})
    old_table(PY2_ROWS)
    old_table([("settings", "set", repr(pickle.dumps({1, 2})), None)], first_id=100)
    with pytest.raises(CommandError, match=r"row id 100: the value cannot be stored") as failure:
        run("--yes")
    assert failure.value.returncode == 3
    assert len(KeyVal("settings")) == 0


def test_table_option_and_pages(old_table: Callable[..., None], monkeypatch: Any) -> None:
    monkeypatch.setattr(legacy, "PAGE_SIZE", 2)
    old_table(PY2_ROWS)
    with pytest.raises(CommandError) as failure:
        run("--yes", "--table", "no_such_table")
    assert failure.value.returncode == 3
    run("--yes", "--table", legacy.OLD_TABLE, "--database", "default")
    assert len(KeyVal("settings")) + len(KeyVal("counters")) == len(PY2_ROWS)


def test_takes_no_store() -> None:
    with pytest.raises(CommandError, match="does not take -n/--store"):
        run("--yes", "-n", "x")
