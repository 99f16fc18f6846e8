"""What every benchmark process shares: Django configured for its databases,
the versions measured, planner statistics, progress lines on stderr.

Kept apart from :mod:`benchmarks.worker`, which dispatches to the scale and
profiling runs, so that those runs need not import the worker back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .databases import Database, django_entry

SECRET_KEY = "keyval-benchmarks-not-secret"
ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup_django(databases: dict[str, Database], caches: dict[str, Any]) -> None:
    import django
    from django.conf import settings
    from django.core.management import call_command

    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET_KEY,
        USE_TZ=True,
        DATABASES={alias: django_entry(db) for alias, db in databases.items()},
        INSTALLED_APPS=["keyval_backend"],
        CACHES=caches,
    )
    django.setup()
    for alias in databases:
        call_command("migrate", database=alias, verbosity=0, interactive=False)
    if any(entry["BACKEND"].endswith(".db.DatabaseCache") for entry in caches.values()):
        call_command("createcachetable", verbosity=0)


def versions(db: Database, redis: Any = None) -> dict[str, str]:
    import platform
    import sqlite3

    import django
    from django.db import connection

    found = {
        "python": platform.python_version(),
        "django": django.get_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    connection.ensure_connection()
    if db.vendor == "postgresql":
        version = connection.pg_version
        found["postgresql"] = f"{version // 10000}.{version % 10000}"
    elif db.vendor == "mysql":
        found["server"] = connection.connection.get_server_info()
    if redis is not None:
        found["redis"] = str(redis.info()["redis_version"])
    return found


def analyze(db: Database, tables: list[str], alias: str = "default") -> None:
    """Give the server's planner statistics of the filled tables, as
    autovacuum (PostgreSQL) or InnoDB's automatic recalculation (MariaDB)
    would soon do on their own: a table created and filled seconds ago has
    none, and PostgreSQL then plans a batch lookup as a scan of the whole
    store. SQLite plans these statements the same without statistics."""
    from django.db import connections

    if db.vendor == "sqlite":
        return
    connection = connections[alias]
    with connection.cursor() as cursor:
        for table in tables:
            keyword = "ANALYZE TABLE" if db.vendor == "mysql" else "ANALYZE"
            cursor.execute(f"{keyword} {connection.ops.quote_name(table)}")
            if db.vendor == "mysql":
                cursor.fetchall()


def child_env() -> dict[str, str]:
    """The environment of a benchmark subprocess: this checkout first on its path."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def run_configured(
    module: list[str], config: dict[str, Any], workdir: str, what: str
) -> dict[str, Any] | None:
    """Run ``python -m MODULE... CONFIG.json`` for ``config`` (given its
    ``output`` path and ``workdir``); the JSON it wrote there, or None if it
    failed (it said why on stderr)."""
    fd, output = tempfile.mkstemp(suffix=".json", dir=workdir)
    os.close(fd)
    config = {**config, "output": output, "workdir": workdir}
    config_path = output + ".config"
    Path(config_path).write_text(json.dumps(config))
    completed = subprocess.run(
        [sys.executable, "-m", *module, config_path], cwd=ROOT, env=child_env(), check=False
    )
    if completed.returncode != 0:
        print(f"!! {what} failed (exit {completed.returncode})", file=sys.stderr)
        return None
    return json.loads(Path(output).read_text())  # type: ignore[no-any-return]
