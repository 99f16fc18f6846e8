"""``python -m benchmarks --near`` (or ``python -m benchmarks.near``): the near
cache (``OPTIONS["NEAR_CACHE"]``, issue 14) on each database setting.

Each database setting runs in a process of its own (``python -m
benchmarks.near --worker CONFIG``), which is "process B", with a near cache;
the other processes are :mod:`benchmarks.near_peer`'s. Four measurements:

- ``get`` hit: a near-cache hit against the raw driver's lookup (the floor of
  :mod:`benchmarks.floor`), KeyValCache without near cache on the same
  database, and django-redis on loopback; every call timed on its own, the
  garbage collector paused, rounds alternating which contender goes first.
  Memory is filled (every key read once) just before each round's near calls,
  and every near call is checked to have been a hit.
- staleness: process A writes a sequence number; on SQLite A answers once its
  ``set()`` returned and B then does one read, which must see it (bound 0);
  elsewhere B reads in a loop while A writes, and the delay is from A's
  ``set()`` returning to B's first read that sees the number (0 if B saw it
  first). On MariaDB B waits a random part of the lease before each write,
  so that the delays cover the whole lease.
- the cost of a write of migration 0004's signals: KeyValCache ``set`` with
  them and without (SQLite: the change log's triggers in place or dropped;
  PostgreSQL: a near cache listening in another process, or none and the
  deadline sequence at 0, so that the triggers return at once).
- a mixed workload: 4 processes, each 99 % ``get`` / 1 % ``set`` of 1,000
  settings keys for some seconds: ops/s without near cache, with it, and on
  django-redis.

Compare ratios from one run; absolute numbers move with the machine's load.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import near_peer, process, report
from .databases import SETTINGS
from .process import SECRET_KEY, analyze, log, setup_django, versions

# What a run covers unless told otherwise.
NEAR_SETTINGS = ("sqlite-wal", "postgres", "mariadb")
CONTENDERS = {
    "near": "near hit",
    "plain": "KeyValCache",
    "floor": "raw driver floor",
    "redis": "django-redis",
}
# Ratios of the near hit's median to each peer's, with the bound
# (None: printed, no target).
BOUNDS: dict[str, dict[str, float | None]] = {
    "floor": {"sqlite-wal": 0.5},
    "plain": {"postgres": 0.1, "postgres-prepared": 0.1, "mariadb": 0.1},
    "redis": {setting: 0.1 for setting in SETTINGS},
}
VALUES = {
    "record": ("get hit, a small dict", near_peer.setting_value),
    "str": ("get hit, a str", lambda i: f"value {i:04d}"),
}
PROCESSES = 4
CHUNK = 50  # calls timed together, between untimed steps
STALE_TIMEOUT = 5.0  # seconds a read loop waits for a write before giving up
PG_STALE_BOUND_MS = 10.0


# -- process B: one database setting ---------------------------------------------


def _keys(kind: str, n: int) -> list[str]:
    return [f"{kind}:{i:04d}" for i in range(n)]


def _time(
    fn: Callable[[str], Any],
    keys: Sequence[str],
    calls: int,
    prepare: Callable[[Sequence[str]], None] | None = None,
) -> list[int]:
    """Nanoseconds of each of ``calls`` calls over ``keys``, after a warm-up,
    :data:`CHUNK` calls at a time; ``prepare`` runs (untimed) before each
    chunk with the keys it will visit."""
    clock = time.perf_counter_ns
    samples = []
    if prepare is not None:
        prepare(keys[:20])
    for key in keys[:20]:
        fn(key)
    for first in range(0, calls, CHUNK):
        chunk = [keys[i % len(keys)] for i in range(first, min(calls, first + CHUNK))]
        if prepare is not None:
            prepare(chunk)
        gc.disable()
        try:
            for key in chunk:
                start = clock()
                fn(key)
                samples.append(clock() - start)
        finally:
            gc.enable()
    return samples


def latency(
    caches: dict[str, Any], floor: Any, n: int, calls: int, rounds: int
) -> dict[str, dict[str, Any]]:
    near = caches["near"]
    if not near_peer.wait_listening(near, _keys("str", n)[0]):
        raise RuntimeError("the near cache's watcher never trusted memory")
    getters: dict[str, Callable[[str], Any]] = {
        "near": near.get,
        "plain": caches["plain"].get,
        "floor": floor.get,
    }
    if "redis" in caches:
        getters["redis"] = caches["redis"].get
    filled = [0]

    def fill(chunk: Sequence[str]) -> None:
        """Fill memory (and renew MariaDB's leases) just before the chunk."""
        misses = near.near_cache.stats()["misses"]
        for key in chunk:
            near.get(key)
        filled[0] += near.near_cache.stats()["misses"] - misses

    found: dict[str, dict[str, Any]] = {}
    for kind, (_, make) in VALUES.items():
        keys = _keys(kind, n)
        expected = make(0)
        samples: dict[str, list[int]] = {name: [] for name in getters}
        rounds_us: dict[str, list[float]] = {name: [] for name in getters}
        missed = 0
        for r in range(rounds):
            names = list(getters)
            k = r % len(names)
            for name in names[k:] + names[:k]:
                if getters[name](keys[0]) != expected:
                    raise RuntimeError(f"{CONTENDERS[name]} does not read back {keys[0]!r}")
                if name == "near":
                    before = near.near_cache.stats()["misses"]
                    taken = _time(near.get, keys, calls, fill)
                    # The fills' misses are theirs; every timed call must hit.
                    missed += near.near_cache.stats()["misses"] - before - filled[0]
                    filled[0] = 0
                else:
                    taken = _time(getters[name], keys, calls)
                samples[name] += taken
                rounds_us[name].append(report.stats(taken)["median_us"])
        found[kind] = {
            "by": {
                name: {**report.stats(taken), "round_medians_us": rounds_us[name]}
                for name, taken in samples.items()
            },
            "near_misses": missed,
        }
    return found


def _percentiles(delays_ms: list[float]) -> dict[str, float]:
    ordered = sorted(delays_ms)
    n = len(ordered)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(n - 1, int(0.99 * n))],
        "max_ms": ordered[-1],
    }


