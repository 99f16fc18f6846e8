"""What the deployment tests need beyond the test database, and how they
skip without it.

PgBouncer, a hot standby of the test server and a primary/standby pair to
fail over are not on a developer's machine; .ci/run makes them (see
.ci/pg_topology.sh) and runs the tests that need them with
``KEYVAL_REQUIRE_TOPOLOGY=1``, which turns every such skip into a failure, so
that CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest
from django.db import connection


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it where CI promised the deployment."""
    if os.environ.get("KEYVAL_REQUIRE_TOPOLOGY") == "1":
        pytest.fail(f"{reason} (KEYVAL_REQUIRE_TOPOLOGY=1: .ci/run should have provided it)")
    pytest.skip(reason)


def require_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL; this run is on {connection.vendor}")


def postgres_bindir() -> Path | None:
    """The directory of initdb, pg_ctl and pg_basebackup, if installed."""
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if (bindir / "pg_ctl").exists():
            return bindir
    # Debian keeps the server binaries out of PATH; the newest version wins.
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None
