"""``python -m benchmarks --async``: the async API, natively and through the
thread, against the sync methods, on each database setting.

Each setting runs in a process of its own: ``python -m benchmarks.async_ops
SETTING WORKDIR``, which prints one JSON document. Three measurements:

- per call: the median of single timed calls of ``get`` (hit), ``set``,
  ``get_many(100)``, ``set_many(100)``, and of two structure commands,
  ``hget`` (hit, a hash of 100 fields) and ``hset`` (a field replaced): sync,
  ``await``-ed natively, and ``await``-ed through the thread (what every ``a*`` method was before),
  rounds alternating between the three so that the machine's drift is shared;
- PostgreSQL: 1,000 concurrent ``aget`` tasks, natively and through the
  thread: ops/s, and the most connections the pool held;
- SQLite: the event loop's lag (a 1 ms ticker's delay beyond its sleep)
  while the loop reads and writes and 4 other processes write to the same
  file as fast as they can.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from .databases import Database, database
from .ops import key_name, make_value
from .worker import setup_django

KEYS = 10_000
BATCH = 100
CALLS = {"get": 2000, "set": 1000, "get_many": 200, "set_many": 100, "hget": 2000, "hset": 1000}
ROUNDS = 5
CONCURRENT = 1000
LAG_SECONDS = 10.0
WRITERS = 4
# The hash hget and hset time (its fields are the first BATCH keys).
HASH = "bench:hash"


def _median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def per_call(cache: Any, hop: Any, rounds: int) -> dict[str, dict[str, float]]:
    keys = [key_name(i) for i in range(KEYS)]
    value = make_value(1)
    batch = {key: value for key in keys[:BATCH]}
    names = list(batch)
    sync_ops: dict[str, Callable[[int], Any]] = {
        "get": lambda i: cache.get(keys[i % KEYS]),
        "set": lambda i: cache.set(keys[i % KEYS], value),
        "get_many": lambda i: cache.get_many(names),
        "set_many": lambda i: cache.set_many(batch),
        "hget": lambda i: cache.hget(HASH, names[i % BATCH]),
        "hset": lambda i: cache.hset(HASH, names[i % BATCH], value),
    }

    def async_ops(c: Any) -> dict[str, Callable[[int], Any]]:
        return {
            "get": lambda i: c.aget(keys[i % KEYS]),
            "set": lambda i: c.aset(keys[i % KEYS], value),
            "get_many": lambda i: c.aget_many(names),
            "set_many": lambda i: c.aset_many(batch),
            "hget": lambda i: c.ahget(HASH, names[i % BATCH]),
            "hset": lambda i: c.ahset(HASH, names[i % BATCH], value),
        }

    native_ops, hop_ops = async_ops(cache), async_ops(hop)
    samples: dict[str, dict[str, list[int]]] = {
        op: {"sync": [], "native": [], "thread": []} for op in CALLS
    }
    clock = time.perf_counter_ns

    async def timed_async(ops: dict[str, Callable[[int], Any]], op: str, out: list[int]) -> None:
        call = ops[op]
        for i in range(20):
            await call(i)
        for i in range(CALLS[op]):
            start = clock()
            await call(i)
            out.append(clock() - start)

    with asyncio.Runner() as runner:
        for round_no in range(rounds):
            for op in CALLS:
                order = ["sync", "native", "thread"]
                order = order[round_no % 3 :] + order[: round_no % 3]
                for path in order:
                    gc.collect()
                    gc.disable()
                    try:
                        if path == "sync":
                            call = sync_ops[op]
                            for i in range(20):
                                call(i)
                            for i in range(CALLS[op]):
                                start = clock()
                                call(i)
                                samples[op]["sync"].append(clock() - start)
                        else:
                            ops = native_ops if path == "native" else hop_ops
                            runner.run(timed_async(ops, op, samples[op][path]))
                    finally:
                        gc.enable()
    result = {}
    for op, paths in samples.items():
        medians = {path: _median_us(values) for path, values in paths.items()}
        result[op] = {
            **{f"{path}_us": us for path, us in medians.items()},
            "native_ratio": medians["native"] / medians["sync"],
            "thread_ratio": medians["thread"] / medians["sync"],
        }
    return result


def concurrency(cache: Any, hop: Any, rounds: int) -> dict[str, Any]:
    keys = [key_name(i) for i in range(KEYS)]

    async def burst(c: Any) -> tuple[float, int, int]:
        await c.aget(keys[0])
        driver = cache._native()
        pool = driver.pool()
        start = time.perf_counter()
        await asyncio.gather(*(c.aget(keys[i % KEYS]) for i in range(CONCURRENT)))
        elapsed = time.perf_counter() - start
        return CONCURRENT / elapsed, pool.most, pool.max_size

    native, thread, pool_most, pool_max = [], [], 0, 0
    with asyncio.Runner() as runner:
        for _ in range(rounds):
            ops, most, pool_max = runner.run(burst(cache))
            native.append(ops)
            pool_most = max(pool_most, most)
            thread.append(runner.run(burst(hop))[0])
    return {
        "tasks": CONCURRENT,
        "native_ops_s": statistics.median(native),
        "thread_ops_s": statistics.median(thread),
        "speedup": statistics.median(native) / statistics.median(thread),
        "most_pool_connections": pool_most,
        "pool_max": pool_max,
    }


WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL"); conn.execute("PRAGMA synchronous=NORMAL")
conn.execute("CREATE TABLE IF NOT EXISTS pressure (k INTEGER PRIMARY KEY, v BLOB)")
end = time.time() + float(sys.argv[2]); n = 0
while time.time() < end:
    conn.execute("INSERT OR REPLACE INTO pressure VALUES (?, ?)", (n % 1000, b"x" * 200)); n += 1
print(n)
"""