# How process B reads while it waits for process A's write: back to back
# (holding the GIL: the listening thread waits up to sys.getswitchinterval()
# for it), or letting other threads in between reads, as a worker that does
# any I/O does.
READ_LOOPS = {"busy": "read loop, back to back", "yielding": "read loop, sleep(0) between"}


def staleness(db: Any, config: dict[str, Any], samples: int) -> dict[str, dict[str, Any]]:
    """Delays from process A's commit to process B's read of it, by the way B
    reads (see the module's docstring and :data:`READ_LOOPS`)."""
    from django.core.cache import caches

    cache = caches["near"]
    key = "stale:sequence"
    caches["plain"].set(key, 0)
    interval = config["poll_interval"]
    if db.vendor == "sqlite":
        modes = ["next read"]
    elif db.vendor == "postgresql":
        modes = list(READ_LOOPS)
    else:
        modes = ["yielding"]
    rng = random.Random(14)
    writer = near_peer.Peer(config)
    found: dict[str, dict[str, Any]] = {}
    sequence = 0
    try:
        if not near_peer.wait_listening(cache, key):
            raise RuntimeError("the near cache's watcher never trusted memory")
        for mode in modes:
            delays: list[float] = []
            stale_first = held = reads = timeouts = 0
            for _ in range(samples):
                sequence += 1
                hits = cache.near_cache.stats()["hits"]
                if cache.get(key) != sequence - 1:
                    raise RuntimeError(f"B did not see {sequence - 1} before the write")
                held += cache.near_cache.stats()["hits"] > hits
                if db.vendor == "mysql":
                    time.sleep(rng.uniform(0, interval))
                if mode == "next read":
                    committed = writer.call(cmd="set", key=key, value=sequence)["t"]
                    reads += 1
                    if cache.get(key) == sequence:
                        delays.append(0.0)
                        continue
                    stale_first += 1
                else:
                    writer.send(cmd="set", key=key, value=sequence)
                pause = time.sleep if mode == "yielding" else None
                deadline = time.monotonic() + STALE_TIMEOUT
                while True:
                    # The delay ends when the first read that sees the write
                    # starts: the read's own round trip is not staleness.
                    seen = time.monotonic()
                    reads += 1
                    if cache.get(key) == sequence:
                        break
                    if pause is not None:
                        pause(0)
                    if seen > deadline:
                        timeouts += 1
                        break
                if mode != "next read":
                    committed = writer.receive()["t"]
                delays.append(max(0.0, seen - committed) * 1000)
            found[mode] = {
                "label": READ_LOOPS.get(mode, mode),
                "samples": samples,
                "held": held,
                "stale_first_reads": stale_first if mode == "next read" else None,
                "reads": reads,
                "timeouts": timeouts,
                "poll_interval_s": interval if db.vendor == "mysql" else None,
                **_percentiles(delays),
            }
    finally:
        writer.close()
    return found


