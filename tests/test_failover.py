"""Failover with real processes: a primary and a synchronous standby made for
the test, web processes writing the store, the primary killed mid-run, the
standby promoted. The store keeps working, and no acknowledged write is lost.

The pair is new for each run (initdb in a directory of its own, on two free
loopback ports), so the test never touches the server other tests use. It is
slow for a unit test (some seconds), so it runs only with
``KEYVAL_TEST_FAILOVER=1`` (as .ci/run does), and needs the PostgreSQL server
binaries (``initdb``, ``pg_ctl``, ``pg_basebackup``).

``synchronous_commit = on`` with the standby named in
``synchronous_standby_names``: a commit is acknowledged once the standby has
the WAL on disk, which is what makes the promise hold. The primary is stopped
with ``pg_ctl stop -m immediate`` (every server process killed at once, no
shutdown checkpoint): a crash of the server, not of the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.topology import postgres_bindir, unavailable

ROOT = Path(__file__).resolve().parent.parent
WRITERS = 2
# Acknowledged writes each writer makes before the primary dies, and after
# the standby takes over.
WRITES_BEFORE = WRITES_AFTER = 150
TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One PostgreSQL server of the pair, run as the postgres user when root."""

    def __init__(self, bindir: Path, datadir: Path, port: int) -> None:
        self.bindir, self.datadir, self.port = bindir, datadir, port

    def run(self, program: str, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, str(self.bindir / program), *args],
            check=True,
            capture_output=True,
            timeout=TIMEOUT_S,
        )

    def ctl(self, *args: str) -> None:
        self.run("pg_ctl", "-D", str(self.datadir), "-w", "-t", "60", *args)

    def start(self) -> None:
        self.ctl("-l", str(self.datadir.parent / f"{self.datadir.name}.log"), "start")

    def sql(self, statement: str) -> Any:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="root", dbname="postgres", autocommit=True
        ) as conn:
            cursor = conn.execute(statement)
            row = cursor.fetchone() if cursor.description else None
            return None if row is None else row[0]

    def conf(self, name: str, lines: str) -> None:
        with open(self.datadir / name, "a") as conf:
            conf.write(lines)


@pytest.fixture
def pair() -> Iterator[tuple[Server, Server]]:
    """A primary and its synchronous standby, stopped and removed afterwards."""
    if os.environ.get("KEYVAL_TEST_FAILOVER") != "1":
        unavailable("slow: runs with KEYVAL_TEST_FAILOVER=1, as .ci/run sets it")
    bindir = postgres_bindir()
    if bindir is None:
        unavailable("needs the PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup)")
    # Outside /tmp/pytest-of-*, which the postgres user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="keyval-failover-", dir="/var/tmp"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary = Server(bindir, base / "primary", free_port())
    standby = Server(bindir, base / "standby", free_port())
    try:
        primary.run(
            "initdb", "-D", str(primary.datadir), "-U", "root", "-A", "trust", "-E", "UTF8",
            "--locale=C", "-N",
        )  # fmt: skip
        primary.conf(
            "postgresql.conf",
            f"listen_addresses = '127.0.0.1'\nport = {primary.port}\n"
            f"unix_socket_directories = '{base}'\nshared_buffers = 16MB\nmax_connections = 30\n"
            "wal_level = replica\nmax_wal_senders = 4\nsynchronous_commit = on\n"
            "synchronous_standby_names = 'standby'\n",
        )
        primary.start()
        primary.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "root",
            "-D", str(standby.datadir), "-X", "stream", "-R", "-c", "fast",
        )  # fmt: skip
        # Once promoted, the standby has no standby of its own: it must not
        # wait for one (a real failover rebuilds one from the new primary).
        standby.conf("postgresql.conf", f"port = {standby.port}\nsynchronous_standby_names = ''\n")
        standby.conf(
            "postgresql.auto.conf",
            f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=root "
            "application_name=standby'\n",
        )
        standby.start()
        deadline = time.monotonic() + 30
        while primary.sql("SELECT sync_state FROM pg_stat_replication") != "sync":
            assert time.monotonic() < deadline, "the standby did not become synchronous"
            time.sleep(0.1)
        primary.sql("CREATE DATABASE failover")
        yield primary, standby
    finally:
        for server in (primary, standby):
            if (server.datadir / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError):
                    server.ctl("-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


class Writer:
    """A web process writing the store; its acknowledged writes, as they come."""

    def __init__(self, args: list[str], stop_file: Path) -> None:
        self.log = stop_file.parent / f"{args[-1]}.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.failover_writer", *args, str(stop_file)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.acked: list[int] = []
        self.failed = 0
        self.missing: list[int] | None = None
        self.done = threading.Event()
        self.reader = threading.Thread(target=self.read, args=(self.process.stdout,), daemon=True)
        self.reader.start()

    def read(self, stream: IO[str]) -> None:
        with stream:
            self.lines(stream)

    def lines(self, stream: IO[str]) -> None:
        for line in stream:
            word, _, rest = line.partition(" ")
            if word == "ok":
                self.acked.append(int(rest))
            elif word == "err":
                self.failed += 1
            elif word == "missing":
                self.missing = [int(n) for n in rest.strip(" []\n").split(",") if n.strip()]
            elif word.strip() == "done":
                self.done.set()


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_failover_loses_no_acknowledged_write(pair: tuple[Server, Server]) -> None:
    primary, standby = pair
    base = primary.datadir.parent
    hosts, ports = "127.0.0.1,127.0.0.1", f"{primary.port},{standby.port}"
    subprocess.run(
        [sys.executable, "-m", "tests.failover_writer", hosts, ports, "migrate"],
        cwd=ROOT, check=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    stop_file = base / "stop"
    writers = [Writer([hosts, ports, f"w{n}"], stop_file) for n in range(WRITERS)]
    try:
        wait_until(lambda: all(len(w.acked) >= WRITES_BEFORE for w in writers), "writes")
        primary.ctl("-m", "immediate", "stop")
        crashed = time.monotonic()
        before = [len(w.acked) for w in writers]
        standby.ctl("promote")
        promoted = time.monotonic()
        wait_until(
            lambda: all(
                len(w.acked) >= n + WRITES_AFTER for w, n in zip(writers, before, strict=True)
            ),
            "writes on the promoted standby",
        )
        stop_file.touch()
        for writer in writers:
            assert writer.done.wait(TIMEOUT_S), writer.log.read_text()
            writer.process.wait(TIMEOUT_S)
    finally:
        stop_file.touch()
        for writer in writers:
            if writer.process.poll() is None:
                writer.process.kill()
                writer.process.wait()
            writer.reader.join(TIMEOUT_S)
    acked = sum(len(w.acked) for w in writers)
    failed = sum(w.failed for w in writers)
    print(
        f"\nfailover: {sum(before)} writes acknowledged before the primary died, "
        f"{acked - sum(before)} after; {failed} failed during the switch; promotion took "
        f"{promoted - crashed:.2f}s; lost: {sum(len(w.missing or []) for w in writers)}"
    )
    assert [w.process.returncode for w in writers] == [0] * WRITERS, writers[0].log.read_text()
    assert [w.missing for w in writers] == [[] for _ in writers]
    assert standby.sql("SELECT pg_is_in_recovery()") is False
