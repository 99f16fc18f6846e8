"""The database settings a run covers, as Django ``DATABASES`` entries.

Each setting gets a database of its own, created empty at the start of a run
and dropped at the end, so that no run measures the leftovers (or the page
layout) of another. The services are those of a developer machine, with the
same environment overrides as ``tests/settings.py``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

SETTINGS = ("sqlite", "sqlite-wal", "postgres", "postgres-prepared", "mariadb")
# What a run covers unless told otherwise.
DEFAULT_SETTINGS = ("sqlite", "sqlite-wal", "postgres", "mariadb")
# "postgres" is Django's default connection: psycopg's client-side binding and
# no prepared statements. "postgres-prepared" turns on what Django's OPTIONS
# offer instead: server-side binding, and statements prepared by psycopg from
# their fifth execution on.
PREPARED_OPTIONS = {"server_side_binding": True, "prepare_threshold": 5}

# What "SQLite with WAL" means here: the write-ahead log, and fsync at
# checkpoints rather than at every commit (the setting WAL is usually paired
# with, and the one diskcache uses for its own files).
WAL_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def _run_tag() -> str:
    return f"py{sys.version_info.major}{sys.version_info.minor}"


@dataclass
class Database:
    """One database setting: its Django entry and how to (re)create it."""

    setting: str
    vendor: str  # Django's connection.vendor: sqlite, postgresql, mysql
    settings_dict: dict[str, Any]
    pragmas: tuple[str, ...] = field(default=())

    def recreate(self) -> None:
        """Start from an empty database."""
        if self.vendor == "sqlite":
            self.drop()
        elif self.vendor == "postgresql":
            name = self.settings_dict["NAME"]
            with _pg_admin(self.settings_dict) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{name}"')
        else:
            name = self.settings_dict["NAME"]
            admin = _mysql_admin(self.settings_dict)
            try:
                cursor = admin.cursor()
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            finally:
                admin.close()

    def drop(self) -> None:
        """Remove the database and everything in it."""
        if self.vendor == "sqlite":
            path = self.settings_dict["NAME"]
            for suffix in ("", "-wal", "-shm", "-journal"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
        elif self.vendor == "postgresql":
            with _pg_admin(self.settings_dict) as admin:
                admin.execute(
                    f'DROP DATABASE IF EXISTS "{self.settings_dict["NAME"]}" WITH (FORCE)'
                )
        else:
            admin = _mysql_admin(self.settings_dict)
            try:
                admin.cursor().execute(f"DROP DATABASE IF EXISTS `{self.settings_dict['NAME']}`")
            finally:
                admin.close()


def database(
    setting: str, workdir: str, suffix: str = "", sqlite_pragmas: tuple[str, ...] = ()
) -> Database:
    """The database of ``setting``; ``suffix`` names a second one beside it
    (the scale run compares a small and a large table). ``sqlite_pragmas``
    are run on every SQLite connection after the setting's own."""
    name = f"keyval_bench_{_run_tag()}{suffix}"
    if setting in ("sqlite", "sqlite-wal"):
        pragmas = (*(WAL_PRAGMAS if setting == "sqlite-wal" else ()), *sqlite_pragmas)
        entry: dict[str, Any] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(workdir, f"{name}_{setting}.sqlite3"),
        }
        if pragmas:
            entry["OPTIONS"] = {"init_command": "; ".join(pragmas)}
        return Database(setting, "sqlite", entry, pragmas)
    if setting in ("postgres", "postgres-prepared"):
        return Database(
            setting,
            "postgresql",
            {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": name,
                "USER": os.environ.get("KEYVAL_PG_USER", "root"),
                "HOST": os.environ.get("KEYVAL_PG_HOST", "127.0.0.1"),
                "PORT": os.environ.get("KEYVAL_PG_PORT", "5432"),
                "OPTIONS": dict(PREPARED_OPTIONS) if setting == "postgres-prepared" else {},
                # Where CREATE DATABASE runs from; not used by Django.
                "ADMIN_NAME": os.environ.get("KEYVAL_PG_NAME", "test"),
            },
        )
    if setting == "mariadb":
        return Database(
            setting,
            "mysql",
            {
                "ENGINE": "django.db.backends.mysql",
                "NAME": name,
                "USER": os.environ.get("KEYVAL_MYSQL_USER", "root"),
                "PASSWORD": os.environ.get("KEYVAL_MYSQL_PASSWORD", ""),
                "HOST": os.environ.get("KEYVAL_MYSQL_HOST", "127.0.0.1"),
                "PORT": os.environ.get("KEYVAL_MYSQL_PORT", "3306"),
                "OPTIONS": {"charset": "utf8mb4"},
            },
        )
    raise ValueError(f"unknown database setting {setting!r}; known: {', '.join(SETTINGS)}")


def django_entry(db: Database) -> dict[str, Any]:
    """The ``DATABASES`` entry without this module's own keys."""
    return {key: value for key, value in db.settings_dict.items() if key != "ADMIN_NAME"}


def _pg_admin(entry: dict[str, Any]) -> Any:
    import psycopg

    return psycopg.connect(
        dbname=entry["ADMIN_NAME"],
        user=entry["USER"],
        host=entry["HOST"],
        port=entry["PORT"],
        autocommit=True,
    )


def _mysql_admin(entry: dict[str, Any]) -> Any:
    import MySQLdb

    return MySQLdb.connect(
        host=entry["HOST"],
        port=int(entry["PORT"]),
        user=entry["USER"],
        password=entry["PASSWORD"],
        charset="utf8mb4",
    )