def _set_us(cache: Any, keys: list[str], calls: int, tag: int) -> list[int]:
    value = near_peer.setting_value(tag)
    return _time(lambda key: cache.set(key, value), keys, calls)


def write_cost(db: Any, config: dict[str, Any], calls: int, rounds: int) -> dict[str, Any] | None:
    """KeyValCache ``set`` with migration 0004's signals at work and without."""
    from django.core.cache import caches
    from django.db import connection

    from keyval_backend import near
    from keyval_backend.sql.near import UNTIL_SEQUENCE

    if db.vendor not in ("sqlite", "postgresql"):
        return None
    near.reset()  # this process's watcher: only another process listens
    cache = caches["plain"]
    keys = _keys("record", config["keys"])
    samples: dict[str, list[int]] = {"on": [], "off": []}
    if db.vendor == "sqlite":
        labels = {"on": "change-log triggers", "off": "triggers dropped"}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'keyval_backend_entry'"
            )
            triggers = cursor.fetchall()
        try:
            for r in range(rounds):
                for state in ("on", "off") if r % 2 == 0 else ("off", "on"):
                    with connection.cursor() as cursor:
                        for name, sql in triggers:
                            cursor.execute(f'DROP TRIGGER IF EXISTS "{name}"')
                            if state == "on":
                                cursor.execute(sql)
                    samples[state] += _set_us(cache, keys, calls, r)
        finally:
            with connection.cursor() as cursor:
                for name, sql in triggers:
                    cursor.execute(f'DROP TRIGGER IF EXISTS "{name}"')
                    cursor.execute(sql)
    else:
        # "ahead": the triggers notify, but no process listens (what a
        # listener that just stopped leaves for up to an hour): the triggers'
        # and NOTIFY's own cost, without waking a listener.
        labels = {"on": "a process listening", "ahead": "deadline ahead, none listening",
                  "off": "none listening"}  # fmt: skip
        samples["ahead"] = []
        states = list(labels)
        listener = near_peer.Peer(config)
        try:
            for r in range(rounds):
                for state in states[r % 3 :] + states[: r % 3]:
                    if state == "on":
                        if not listener.call(cmd="listen")["listening"]:
                            raise RuntimeError("the listening process never listened")
                    else:
                        listener.call(cmd="unlisten")
                        ahead = 3600 if state == "ahead" else None
                        with connection.cursor() as cursor:
                            cursor.execute(
                                f"SELECT setval('{UNTIL_SEQUENCE}', "
                                "COALESCE(extract(epoch FROM clock_timestamp())::bigint + %s, 0))",
                                [ahead],
                            )
                    samples[state] += _set_us(cache, keys, calls, r)
        finally:
            listener.close()
    return {
        "labels": labels,
        "by": {state: report.stats(taken) for state, taken in samples.items()},
    }


def mixed(config: dict[str, Any], seconds: float, rounds: int) -> dict[str, Any]:
    """Ops/s of :data:`PROCESSES` processes running the mixed workload on each
    cache in turn (the same processes throughout)."""
    names = ["plain", "near", "redis"] if config.get("redis") else ["plain", "near"]
    peers = [near_peer.Peer({**config, "poll_interval": 1.0}) for _ in range(PROCESSES)]
    found: dict[str, dict[str, Any]] = {
        name: {"ops_s": [], "hits": 0, "misses": 0} for name in names
    }
    try:
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                start_at = time.monotonic() + 0.5  # after every peer has read its keys once
                for p, peer in enumerate(peers):
                    peer.send(cmd="mixed", cache=name, seconds=seconds, start_at=start_at, seed=p)
                answers = [peer.receive() for peer in peers]
                found[name]["ops_s"].append(sum(a["ops"] / a["seconds"] for a in answers))
                found[name]["hits"] += sum(a.get("hits", 0) for a in answers)
                found[name]["misses"] += sum(a.get("misses", 0) for a in answers)
    finally:
        for peer in peers:
            peer.close()
    return {
        "processes": PROCESSES,
        "seconds": seconds,
        "rounds": rounds,
        "write_every": near_peer.WRITE_EVERY,
        "by": {
            name: {**entry, "median_ops_s": statistics.median(entry["ops_s"])}
            for name, entry in found.items()
        },
    }


