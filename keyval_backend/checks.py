"""System checks (``manage.py check``): configuration mistakes found at start-up
instead of at the first read or write."""

from __future__ import annotations

import sqlite3
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
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
        database = options.get("DATABASE")
        if database is not None and database not in settings.DATABASES:
            errors.append(
                checks.Error(
                    f"CACHES[{alias!r}]['OPTIONS']['DATABASE'] is {database!r}, "
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
