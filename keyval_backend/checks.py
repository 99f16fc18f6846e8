"""System checks (``manage.py check``): configuration mistakes found at start-up
instead of at the first read or write."""

from __future__ import annotations

import sqlite3
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils.module_loading import import_string

from .cache import KeyValCache
from .serializers import load_serializer
from .sql.sqlite import MIN_VERSION as SQLITE_MIN_VERSION

BACKEND = "keyval_backend.cache.KeyValCache"


def _is_keyval_backend(path: Any) -> bool:
    try:
        cls = import_string(path)
    except (ImportError, TypeError, ValueError):
        return False
    return isinstance(cls, type) and issubclass(cls, KeyValCache)


@checks.register(checks.Tags.caches)
def check_caches(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    caches_setting: dict[str, dict[str, Any]] = settings.CACHES
    keyval = caches_setting.get("keyval")
    if keyval is not None and not _is_keyval_backend(keyval.get("BACKEND")):
        errors.append(
            checks.Error(
                f"CACHES['keyval'] uses {keyval.get('BACKEND')!r}; KeyVal needs {BACKEND!r}.",
                hint="Point CACHES['keyval']['BACKEND'] at keyval_backend.cache.KeyValCache, "
                "or remove the entry to get the default one.",
                id="keyval.E001",
            )
        )
    for alias, params in caches_setting.items():
        if not _is_keyval_backend(params.get("BACKEND")):
            continue
        options: dict[str, Any] = params.get("OPTIONS") or {}
        near_cache = options.get("NEAR_CACHE")
        named = {option: options.get(option) for option in ("DATABASE", "READ_DATABASE")}
        if isinstance(near_cache, dict):
            named["NEAR_CACHE']['LISTEN_DATABASE"] = near_cache.get("LISTEN_DATABASE")
        for option, database in named.items():
            if database is not None and database not in settings.DATABASES:
                errors.append(
                    checks.Error(
                        f"CACHES[{alias!r}]['OPTIONS'][{option!r}] is {database!r}, "
                        "which is not in DATABASES.",
                        hint=f"Use one of: {', '.join(map(repr, settings.DATABASES))}.",
                        id="keyval.E002",
                    )
                )
        try:
            load_serializer(options.get("SERIALIZER", "pickle"))
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(f"CACHES[{alias!r}]: {exc}", id="keyval.E003"))
            continue
        misconfigured = KeyValCache(params.get("LOCATION", ""), params).misconfigured
        if misconfigured is not None:
            errors.append(checks.Error(f"CACHES[{alias!r}]: {misconfigured}", id="keyval.E005"))
    return errors


@checks.register(checks.Tags.caches)
def check_sqlite_version(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    databases: dict[str, dict[str, Any]] = settings.DATABASES
    uses_sqlite = any(db.get("ENGINE", "").endswith("sqlite3") for db in databases.values())
    if uses_sqlite and sqlite3.sqlite_version_info < SQLITE_MIN_VERSION:
        return [
            checks.Error(
                f"SQLite {sqlite3.sqlite_version} is too old for keyval_backend, which needs "
                f"{'.'.join(map(str, SQLITE_MIN_VERSION))} (INSERT ... RETURNING).",
                id="keyval.E004",
            )
        ]
    return []


@checks.register(checks.Tags.database)
def check_sqlite_journal(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Suggest WAL where a store lives in an SQLite file in rollback-journal
    mode, where every write waits for the disk twice (journal, then file).

    A database check: Django runs it with ``migrate`` and ``check --database``,
    since it asks the database for its journal mode (WAL is a property of the
    file, not only of a connection setting).
    """
    messages: list[checks.CheckMessage] = []
    for alias in sorted(_keyval_databases() & set(databases or ())):
        connection: Any = connections[alias]  # is_in_memory_db: SQLite's own
        if connection.vendor != "sqlite" or connection.is_in_memory_db():
            continue
        mode = _journal_mode(alias)
        if mode != "wal":
            messages.append(
                checks.Warning(
                    f"The SQLite database {alias!r} holding keyval stores is in {mode!r} "
                    "journal mode: every write to a store waits for the disk.",
                    hint='Add "init_command": "PRAGMA journal_mode=WAL; PRAGMA '
                    "synchronous=NORMAL;\" to its OPTIONS (see the docs' Configuration, "
                    "SQLite), or silence keyval.W001 if every write must reach the disk "
                    "before it returns.",
                    id="keyval.W001",
                )
            )
    return messages


def _keyval_databases() -> set[str]:
    """The database aliases the KeyValCache aliases of CACHES write to, as
    each backend resolves it (a misconfigured one is keyval.E005's)."""
    aliases = set()
    caches_setting: dict[str, dict[str, Any]] = settings.CACHES
    for params in caches_setting.values():
        if _is_keyval_backend(params.get("BACKEND")):
            backend = KeyValCache(params.get("LOCATION", ""), params)
            if backend.misconfigured is None:
                aliases.add(backend.database)
    return aliases


def _journal_mode(alias: str) -> str:
    with connections[alias].cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        return str(cursor.fetchone()[0]).lower()