def loop_lag(cache: Any, path: str) -> dict[str, Any]:
    keys = [key_name(i) for i in range(KEYS)]
    value = make_value(1)
    # The table the writers use, made before they start.
    import sqlite3

    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE IF NOT EXISTS pressure (k INTEGER PRIMARY KEY, v BLOB)")
    setup.close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, path, str(2 * LAG_SECONDS + 1)],
            stdout=subprocess.PIPE,
        )
        for _ in range(WRITERS)
    ]
    time.sleep(0.5)

    async def measure(working: bool) -> tuple[list[float], int, int]:
        lags: list[float] = []
        done = 0
        stop = time.perf_counter() + LAG_SECONDS

        async def ticker() -> None:
            while time.perf_counter() < stop:
                before = time.perf_counter()
                await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - before - 0.001)

        async def work() -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < stop:
                if i % 5 == 0:
                    await cache.aset(keys[i % KEYS], value)
                else:
                    await cache.aget(keys[i % KEYS])
                i += 1
                done += 1
                if i % 10 == 0:
                    await asyncio.sleep(0)  # let the ticker in, as real tasks would

        await asyncio.gather(ticker(), *([work()] if working else []))
        state = await cache._native()._state()
        return lags, done, state.handed_off

    # The ticker alone first: the lag the machine itself gives (a process
    # waiting for a CPU), under the same writers.
    idle_lags, _, _ = asyncio.run(measure(False))
    lags, done, handed_off = asyncio.run(measure(True))
    written = sum(int(w.communicate()[0] or 0) for w in writers)

    def pct(values: list[float], p: float) -> float:
        return sorted(values)[min(len(values) - 1, int(p * len(values)))] * 1000

    return {
        "seconds": LAG_SECONDS,
        "writers": WRITERS,
        "writer_commits": written,
        "loop_ops": done,
        "handed_to_thread": handed_off,
        "ticks": len(lags),
        **{
            f"{label}lag_{name}_ms": pct(values, p)
            for label, values in (("", lags), ("idle_", idle_lags))
            for name, p in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999), ("max", 1.0))
        },
    }


def main(setting: str, workdir: str, rounds: int = ROUNDS) -> dict[str, Any]:
    db: Database = database(setting, workdir, suffix="_async")
    db.recreate()
    try:
        setup_django(
            {"default": db},
            {"default": {"BACKEND": "keyval_backend.cache.KeyValCache"}},
        )
        from django.core.cache import cache

        cache.set_many({key_name(i): make_value(i) for i in range(KEYS)})
        cache.hset(HASH, mapping={key_name(i): make_value(i) for i in range(BATCH)})
        hop = cache.store(cache.store_name)
        hop._native = lambda: None  # type: ignore[method-assign]
        gc.freeze()
        result: dict[str, Any] = {"setting": setting, "per_call": per_call(cache, hop, rounds)}
        if db.vendor == "postgresql":
            result["concurrency"] = concurrency(cache, hop, rounds)
        if db.vendor == "sqlite" and setting == "sqlite-wal":
            result["loop_lag"] = loop_lag(cache, db.settings_dict["NAME"])
        from django.db import connections

        connections.close_all()
        return result
    finally:
        db.drop()


def run(setting: str, workdir: str, rounds: int) -> dict[str, Any] | None:
    """Run :func:`main` in a process of its own; its result, or None."""
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.async_ops", setting, workdir, str(rounds)],
        cwd=root,
        stdout=subprocess.PIPE,
        check=False,
    )
    if completed.returncode != 0:
        print(f"!! async run on {setting} failed (exit {completed.returncode})", file=sys.stderr)
        return None
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def tables(found: dict[str, Any], markdown: bool) -> str:
    from .report import table

    rows = [
        [
            f"{op}({BATCH})" if op.endswith("_many") else op,
            f"{m['sync_us']:.1f}",
            f"{m['native_us']:.1f}",
            f"{m['thread_us']:.1f}",
            f"{m['native_ratio']:.2f}x",
            f"{m['thread_ratio']:.2f}x",
        ]
        for op, m in found["per_call"].items()
    ]
    text = table(
        ["operation", "sync µs", "a* native µs", "a* thread µs", "native/sync", "thread/sync"],
        rows,
        markdown,
    )
    if "concurrency" in found:
        c = found["concurrency"]
        text += "\n\n" + table(
            ["concurrent aget", "native ops/s", "thread ops/s", "speed-up", "connections"],
            [
                [
                    f"{c['tasks']:,}",
                    f"{c['native_ops_s']:,.0f}",
                    f"{c['thread_ops_s']:,.0f}",
                    f"{c['speedup']:.1f}x",
                    f"{c['most_pool_connections']} of {c['pool_max']}",
                ]
            ],
            markdown,
        )
    if "loop_lag" in found:
        lag = found["loop_lag"]
        text += "\n\n" + table(
            ["loop lag", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "loop ops", "to thread",
             "writer commits"],
            [
                [
                    f"{label}, {lag['writers']} writers, {lag['seconds']:.0f} s",
                    f"{lag[prefix + 'lag_p50_ms']:.2f}",
                    f"{lag[prefix + 'lag_p99_ms']:.2f}",
                    f"{lag[prefix + 'lag_p999_ms']:.2f}",
                    f"{lag[prefix + 'lag_max_ms']:.2f}",
                    ops,
                    handed,
                    f"{lag['writer_commits']:,}",
                ]
                for label, prefix, ops, handed in (
                    ("ticker alone", "idle_", "0", "0"),
                    ("ticker + aget/aset", "", f"{lag['loop_ops']:,}",
                     f"{lag['handed_to_thread']:,}"),
                )
            ],
            markdown,
        )  # fmt: skip
    return text


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:]))))
