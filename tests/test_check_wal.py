"""keyval.W001: a store in an SQLite file in rollback-journal mode, where
every write waits for the disk, gets a suggestion to turn on WAL.

The check asks the database for its journal mode, so it is a database check:
``migrate`` and ``check --database`` run it, a plain ``check`` does not.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

import keyval_backend.checks
from keyval_backend.checks import check_sqlite_journal

pytestmark = pytest.mark.django_db
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="an SQLite check")


def warnings(databases: Any = ("default",)) -> list[str]:
    return [message.id for message in check_sqlite_journal(databases=databases)]


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the database report a journal mode: ``journal("delete")``."""

    def report(mode: str) -> None:
        monkeypatch.setattr(keyval_backend.checks, "_journal_mode", lambda alias: mode)

    return report


@on_sqlite
@pytest.mark.parametrize("mode", ["delete", "truncate", "persist"])
def test_w001_for_a_rollback_journal(journal: Any, mode: str) -> None:
    journal(mode)
    assert warnings() == ["keyval.W001"]
    (message,) = check_sqlite_journal(databases=["default"])
    assert repr(mode) in message.msg
    assert "journal_mode=WAL" in (message.hint or "")


@on_sqlite
def test_no_w001_in_wal_mode(journal: Any) -> None:
    journal("wal")
    assert warnings() == []


@on_sqlite
def test_the_mode_is_the_database_file_s(journal: Any) -> None:
    assert keyval_backend.checks._journal_mode("default") in {
        "delete",
        "truncate",
        "persist",
        "wal",
    }


@on_sqlite
def test_no_w001_for_an_in_memory_database(journal: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    journal("memory")
    monkeypatch.setattr(connection, "is_in_memory_db", lambda: True)
    assert warnings() == []


@on_sqlite
def test_no_w001_unless_databases_are_checked(journal: Any) -> None:
    journal("delete")
    assert warnings(databases=None) == []


@on_sqlite
def test_no_w001_for_a_database_without_stores(journal: Any, settings: Any) -> None:
    journal("delete")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "keyval": {
            "BACKEND": "keyval_backend.cache.KeyValCache",
            "OPTIONS": {"DATABASE": "elsewhere"},
        },
    }
    assert warnings() == []


@on_sqlite
def test_check_with_the_database_shows_it(journal: Any) -> None:
    journal("delete")
    out = io.StringIO()
    call_command("check", "--database", "default", stdout=out, stderr=out)
    assert "keyval.W001" in out.getvalue()


@pytest.mark.skipif(connection.vendor == "sqlite", reason="the server databases")
def test_no_w001_on_server_databases() -> None:
    assert warnings() == []
