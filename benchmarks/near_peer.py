"""The other processes of ``python -m benchmarks --near``: each a Python of
its own (``python -m benchmarks.near_peer CONFIG.json``) with Django set up
for the run's database, as another web worker would be, taking commands as
JSON lines on stdin and answering each with one JSON line on stdout.

Commands: ``set`` (a write through a backend without near cache; answers with
``time.monotonic()`` once it returned, i.e. after its commit), ``listen`` (read
through the near cache until its watcher trusts memory: on PostgreSQL, until
its LISTEN thread hears everything), ``unlisten`` (``keyval_backend.near.reset()``),
``mixed`` (the mixed workload for some seconds) and ``quit``.
``time.monotonic()`` is the system's CLOCK_MONOTONIC on Linux, the same in
every process, so that delays can be taken across processes.
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .databases import Database, database
from .process import ROOT, child_env, setup_django

STORE = "near-bench"
# A Redis database of its own: the main suite flushes 15, the structures 14.
REDIS_URL = os.environ.get("KEYVAL_BENCH_NEAR_REDIS_URL", "redis://127.0.0.1:6379/13")
DATABASE_SUFFIX = "_near"
# The mixed workload: one write every WRITE_EVERY operations (1 %).
WRITE_EVERY = 100


def settings_keys(n: int) -> list[str]:
    return [f"setting:{i:04d}" for i in range(n)]


def setting_value(i: int) -> dict[str, Any]:
    """What a settings key holds: a small record (mutable, so a near hit
    deserializes it afresh, as every hit of a dict or list must)."""
    return {"id": i, "name": f"setting {i:04d}", "enabled": i % 2 == 0, "rollout": [10, 50, 100]}


def caches_setting(poll_interval: float) -> dict[str, Any]:
    """KeyValCache without and with the near cache (one store), and django-redis."""
    near = {"MAX_ENTRIES": 10_000, "POLL_INTERVAL": poll_interval}
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "plain": {"BACKEND": "keyval_backend.cache.KeyValCache", "LOCATION": STORE},
        "near": {
            "BACKEND": "keyval_backend.cache.KeyValCache",
            "LOCATION": STORE,
            "OPTIONS": {"NEAR_CACHE": near},
        },
        "redis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL},
    }


def run_database(config: dict[str, Any]) -> Database:
    return database(
        config["setting"], config["workdir"], DATABASE_SUFFIX, tuple(config["sqlite_pragmas"])
    )


def wait_listening(cache: Any, key: str, timeout: float = 20.0) -> bool:
    """Read ``key`` through the near cache until its watcher trusts memory
    (PostgreSQL: the LISTEN thread is up); False if it did not in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cache.get(key)
        if cache.near_cache.watcher.current():
            return True
        time.sleep(0.01)
    return False


def mixed(
    cache: Any, keys: list[str], seconds: float, start_at: float, seed: int
) -> dict[str, Any]:
    """99 % ``get``, 1 % ``set`` of random settings keys, from ``start_at``
    (a shared monotonic time) for ``seconds``: operations done."""
    rng = random.Random(seed)
    picks = [keys[rng.randrange(len(keys))] for _ in range(WRITE_EVERY * 64)]
    values = [setting_value(rng.randrange(1000)) for _ in range(64)]
    for key in keys:  # the steady state: every key read once already
        cache.get(key)
    near = getattr(cache, "near_cache", None)
    before = near.stats() if near is not None else None
    get, set_ = cache.get, cache.set
    clock = time.monotonic
    while clock() < start_at:
        time.sleep(0.0005)
    started = clock()
    deadline = started + seconds
    ops = 0
    batch = 0
    while True:
        base = (batch % 64) * WRITE_EVERY
        for j in range(base, base + WRITE_EVERY - 1):
            get(picks[j])
        set_(picks[base + WRITE_EVERY - 1], values[batch % 64])
        ops += WRITE_EVERY
        batch += 1
        if clock() >= deadline:
            break
    elapsed = clock() - started
    found: dict[str, Any] = {"ops": ops, "seconds": elapsed}
    if near is not None and before is not None:
        after = near.stats()
        found["hits"] = after["hits"] - before["hits"]
        found["misses"] = after["misses"] - before["misses"]
    return found


def serve(config: dict[str, Any]) -> None:
    setup_django({"default": run_database(config)}, caches_setting(config["poll_interval"]))
    from django.core.cache import caches

    from keyval_backend import near
    from keyval_backend.cache import KeyValCache

    keys = settings_keys(config["keys"])
    gc.freeze()
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        command = json.loads(line)
        name = command["cmd"]
        answer: dict[str, Any]
        if name == "set":
            caches["plain"].set(command["key"], command["value"])
            answer = {"t": time.monotonic()}
        elif name == "listen":
            # A backend of its own each time: one whose memory reset() retired
            # keeps that memory, which trusts nothing any more.
            listener = KeyValCache(STORE, caches_setting(config["poll_interval"])["near"])
            answer = {"listening": wait_listening(listener, keys[0])}
        elif name == "unlisten":
            near.reset()
            answer = {}
        elif name == "mixed":
            answer = mixed(
                caches[command["cache"]],
                keys,
                command["seconds"],
                command["start_at"],
                command["seed"],
            )
        elif name == "quit":
            break
        else:
            answer = {"error": f"unknown command {name!r}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    near.reset()
    from django.db import connections

    connections.close_all()


class Peer:
    """One other process, driven by commands (see the module's docstring)."""

    def __init__(self, config: dict[str, Any]) -> None:
        path = Path(config["workdir"]) / f"near-peer-{os.getpid()}-{id(self)}.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.near_peer", str(path)],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.receive()  # ready: Django set up

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"near peer {self.process.pid} ended (exit {self.process.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]

    def call(self, **command: Any) -> dict[str, Any]:
        self.send(**command)
        return self.receive()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send(cmd="quit")
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    serve(json.loads(Path(sys.argv[1]).read_text()))