def run_setting(config: dict[str, Any]) -> dict[str, Any]:
    from django.core.cache import caches

    from keyval_backend.cache import TABLE
    from keyval_backend.sql import dialect_for

    from .floor import Floor

    quick = config["quick"]
    db = near_peer.run_database(config)
    db.recreate()
    floor = None
    try:
        started = time.perf_counter()
        setup_django({"default": db}, near_peer.caches_setting(config["poll_interval"]))
        log(f"[{db.setting}] Django set up in {time.perf_counter() - started:.1f}s")
        n = config["keys"]
        data = {
            key: make(i)
            for kind, (_, make) in VALUES.items()
            for i, key in enumerate(_keys(kind, n))
        }
        data.update(
            {key: near_peer.setting_value(i) for i, key in enumerate(near_peer.settings_keys(n))}
        )
        used: dict[str, Any] = {"near": caches["near"], "plain": caches["plain"]}
        skipped: dict[str, str] = {}
        try:
            redis = caches["redis"]
            redis.clear()
            redis.set_many(data)
            used["redis"] = redis
        except Exception as exc:  # Redis down, django-redis not installed
            skipped["redis"] = f"{type(exc).__name__}: {exc}"
            log(f"[{db.setting}] django-redis skipped: {skipped['redis']}")
        items = list(data.items())
        for start in range(0, len(items), 250):
            used["plain"].set_many(dict(items[start : start + 250]))
        floor = Floor(db, dialect_for("default", TABLE), SECRET_KEY, "floor")
        floor.fill(data)
        analyze(db, [TABLE])
        found = versions(db, caches["redis"].client.get_client() if "redis" in used else None)
        gc.collect()
        gc.freeze()
        result: dict[str, Any] = {
            "setting": db.setting,
            "vendor": db.vendor,
            "versions": found,
            "keys": n,
            "skipped": skipped,
        }
        calls, rounds = config["calls"], config["repeat"]
        result["latency"] = latency(used, floor, n, calls, rounds)
        log(f"[{db.setting}] get hits timed ({time.perf_counter() - started:.0f}s)")
        result["staleness"] = staleness(db, config, config["stale_samples"])
        log(f"[{db.setting}] staleness measured ({time.perf_counter() - started:.0f}s)")
        result["write_cost"] = write_cost(db, config, calls, max(2, rounds))
        result["mixed"] = mixed(
            {**config, "redis": "redis" in used}, config["mixed_seconds"], 1 if quick else 2
        )
        log(f"[{db.setting}] mixed workload run ({time.perf_counter() - started:.0f}s)")
        if "redis" in used:
            used["redis"].clear()
        return result
    finally:
        if floor is not None:
            floor.close()
        if "django" in sys.modules and "keyval_backend.near" in sys.modules:
            from keyval_backend import near

            near.reset()
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        try:
            db.drop()
        except Exception as exc:
            log(f"[{db.setting}] could not drop {db.settings_dict['NAME']}: {exc}")


# -- the driver --------------------------------------------------------------------


def ratio(run: dict[str, Any], kind: str, peer: str) -> float | None:
    by = run["latency"][kind]["by"]
    if peer not in by or not by[peer]["median_us"]:
        return None
    return float(by["near"]["median_us"] / by[peer]["median_us"])


