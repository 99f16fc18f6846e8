"""``--profile OP``: where one operation's time goes, by cProfile.

Runs the operation many times on a populated table, first plainly (the
honest time per call), then under cProfile, and reports per function the
microseconds *per operation* spent in it (own and cumulative) and how many
times each operation calls it. cProfile inflates every Python call, so the
shares matter more than the absolute figures.
"""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import sys
import time
from typing import Any

from .databases import Database

TOP = 25


def run_profile(db: Database, config: dict[str, Any]) -> dict[str, Any]:
    from .contenders import build, caches_setting
    from .ops import OPS, Workload
    from .process import SECRET_KEY, setup_django

    name = config["profile_contender"]
    setup_django({"default": db}, caches_setting([name], config["workdir"], db.setting))
    contender = build(name, db, SECRET_KEY)
    workload = Workload(config["keys"])
    contender.fill(workload.initial())
    op = OPS[config["profile"]]
    calls = config["profile_calls"]
    plain_args = [op.args(workload, "plain", i) for i in range(calls)]
    profiled_args = [op.args(workload, "profiled", i) for i in range(calls)]
    if op.before is not None:
        for args in plain_args + profiled_args:
            contender.fill(op.before(args))
    fn = getattr(contender, op.method)
    for args in plain_args[: calls // 10]:  # warm-up
        fn(*args)
    gc.collect()
    gc.freeze()

    started = time.perf_counter_ns()
    for args in plain_args:
        fn(*args)
    plain = (time.perf_counter_ns() - started) / calls / 1000

    profiler = cProfile.Profile()
    started = time.perf_counter_ns()
    profiler.enable()
    for args in profiled_args:
        fn(*args)
    profiler.disable()
    profiled = (time.perf_counter_ns() - started) / calls / 1000
    contender.close()

    rows = []
    for (path, line, func), (_, ncalls, own, cum, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": _where(path, line, func),
                "calls_per_op": ncalls / calls,
                "own_us": own / calls * 1e6,
                "cum_us": cum / calls * 1e6,
            }
        )
    return {
        "setting": db.setting,
        "contender": name,
        "op": op.name,
        "calls": calls,
        "plain_us": plain,
        "profiled_us": profiled,
        "by_own": sorted(rows, key=lambda r: -r["own_us"])[:TOP],
        "by_cum": sorted(rows, key=lambda r: -r["cum_us"])[:TOP],
    }


def _where(path: str, line: int, func: str) -> str:
    """A function's place, short: ``package/module.py:line(name)``."""
    if path == "~":
        return func
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefixes = [p for p in sys.path if p.endswith("-packages")]
    prefixes += [root, os.path.dirname(os.__file__)]
    for prefix in prefixes:
        if path.startswith(prefix + os.sep):
            path = path[len(prefix) + 1 :]
            break
    return f"{path}:{line}({func})"
