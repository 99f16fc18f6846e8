"""The scale run (``--scale``): latency on a small table against a large one,
and how many expired rows a store keeps while it is written with short-lived
keys.

The two tables live in two databases of the same setting (two files, or two
server databases), measured in alternating rounds like the main run, so that
machine drift does not pass for an effect of size. The floor runs beside
KeyValCache on both, to tell what the database itself loses with size from
what the backend adds.

The expiry part writes distinct keys with a 1-second timeout under freezegun,
the clock advancing a fixed step per write, so that the number of live keys is
the same on any machine; the writes are grouped in transactions of about
1,000 (which changes nothing about what is purged, only the number of fsyncs).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from .databases import Database

STORE = "scale"
EXPIRY_STORE = "expiry"
TICK_S = 0.001
FILL_STEP = 20_000
# Writes per transaction in the expiry run; prime, so that the row counts taken
# between transactions fall at every phase of the purge cycle.
EXPIRY_BLOCK = 997


def run_scale(small: Database, large: Database, config: dict[str, Any]) -> dict[str, Any]:
    from django.core.cache import caches
    from django.db import transaction

    from keyval_backend.cache import TABLE
    from keyval_backend.sql import dialect_for

    from .contenders import Contender, django_contender, floor_contender
    from .floor import Floor
    from .ops import OPS, Plan, Workload, key_name, make_value, measure
    from .process import SECRET_KEY, analyze, log, setup_django, versions
    from .report import stats

    keyval = "keyval_backend.cache.KeyValCache"
    setup_django(
        {"default": small, "large": large},
        {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "keyval": {"BACKEND": keyval, "LOCATION": STORE},
            "keyval_large": {
                "BACKEND": keyval,
                "LOCATION": STORE,
                "OPTIONS": {"DATABASE": "large"},
            },
        },
    )
    sizes = {"small": config["small_keys"], "large": config["large_keys"]}
    workloads = {size: Workload(n) for size, n in sizes.items()}
    entries: list[tuple[Contender, Workload, str]] = []
    for size, alias, db in (("small", "default", small), ("large", "large", large)):
        cache = caches["keyval" if size == "small" else "keyval_large"]
        entries.append(
            (django_contender(f"keyval@{size}", cache, cache.pop), workloads[size], alias)
        )
        floor = Floor(db, dialect_for(alias, TABLE), SECRET_KEY, "floor")
        entries.append((floor_contender(f"floor@{size}", floor), workloads[size], alias))

    for contender, workload, alias in entries:
        started = time.perf_counter()
        for start in range(0, workload.size, FILL_STEP):
            chunk = {
                key_name(i): make_value(i)
                for i in range(start, min(workload.size, start + FILL_STEP))
            }
            with transaction.atomic(using=alias):
                contender.fill(chunk)
        log(
            f"[{small.setting} scale] {contender.name}: {workload.size:,} keys in "
            f"{time.perf_counter() - started:.1f}s"
        )
    for alias, db in (("default", small), ("large", large)):
        analyze(db, [TABLE], alias)
    gc.collect()
    gc.freeze()

    plan = Plan(**config["plan"])
    ops = [OPS[name] for name in config["scale_ops"]]
    samples: dict[str, dict[str, list[int]]] = {op.name: {} for op in ops}
    for r in range(config["repeat"]):
        for n, op in enumerate(ops):
            k = (r + n) % len(entries)
            for contender, workload, _ in entries[k:] + entries[:k]:
                taken = measure(op, contender, workload, str(r), plan, offset=r * plan.calls(op))
                samples[op.name].setdefault(contender.name, []).extend(taken)
        log(f"[{small.setting} scale] round {r + 1}/{config['repeat']} done")
    for contender, _, _ in entries:
        if contender.name.startswith("floor"):
            contender.close()

    result: dict[str, Any] = {
        "setting": small.setting,
        "versions": versions(small),
        "sqlite_pragmas": list(small.pragmas),
        "small_keys": sizes["small"],
        "large_keys": sizes["large"],
        "ops": {
            op: {name: stats(taken) for name, taken in by.items()} for op, by in samples.items()
        },
    }
    if config["scale_writes"]:
        result["expiry"] = expiry_run(caches["keyval"].store(EXPIRY_STORE), config["scale_writes"])
    return result


def expiry_run(cache: Any, writes: int) -> dict[str, Any]:
    """Write ``writes`` distinct 1-second keys, one clock step apart, and
    watch the rows the store holds: live ones, and expired ones not yet
    purged."""
    from django.db import connections, transaction
    from freezegun import freeze_time

    from .process import log

    alias = cache.database
    count_sql = (
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN expires > %s THEN 1 ELSE 0 END), 0) "
        "FROM keyval_backend_entry WHERE store_hash = %s"
    )
    report_every = max(1, writes // 20 // EXPIRY_BLOCK) * EXPIRY_BLOCK
    samples: list[dict[str, int]] = []
    max_expired = 0
    started = time.perf_counter()
    with freeze_time("2030-01-01 00:00:00", tick=False) as frozen:
        for start in range(0, writes, EXPIRY_BLOCK):
            stop = min(writes, start + EXPIRY_BLOCK)
            with transaction.atomic(using=alias):
                for i in range(start, stop):
                    cache.set(f"exp:{i}", i, timeout=1)
                    frozen.tick(TICK_S)
            with connections[alias].cursor() as cursor:
                cursor.execute(count_sql, (time.time(), cache._store_hash))
                rows, live = (int(v) for v in cursor.fetchone())
            max_expired = max(max_expired, rows - live)
            if stop % report_every == 0 or stop == writes:
                samples.append({"writes": stop, "rows": rows, "live": live, "expired": rows - live})
    log(f"[expiry] {writes:,} writes in {time.perf_counter() - started:.0f}s")
    return {
        "writes": writes,
        "tick_ms": TICK_S * 1000,
        "purge_every": cache._purge_every,
        "purge_batch": cache._purge_batch,
        "max_expired": max_expired,
        "samples": samples,
    }