def targets(run: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, bound, measured, verdict): the issue's "Done when" for this
    setting. Informational: nothing fails on them."""
    setting = run["setting"]
    found = []
    for peer, by_setting in BOUNDS.items():
        bound = by_setting.get(setting)
        if bound is None:
            continue
        value = ratio(run, "record", peer)
        verdict = "n/a" if value is None else "ok" if value <= bound else "MISSED"
        found.append(
            (f"near hit / {CONTENDERS[peer]}", f"<= {bound}", report.times(value), verdict)
        )
    for mode, stale in run["staleness"].items():
        if mode == "next read":
            what, bound = "stale first reads after A's commit", "0"
            measured = f"{stale['stale_first_reads']} of {stale['samples']}"
            ok = stale["stale_first_reads"] == 0
        elif run["vendor"] == "postgresql":
            what, bound = f"staleness p99, {stale['label']}", f"< {PG_STALE_BOUND_MS:.0f} ms"
            measured = f"{stale['p99_ms']:.2f} ms"
            ok = stale["p99_ms"] < PG_STALE_BOUND_MS
        else:
            bound_ms = stale["poll_interval_s"] * 1000
            what, bound = "staleness max", f"<= {bound_ms:.0f} ms (POLL_INTERVAL)"
            measured = f"{stale['max_ms']:.1f} ms"
            ok = stale["max_ms"] <= bound_ms
        found.append((what, bound, measured, "ok" if ok and not stale["timeouts"] else "MISSED"))
    return found


def latency_table(run: dict[str, Any], markdown: bool = False) -> str:
    names = [name for name in CONTENDERS if name in run["latency"]["record"]["by"]]
    peers = [name for name in names if name != "near"]
    headers = [
        "µs (median / p99)",
        *(CONTENDERS[name] for name in names),
        *(f"near / {CONTENDERS[peer]}" for peer in peers),
    ]
    rows = []
    for kind, found in run["latency"].items():
        by = found["by"]
        rows.append(
            [
                VALUES[kind][0],
                *(f"{report.us(by[n]['median_us'])} / {report.us(by[n]['p99_us'])}" for n in names),
                *(report.times(ratio(run, kind, peer)) for peer in peers),
            ]
        )
    return report.table(headers, rows, markdown)


def staleness_table(run: dict[str, Any], markdown: bool = False) -> str:
    rows = [
        [
            s["label"],
            f"{s['samples']:,}",
            f"{s['held']:,}",
            "-" if s["stale_first_reads"] is None else f"{s['stale_first_reads']}",
            f"{s['p50_ms']:.2f}",
            f"{s['p99_ms']:.2f}",
            f"{s['max_ms']:.2f}",
            f"{s['timeouts']}",
        ]
        for s in run["staleness"].values()
    ]
    headers = [
        "process B",
        "writes",
        "B held it",
        "stale first reads",
        "p50 ms",
        "p99 ms",
        "max ms",
        "timeouts",
    ]
    return report.table(headers, rows, markdown)


def write_table(run: dict[str, Any], markdown: bool = False) -> str:
    w = run["write_cost"]
    off = w["by"]["off"]["median_us"]
    rows = [
        [
            w["labels"][state],
            f"{report.us(entry['median_us'])} / {report.us(entry['p99_us'])}",
            "-" if state == "off" else f"{entry['median_us'] - off:+.1f}",
            "-" if state == "off" else report.times(entry["median_us"] / off if off else None),
        ]
        for state, entry in ((state, w["by"][state]) for state in w["labels"])
    ]
    headers = ["KeyValCache set (overwrite)", "µs (median / p99)", "µs added", "ratio"]
    return report.table(headers, rows, markdown)


def mixed_table(run: dict[str, Any], markdown: bool = False) -> str:
    m = run["mixed"]
    labels = {"plain": "KeyValCache", "near": "KeyValCache + near cache", "redis": "django-redis"}
    base = m["by"]["plain"]["median_ops_s"]
    rows = []
    for name, entry in m["by"].items():
        lookups = entry["hits"] + entry["misses"]
        rows.append(
            [
                labels[name],
                f"{entry['median_ops_s']:,.0f}",
                " / ".join(f"{v:,.0f}" for v in entry["ops_s"]),
                report.times(entry["median_ops_s"] / base if base else None),
                f"{100 * entry['hits'] / lookups:.1f} %" if name == "near" and lookups else "-",
            ]
        )
    headers = ["ops/s, all processes", "median", "by round", "vs KeyValCache", "near hits"]
    return report.table(headers, rows, markdown)


def print_runs(results: dict[str, Any], markdown: bool) -> None:
    meta = results.get("meta", {})
    if "load_average" in meta and "load_average_after" in meta:
        before, after = meta["load_average"][0], meta["load_average_after"][0]
        print(f"load average (1 min) {before:.2f} at the start, {after:.2f} at the end")
    for setting, run in results.get("runs", {}).items():
        versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items())
        print(f"\n## near cache, {setting}: {run['keys']:,} keys a kind ({versions})\n")
        for name, why in run.get("skipped", {}).items():
            print(f"skipped {CONTENDERS.get(name, name)}: {why}\n")
        print(latency_table(run, markdown))
        missed = sum(found["near_misses"] for found in run["latency"].values())
        if missed:
            print(f"!! {missed} timed near calls were not hits")
        interval = next(iter(run["staleness"].values()))["poll_interval_s"]
        print(
            "\nstaleness: process A writes, process B (near cache) reads, ms from A's set() "
            "returning to B's first read of the new value"
            + (f" (POLL_INTERVAL {interval} s)" if interval else "")
            + "\n"
        )
        print(staleness_table(run, markdown))
        if run.get("write_cost"):
            print("\nthe cost of a write of migration 0004's signals\n")
            print(write_table(run, markdown))
        m = run["mixed"]
        print(
            f"\nmixed: {m['processes']} processes, 1 write every {m['write_every']} ops "
            f"(get/set of {run['keys']:,} settings keys), {m['seconds']:.0f} s a round, "
            f"{m['rounds']} round(s)\n"
        )
        print(mixed_table(run, markdown))
        print()
        rows = [list(row) for row in targets(run)]
        print(report.table(["target (issue 14)", "bound", "measured", "verdict"], rows, markdown))


def _names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SETTINGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown database setting {', '.join(unknown) or value!r}; "
            f"known: {', '.join(SETTINGS)}"
        )
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks --near",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--databases",
        type=_names,
        help=f"database settings, comma-separated, of {', '.join(SETTINGS)} "
        f"(default: {','.join(NEAR_SETTINGS)})",
    )
    p.add_argument("--keys", type=int, default=1000, help="keys of each kind in the store")
    p.add_argument("--repeat", type=int, default=5, help="rounds of the get timings")
    p.add_argument("--iterations", type=int, default=1000, help="timed calls a round and contender")
    p.add_argument("--stale-samples", type=int, default=300, help="writes the staleness run times")
    p.add_argument(
        "--stale-interval",
        type=float,
        default=0.1,
        help="process B's POLL_INTERVAL (the MariaDB lease) in the get and staleness runs; "
        "the mixed workload's processes keep the default, 1 s",
    )
    p.add_argument("--mixed-seconds", type=float, default=5.0, help="seconds a mixed round runs")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run of a few seconds per database (CI): 100 keys, few calls and writes",
    )
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--load", metavar="PATH", help="report a run saved with --json, run nothing")
    p.add_argument("--markdown", action="store_true", help="print markdown tables")
    p.add_argument("--sqlite-pragma", action="append", default=[], metavar="PRAGMA")
    p.add_argument("--workdir", help="where SQLite files live (default: a temp dir)")
    p.add_argument("--worker", metavar="CONFIG", help=argparse.SUPPRESS)
    return p


def run_worker(config: dict[str, Any], workdir: str) -> dict[str, Any] | None:
    """Run one setting's process B; its result, or None if it failed."""
    return process.run_configured(
        ["benchmarks.near", "--worker"], config, workdir, f"near run on {config['setting']}"
    )


