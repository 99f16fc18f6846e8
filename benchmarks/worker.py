"""One database setting in its own process: ``python -m benchmarks.worker CONFIG.json``.

Django is configured here (by :mod:`benchmarks.process`), programmatically,
for the one database of the run, so that no setting of another run (or of
the test suite) leaks in. The
result is written as JSON to the path the configuration names; progress goes
to stderr.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from .databases import Database, database
from .process import SECRET_KEY, analyze, log, setup_django, versions


def run_ops(db: Database, config: dict[str, Any]) -> dict[str, Any]:
    from keyval_backend.cache import TABLE

    from .contenders import DBCACHE_TABLE, Contender, build, caches_setting
    from .ops import OPS, Plan, Workload, measure
    from .report import stats

    names: list[str] = config["contenders"]
    started = time.perf_counter()
    setup_django({"default": db}, caches_setting(names, config["workdir"], db.setting))
    log(f"[{db.setting}] Django set up in {time.perf_counter() - started:.1f}s")
    workload = Workload(config["keys"])
    plan = Plan(**config["plan"])
    contenders: list[Contender] = []
    skipped: dict[str, str] = {}
    redis = None
    for name in names:
        try:
            contender = build(name, db, SECRET_KEY)
        except Exception as exc:  # a service that is down, a package not installed
            skipped[name] = f"{type(exc).__name__}: {exc}"
            log(f"[{db.setting}] {name} skipped: {skipped[name]}")
            continue
        if name == "redis":
            from django.core.cache import caches

            redis = caches["redis"].client.get_client(write=True)
        contenders.append(contender)
    if not contenders:
        raise RuntimeError(f"no contender could run: {skipped}")
    initial = workload.initial()
    probe = workload.keys[0]
    for contender in contenders:
        started = time.perf_counter()
        contender.fill(initial)
        if contender.get(probe) != initial[probe]:
            raise RuntimeError(f"{contender.label} does not read back what it was filled with")
        log(
            f"[{db.setting}] {contender.label}: {len(initial)} keys in "
            f"{time.perf_counter() - started:.1f}s"
        )
    del initial
    analyze(db, [TABLE, DBCACHE_TABLE] if "dbcache" in names else [TABLE])
    gc.collect()
    gc.freeze()

    ops = [OPS[name] for name in config["ops"]]
    samples: dict[str, dict[str, list[int]]] = {op.name: {} for op in ops}
    rounds: dict[str, dict[str, list[float]]] = {op.name: {} for op in ops}
    started = time.perf_counter()
    for r in range(config["repeat"]):
        for n, op in enumerate(ops):
            # Each round and operation starts with another contender.
            k = (r + n) % len(contenders)
            for contender in contenders[k:] + contenders[:k]:
                taken = measure(op, contender, workload, str(r), plan, offset=r * plan.calls(op))
                samples[op.name].setdefault(contender.name, []).extend(taken)
                rounds[op.name].setdefault(contender.name, []).append(stats(taken)["median_us"])
        log(
            f"[{db.setting}] round {r + 1}/{config['repeat']} done "
            f"({time.perf_counter() - started:.0f}s)"
        )
    result = {
        "setting": db.setting,
        "vendor": db.vendor,
        "versions": versions(db, redis),
        "sqlite_pragmas": list(db.pragmas),
        "contenders": [contender.name for contender in contenders],
        "skipped": skipped,
        "keys": workload.size,
        "plan": config["plan"],
        "repeat": config["repeat"],
        "seconds": round(time.perf_counter() - started, 1),
        "ops": {
            op: {
                name: {**stats(taken), "round_medians_us": rounds[op][name]}
                for name, taken in by_contender.items()
            }
            for op, by_contender in samples.items()
        },
    }
    for contender in contenders:
        contender.close()
    return result


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[1]).read_text())
    mode = config["mode"]
    pragmas = tuple(config.get("sqlite_pragmas", ()))
    db = database(config["setting"], config["workdir"], sqlite_pragmas=pragmas)
    extra: list[Database] = []
    db.recreate()
    try:
        if mode == "ops":
            result = run_ops(db, config)
        elif mode == "scale":
            from .scale import run_scale

            large = database(config["setting"], config["workdir"], "_large", pragmas)
            extra.append(large)
            large.recreate()
            result = run_scale(db, large, config)
        elif mode == "profile":
            from .profiling import run_profile

            result = run_profile(db, config)
        else:
            raise ValueError(f"unknown mode {mode!r}")
    finally:
        _close_connections()
        for each in (db, *extra):
            try:
                each.drop()
            except Exception as exc:
                log(f"[{db.setting}] could not drop {each.settings_dict['NAME']}: {exc}")
    Path(config["output"]).write_text(json.dumps(result, indent=1))
    return 0


def _close_connections() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
