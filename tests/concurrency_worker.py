"""Real worker processes for ``tests/test_concurrency.py``, and the jobs they run.

Threads in one process share the GIL and, in tests, often one connection, so
they prove little about a database's locking; these workers are OS processes,
each with its own Django set-up and its own connections, started with the
"spawn" method so that none inherits the test process's open connection.

:class:`WorkerPool` lives in the test process; :func:`serve` is the loop each
worker runs. A worker imports the same settings module (the environment is
inherited) and overrides the ``default`` database with what the pool passes:
the *test* database's NAME, which pytest-django chose at run time, and the
connection OPTIONS the tests want (on SQLite, a busy timeout).

Every run releases all threads of all workers at the same instant: each thread
connects first, the worker reports "ready", and the pool sets one shared
Event when every worker has. A job is a module-level function (pickled by
reference) called as ``job(worker, thread, **kwargs)``; what it returns comes
back to the test, and what it raises fails the test with its traceback.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from typing import Any

# Longest any one step (start-up, getting ready, a whole job) may take before
# the run counts as hung: far above what the tests need, so only a deadlock
# or a lost worker ever reaches it.
STEP_TIMEOUT = 60.0

# Tracebacks a load job keeps: the first few tell the story, thousands flood it.
MAX_TRACEBACKS = 5

Job = Callable[..., Any]


class WorkerError(AssertionError):
    """A worker failed or hung; the message carries its traceback."""


class WorkerPool:
    """``processes`` spawned workers that run one job at a time, together.

    Processes start on the first :meth:`run` and are reused by later runs
    (a Django start-up per process is the slow part); a run that loses a
    worker or times out closes the pool, and the next run starts a new one.
    """

    def __init__(self, processes: int, database: dict[str, Any]) -> None:
        self.processes = processes
        self._database = database
        self._context = multiprocessing.get_context("spawn")
        self._start = self._context.Event()
        self._workers: list[tuple[BaseProcess, Connection]] = []

    def run(self, job: Job, *, threads: int = 1, **kwargs: Any) -> list[list[Any]]:
        """Run ``job`` in ``threads`` threads of every worker, all released at
        once; return ``results[worker][thread]``."""
        if not self._workers:
            self._spawn()
        self._start.clear()
        try:
            for index, (_, conn) in enumerate(self._workers):
                conn.send((index, job, threads, kwargs))
            self._receive_all("ready")
            self._start.set()
            outcomes = self._receive_all("done")
        except BaseException:
            self.close()
            raise
        failures = [detail for status, detail in outcomes if status == "failed"]
        if failures:
            raise WorkerError(f"{job.__name__} failed in a worker:\n" + "\n".join(failures))
        return [detail for _, detail in outcomes]

    def close(self) -> None:
        """Stop the workers (they close their connections as they go)."""
        workers, self._workers = self._workers, []
        for _, conn in workers:
            with contextlib.suppress(OSError):  # already gone: terminated below
                conn.send(None)
        for process, conn in workers:
            process.join(STEP_TIMEOUT)
            if process.is_alive():
                process.terminate()
                process.join()
            conn.close()
            process.close()

    def _spawn(self) -> None:
        for _ in range(self.processes):
            parent, child = self._context.Pipe()
            process = self._context.Process(
                target=serve, args=(child, self._start, self._database), daemon=True
            )
            process.start()
            child.close()
            self._workers.append((process, parent))

    def _receive_all(self, stage: str) -> list[tuple[str, Any]]:
        """One message from every worker, failing on a dead or silent one."""
        messages: dict[int, tuple[str, Any]] = {}
        deadline = time.monotonic() + STEP_TIMEOUT
        while len(messages) < len(self._workers):
            pending = [
                (index, process, conn)
                for index, (process, conn) in enumerate(self._workers)
                if index not in messages
            ]
            handles: list[Connection | int] = [conn for _, _, conn in pending]
            handles += [process.sentinel for _, process, _ in pending]
            ready = wait(handles, timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                silent = [index for index, _, _ in pending]
                raise WorkerError(f"workers {silent} hung before {stage!r}")
            for index, process, conn in pending:
                # A message sent just before dying still counts: read it first.
                if conn in ready:
                    try:
                        messages[index] = conn.recv()
                        continue
                    except EOFError:
                        pass
                if process.sentinel in ready or conn in ready:
                    process.join(STEP_TIMEOUT)  # reaps it, so that exitcode is set
                    code = process.exitcode
                    raise WorkerError(f"worker {index} died (exit code {code}) before {stage!r}")
        return [messages[index] for index in range(len(self._workers))]


def serve(conn: Connection, start: Event, database: dict[str, Any]) -> None:
    """A worker's life: set Django up on the test database, then run jobs
    until the pool sends None."""
    import django
    from django.conf import settings

    settings.DATABASES["default"].update(database)
    django.setup()
    try:
        while (message := conn.recv()) is not None:
            index, job, threads, kwargs = message
            conn.send(_run(conn, start, index, job, threads, kwargs))
    finally:
        conn.close()


def _run(
    conn: Connection, start: Event, index: int, job: Job, threads: int, kwargs: dict[str, Any]
) -> tuple[str, Any]:
    """Run one job in ``threads`` threads; report "ready" once every thread
    has connected, and return ("done", results) or ("failed", tracebacks)."""
    from django.db import connections

    connected = threading.Barrier(threads + 1, timeout=STEP_TIMEOUT)
    results: list[Any] = [None] * threads
    failures: list[str] = []

    def thread_main(thread: int) -> None:
        try:
            try:
                # Connect before the start, so that the race is between
                # statements, not between connection set-ups.
                connections["default"].ensure_connection()
                connected.wait()
            except BaseException:
                connected.abort()
                raise
            if not start.wait(STEP_TIMEOUT):
                raise TimeoutError("the start signal never came")
            results[thread] = job(index, thread, **kwargs)
        except BaseException:
            failures.append(f"--- worker {index}, thread {thread}:\n{traceback.format_exc()}")
        finally:
            connections.close_all()

    pool = [threading.Thread(target=thread_main, args=(thread,)) for thread in range(threads)]
    for thread in pool:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        connected.wait()  # broken: the failing thread's traceback is reported below
    conn.send(("ready", None))
    for thread in pool:
        thread.join(STEP_TIMEOUT)
        if thread.is_alive():
            failures.append(f"--- worker {index}, {thread.name}: still running after the timeout")
    return ("failed", "\n".join(failures)) if failures else ("done", results)


# -- jobs -------------------------------------------------------------------------


def set_keys(worker: int, thread: int, store: str, keys: list[str]) -> list[str]:
    """``KeyVal(store).set`` every key; the keys this thread created."""
    from keyval_backend import KeyVal

    kv = KeyVal(store)
    return [key for key in keys if kv.set(key, (worker, thread, key))]


def pop_keys(worker: int, thread: int, store: str, keys: list[str]) -> dict[str, Any]:
    """``pop_default`` every key; what this thread got, by key."""
    from keyval_backend import KeyVal

    kv = KeyVal(store)
    missing = object()
    popped = {}
    for key in keys:
        value = kv.pop_default(key, missing)
        if value is not missing:
            popped[key] = value
    return popped


def incr_key(worker: int, thread: int, key: str, times: int) -> list[int]:
    """``incr`` one key ``times`` times; the values incr returned."""
    from django.core.cache import caches

    cache = caches["keyval"]
    return [cache.incr(key) for _ in range(times)]


def add_keys(worker: int, thread: int, keys: list[str]) -> list[str]:
    """``add`` every key; the keys this thread won."""
    from django.core.cache import caches

    cache = caches["keyval"]
    return [key for key in keys if cache.add(key, (worker, thread, key))]


def mixed_load(
    worker: int, thread: int, store: str, keys: list[str], seconds: float, set_ratio: float
) -> dict[str, Any]:
    """Random gets and sets for ``seconds``: counts, and every error seen.

    The keys always exist, so a get that misses is an error too.
    """
    from keyval_backend import KeyVal

    kv = KeyVal(store)
    rng = random.Random(worker * 1000 + thread)
    gets = sets = errors = 0
    tracebacks: list[str] = []
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        key = rng.choice(keys)
        try:
            if rng.random() < set_ratio:
                kv.set(key, (worker, sets))
                sets += 1
            else:
                kv.get(key)
                gets += 1
        except Exception:
            errors += 1
            if len(tracebacks) < MAX_TRACEBACKS:
                tracebacks.append(traceback.format_exc())
    return {
        "gets": gets,
        "sets": sets,
        "errors": errors,
        "tracebacks": tracebacks,
        "seconds": elapsed,
    }


def flap_or_purge(worker: int, thread: int, store: str, keys: list[str], setters: int) -> int:
    """The first ``setters`` workers turn every key expired (``timeout=0``)
    then live again; the others purge expired rows until every setter is
    done (or failed). Returns how many rows this thread purged."""
    from keyval_backend import KeyVal
    from keyval_backend.facade import keyval_cache

    done = KeyVal(f"{store}-done")
    if worker < setters:
        kv = KeyVal(store)
        try:
            for key in keys:
                kv.set(key, "stale", timeout=0)
                kv.set(key, ("live", key))
        finally:
            done[str(worker)] = True
        return 0
    cache = keyval_cache()
    purged = 0
    deadline = time.monotonic() + STEP_TIMEOUT / 2
    while len(done) < setters and time.monotonic() < deadline:
        purged += cache.purge_expired()
    return purged