def run(args: argparse.Namespace) -> int:
    if args.load:
        print_runs(json.loads(Path(args.load).read_text()), args.markdown)
        return 0
    workdir = args.workdir or tempfile.mkdtemp(prefix="keyval-bench-near-")
    os.makedirs(workdir, exist_ok=True)
    quick = args.quick
    common = {
        "quick": quick,
        "keys": 100 if quick else args.keys,
        "calls": 50 if quick else args.iterations,
        "repeat": 1 if quick else args.repeat,
        "stale_samples": 20 if quick else args.stale_samples,
        "poll_interval": args.stale_interval,
        "mixed_seconds": 1.0 if quick else args.mixed_seconds,
        "sqlite_pragmas": args.sqlite_pragma,
    }
    results: dict[str, Any] = {
        "meta": {
            "argv": sys.argv[1:],
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "load_average": os.getloadavg(),
        },
        "runs": {},
    }
    failed = False
    started = time.perf_counter()
    try:
        for setting in args.databases or NEAR_SETTINGS:
            print(f"-- near cache, {setting}", file=sys.stderr, flush=True)
            result = run_worker({**common, "setting": setting}, workdir)
            if result is None:
                failed = True
                continue
            results["runs"][setting] = result
        results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
        results["meta"]["load_average_after"] = os.getloadavg()
        print_runs(results, args.markdown)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"\n(total {results['meta']['seconds']:.0f}s)", file=sys.stderr)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def worker_main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    result = run_setting(config)
    Path(config["output"]).write_text(json.dumps(result, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
