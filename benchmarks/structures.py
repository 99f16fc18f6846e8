"""``python -m benchmarks.structures`` (or ``python -m benchmarks --structures``):
KeyValCache's locks, hashes, sets, sorted sets and delete_pattern against
django-redis, on each database setting (issue 11).

The discipline is :mod:`benchmarks.ops`'s: each database setting runs in a
subprocess of its own (``python -m benchmarks.structures --worker CONFIG``)
with Django configured for that database only; every call is timed on its own
with ``perf_counter_ns`` after a warm-up, with the garbage collector paused;
rounds alternate which contender goes first; both contenders get the same
keys, members and scores in the same order. What a call needs beforehand (the
keys a ``delete_pattern`` deletes) is written untimed before it, and what it
added (a hash field, a member) is removed untimed after it, so every
structure keeps its size. Every answer is checked, untimed, against the one
the call must give. Compare ratios from one run; absolute numbers move with
the machine's load.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import process, report
from .databases import SETTINGS
from .ops import Plan, make_value

# What a run covers unless told otherwise: the settings a structure is used on.
# Plain "sqlite" only adds an fsync to every write, for both database contenders.
STRUCTURE_SETTINGS = ("sqlite-wal", "postgres", "mariadb")
CONTENDERS = {"keyval": "KeyValCache", "redis": "django-redis"}
# A database of its own: another engineer's "python -m benchmarks" may drop
# and recreate keyval_bench_py3XX at any moment, and the tests use 15.
DATABASE_SUFFIX = "_structures"
REDIS_URL = os.environ.get("KEYVAL_BENCH_STRUCTURES_REDIS_URL", "redis://127.0.0.1:6379/14")
HASH, SET, ZSET = "bench:hash", "bench:set", "bench:zset"
SAME_LOCK = "bench:lock"
DOOMED = "doomed:"
RANGE = 100  # zrange(0, RANGE - 1)
FILL_CHUNK = 250  # members or keys per untimed write


class Fixture:
    """The data of a run: plain keys, three structures of ``members``
    members each, and the ``doomed`` keys every ``delete_pattern`` deletes
    (refilled before each call). The store holds ``keys`` keys in all."""

    def __init__(self, keys: int, members: int, seed: int = 2024) -> None:
        self.size = keys
        self.members = members
        self.doomed = [f"{DOOMED}{j:05d}" for j in range(max(1, keys // 10))]
        self.plain = [f"key:{i:07d}" for i in range(keys - len(self.doomed) - 3)]
        rng = random.Random(seed)
        self.fields = [f"field:{j:05d}" for j in range(members)]
        self.set_members = [f"member:{j:05d}" for j in range(members)]
        # Distinct scores, so that the order of zrange is the same on both.
        scores = rng.sample(range(members * 10), members)
        self.scores = {f"member:{j:05d}": float(s) for j, s in enumerate(scores)}
        self.range_head = sorted(self.scores, key=self.scores.__getitem__)[:RANGE]

    def score(self, tag: str, i: int) -> float:
        """A new member's score: anywhere among the others, not one of them."""
        return random.Random(f"{tag}:{i}").randrange(self.members * 10) + 0.5


def _lock(cache: Any) -> Callable[[str], None]:
    lock = cache.lock

    def locked(name: str) -> None:
        with lock(name):
            pass

    return locked


def _refill(cache: Any, fixture: Fixture, batch: list[tuple[Any, ...]]) -> None:
    values = {key: make_value(j) for j, key in enumerate(fixture.doomed)}
    items = list(values.items())
    for start in range(0, len(items), FILL_CHUNK):
        cache.set_many(dict(items[start : start + FILL_CHUNK]))


def _drop_fields(cache: Any, fixture: Fixture, batch: list[tuple[Any, ...]]) -> None:
    for args in batch:  # django-redis's hdel takes one field
        cache.hdel(HASH, args[1])


def _drop_members(cache: Any, fixture: Fixture, batch: list[tuple[Any, ...]]) -> None:
    cache.srem(SET, *(args[1] for args in batch))


def _drop_scored(cache: Any, fixture: Fixture, batch: list[tuple[Any, ...]]) -> None:
    cache.zrem(ZSET, *(member for args in batch for member in args[1]))


@dataclass(frozen=True)
class StructureOp:
    """An operation: the callable timed (made from the cache), its arguments,
    the answer each call must give, and the untimed steps around a chunk.

    ``args(fixture, tag, i)`` gives the arguments of call ``i``; ``tag`` is
    unique per round and warm-up, so members that calls add never collide.
    """

    name: str
    label: str
    batch: bool  # slow calls: --batch-iterations of them, refilled one by one
    call: Callable[[Any], Callable[..., Any]]
    args: Callable[[Fixture, str, int], tuple[Any, ...]]
    expect: Callable[[Fixture], Any]
    before: Callable[[Any, Fixture, list[tuple[Any, ...]]], None] | None = None
    after: Callable[[Any, Fixture, list[tuple[Any, ...]]], None] | None = None


OPS: dict[str, StructureOp] = {
    op.name: op
    for op in (
        StructureOp(
            "lock",
            "lock acquire+release (distinct names)",
            False,
            _lock,
            lambda f, t, i: (f"lock:{t}:{i}",),
            lambda f: None,
        ),
        StructureOp(
            "lock_same",
            "lock acquire+release (one name)",
            False,
            _lock,
            lambda f, t, i: (SAME_LOCK,),
            lambda f: None,
        ),
        StructureOp(
            "hset",
            "hset (new field)",
            False,
            lambda c: c.hset,
            lambda f, t, i: (HASH, f"new:{t}:{i}", make_value(i)),
            lambda f: 1,
            after=_drop_fields,
        ),
        StructureOp(
            "sadd",
            "sadd (new member)",
            False,
            lambda c: c.sadd,
            lambda f, t, i: (SET, f"new:{t}:{i}"),
            lambda f: 1,
            after=_drop_members,
        ),
        StructureOp(
            "zadd",
            "zadd (new member)",
            False,
            lambda c: c.zadd,
            lambda f, t, i: (ZSET, {f"new:{t}:{i}": f.score(t, i)}),
            lambda f: 1,
            after=_drop_scored,
        ),
        StructureOp(
            "zrange",
            f"zrange(0, {RANGE - 1})",
            False,
            lambda c: c.zrange,
            lambda f, t, i: (ZSET, 0, RANGE - 1),
            lambda f: f.range_head,
        ),
        StructureOp(
            "delete_pattern",
            f"delete_pattern('{DOOMED}*')",
            True,
            lambda c: c.delete_pattern,
            lambda f, t, i: (f"{DOOMED}*",),
            lambda f: len(f.doomed),
            before=_refill,
        ),
        StructureOp(
            "delete_pattern_headless",
            f"delete_pattern('*{DOOMED}*')",
            True,
            lambda c: c.delete_pattern,
            lambda f, t, i: (f"*{DOOMED}*",),
            lambda f: len(f.doomed),
            before=_refill,
        ),
        StructureOp(
            "delete_pattern_1000",
            f"delete_pattern('{DOOMED}*', itersize=1000)",
            True,
            lambda c: functools.partial(c.delete_pattern, itersize=1000),
            lambda f, t, i: (f"{DOOMED}*",),
            lambda f: len(f.doomed),
            before=_refill,
        ),
    )
}


# -- the worker: one database setting ----------------------------------------------


def fill(cache: Any, fixture: Fixture) -> None:
    """The store's keys and structures, untimed, in chunks."""
    items = [(key, make_value(i)) for i, key in enumerate(fixture.plain)]
    items += [(key, make_value(j)) for j, key in enumerate(fixture.doomed)]
    for start in range(0, len(items), FILL_CHUNK):
        cache.set_many(dict(items[start : start + FILL_CHUNK]))
    for start in range(0, fixture.members, FILL_CHUNK):
        chunk = slice(start, start + FILL_CHUNK)
        cache.hset(HASH, mapping={f: make_value(j) for j, f in enumerate(fixture.fields[chunk])})
        cache.sadd(SET, *fixture.set_members[chunk])
        cache.zadd(ZSET, {m: fixture.scores[m] for m in fixture.set_members[chunk]})


def shape(cache: Any) -> tuple[int, int, int]:
    return cache.hlen(HASH), cache.scard(SET), cache.zcard(ZSET)


def measure(
    op: StructureOp, cache: Any, fixture: Fixture, tag: str, plan: Plan, wrong: list[str]
) -> list[int]:
    """Time the calls of ``op`` on ``cache``; nanoseconds per call. Answers
    that are not the expected one are described in ``wrong``."""
    fn = op.call(cache)
    calls = plan.batch_iterations if op.batch else plan.iterations
    warmups = plan.batch_warmup if op.batch else plan.warmup
    _run(op, cache, fn, fixture, f"w{tag}", warmups, plan, None, wrong)
    return _run(op, cache, fn, fixture, tag, calls, plan, plan.budget_s, wrong)


def _run(
    op: StructureOp,
    cache: Any,
    fn: Callable[..., Any],
    fixture: Fixture,
    tag: str,
    calls: int,
    plan: Plan,
    budget_s: float | None,
    wrong: list[str],
) -> list[int]:
    samples: list[int] = []
    answers: list[Any] = []
    expected = op.expect(fixture)
    chunk = 1 if op.batch else plan.chunk
    clock = time.perf_counter_ns
    deadline = None if budget_s is None else clock() + int(budget_s * 1e9)
    i = 0
    while i < calls:
        batch = [op.args(fixture, tag, j) for j in range(i, min(calls, i + chunk))]
        i += len(batch)
        if op.before is not None:
            op.before(cache, fixture, batch)
        answers.clear()
        gc.disable()
        try:
            for args in batch:
                start = clock()
                answer = fn(*args)
                samples.append(clock() - start)
                answers.append(answer)
        finally:
            gc.enable()
        if op.after is not None:
            op.after(cache, fixture, batch)
        for args, answer in zip(batch, answers, strict=True):
            if answer != expected and len(wrong) < 5:
                wrong.append(f"{op.name}{args!r} gave {answer!r:.200}, expected {expected!r:.200}")
        if deadline is not None and len(samples) >= plan.min_samples and clock() > deadline:
            break
    return samples


def run_structures(config: dict[str, Any]) -> dict[str, Any]:
    from django.core.cache import caches

    from keyval_backend.cache import TABLE
    from keyval_backend.sql.structures import MEMBER_TABLE

    from . import worker
    from .contenders import caches_setting
    from .databases import database

    pragmas = tuple(config.get("sqlite_pragmas", ()))
    db = database(config["setting"], config["workdir"], DATABASE_SUFFIX, pragmas)
    db.recreate()
    try:
        setting = caches_setting(["redis"], config["workdir"], db.setting)
        setting["redis"]["LOCATION"] = REDIS_URL
        started = time.perf_counter()
        worker.setup_django({"default": db}, setting)
        worker.log(f"[{db.setting}] Django set up in {time.perf_counter() - started:.1f}s")
        fixture = Fixture(config["keys"], config["members"])
        plan = Plan(**config["plan"])
        contenders: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        for name in config["contenders"]:
            cache = caches[name]
            try:
                cache.clear()  # this store, or FLUSHDB of the run's own Redis database
                started = time.perf_counter()
                fill(cache, fixture)
            except Exception as exc:  # a service that is down
                skipped[name] = f"{type(exc).__name__}: {exc}"
                worker.log(f"[{db.setting}] {name} skipped: {skipped[name]}")
                continue
            worker.log(
                f"[{db.setting}] {CONTENDERS[name]}: {fixture.size:,} keys (3 of them "
                f"structures of {fixture.members:,}) in {time.perf_counter() - started:.1f}s"
            )
            contenders[name] = cache
        if not contenders:
            raise RuntimeError(f"no contender could run: {skipped}")
        expected_shape = (fixture.members,) * 3
        for name, cache in contenders.items():
            if shape(cache) != expected_shape:
                raise RuntimeError(f"{CONTENDERS[name]} holds {shape(cache)} after the fill")
        worker.analyze(db, [TABLE, MEMBER_TABLE])
        redis = caches["redis"].client.get_client(write=True) if "redis" in contenders else None
        found = worker.versions(db, redis)
        gc.collect()
        gc.freeze()

        ops = [OPS[name] for name in config["ops"]]
        names = list(contenders)
        samples: dict[str, dict[str, list[int]]] = {op.name: {} for op in ops}
        rounds: dict[str, dict[str, list[float]]] = {op.name: {} for op in ops}
        wrong: dict[str, dict[str, list[str]]] = {}
        started = time.perf_counter()
        for r in range(config["repeat"]):
            for n, op in enumerate(ops):
                k = (r + n) % len(names)  # each round and operation starts with another
                for name in names[k:] + names[:k]:
                    errors: list[str] = []
                    try:
                        taken = measure(op, contenders[name], fixture, str(r), plan, errors)
                    except Exception as exc:  # reported with the tables, not fatal
                        taken = []
                        errors.append(f"raised {type(exc).__name__}: {exc}")
                        worker.log(f"[{db.setting}] {name} {op.name}: {errors[-1]}")
                    if taken:
                        samples[op.name].setdefault(name, []).extend(taken)
                        rounds[op.name].setdefault(name, []).append(
                            report.stats(taken)["median_us"]
                        )
                    if errors:
                        wrong.setdefault(op.name, {}).setdefault(name, []).extend(errors)
            worker.log(
                f"[{db.setting}] round {r + 1}/{config['repeat']} done "
                f"({time.perf_counter() - started:.0f}s)"
            )
        for name, cache in contenders.items():
            if shape(cache) != expected_shape:
                wrong.setdefault("after the run", {})[name] = [
                    f"hlen, scard, zcard {shape(cache)}, expected {expected_shape}"
                ]
        result = {
            "setting": db.setting,
            "vendor": db.vendor,
            "versions": found,
            "sqlite_pragmas": list(db.pragmas),
            "contenders": names,
            "skipped": skipped,
            "keys": fixture.size,
            "members": fixture.members,
            "doomed": len(fixture.doomed),
            "plan": config["plan"],
            "repeat": config["repeat"],
            "seconds": round(time.perf_counter() - started, 1),
            "ops": {
                op: {
                    name: {**report.stats(taken), "round_medians_us": rounds[op][name]}
                    for name, taken in by_contender.items()
                }
                for op, by_contender in samples.items()
            },
            "wrong": wrong,
        }
        if "redis" in contenders:
            contenders["redis"].clear()  # leave Redis's database as empty as it was found
        return result
    finally:
        worker._close_connections()
        try:
            db.drop()
        except Exception as exc:
            worker.log(f"[{db.setting}] could not drop {db.settings_dict['NAME']}: {exc}")


def worker_main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    result = run_structures(config)
    Path(config["output"]).write_text(json.dumps(result, indent=1))
    return 0


# -- the driver: one worker per database setting, then the tables -------------------


def _names(value: str, known: Any, what: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or value!r}; known: {', '.join(known)}"
        )
    return names


def parser() -> argparse.ArgumentParser:
    """The options; the same names (and defaults) as ``python -m benchmarks``'s,
    so that ``python -m benchmarks --structures`` can pass its own through."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.structures",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--databases",
        type=lambda v: _names(v, SETTINGS, "database setting"),
        help=f"database settings, comma-separated, of {', '.join(SETTINGS)} "
        f"(default: {','.join(STRUCTURE_SETTINGS)})",
    )
    p.add_argument(
        "--ops",
        default=",".join(OPS),
        type=lambda v: _names(v, OPS, "operation"),
        help=f"operations: {', '.join(OPS)}",
    )
    p.add_argument("--keys", type=int, default=10_000, help="keys in the store")
    p.add_argument(
        "--members", type=int, default=1000, help="members of the hash, set and sorted set"
    )
    p.add_argument("--repeat", type=int, default=5, help="rounds (contenders alternate)")
    p.add_argument("--iterations", type=int, default=200, help="timed calls per fast operation")
    p.add_argument(
        "--batch-iterations", type=int, default=20, help="timed calls per delete_pattern"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=1.0,
        help="seconds after which a contender's round of one operation stops early",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run of a few seconds per database (CI): 1,000 keys, 100 members, few calls",
    )
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--load", metavar="PATH", help="report a run saved with --json, run nothing")
    p.add_argument("--markdown", action="store_true", help="print markdown tables")
    p.add_argument("--sqlite-pragma", action="append", default=[], metavar="PRAGMA")
    p.add_argument("--workdir", help="where SQLite files live (default: a temp dir)")
    p.add_argument(
        "--keep-awake",
        action="store_true",
        help="run a busy loop at the lowest priority meanwhile (see docs/performance)",
    )
    p.add_argument("--worker", metavar="CONFIG", help=argparse.SUPPRESS)
    return p


def run_worker(config: dict[str, Any], workdir: str) -> dict[str, Any] | None:
    """Run one worker; its result, or None if it failed (it said why on stderr)."""
    return process.run_configured(
        ["benchmarks.structures", "--worker"],
        config,
        workdir,
        f"structures run on {config['setting']}",
    )


def _cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    return f"{report.us(entry['median_us'])} / {report.us(entry['p99_us'])}"


def _ratio(by: dict[str, Any]) -> float | None:
    kv, redis = by.get("keyval"), by.get("redis")
    if kv is None or redis is None or kv["median_us"] == 0:
        return None
    return float(redis["median_us"] / kv["median_us"])


def _round_ratios(by: dict[str, Any]) -> str:
    """The lowest and highest ratio of one round's medians: how far the
    machine moved the ratio during the run."""
    kv, redis = by.get("keyval"), by.get("redis")
    if kv is None or redis is None:
        return "-"
    ratios = [
        b / a for a, b in zip(kv["round_medians_us"], redis["round_medians_us"], strict=False) if a
    ]
    if not ratios:
        return "-"
    return f"{report.times(min(ratios))} to {report.times(max(ratios))}"


def run_table(run: dict[str, Any], markdown: bool = False) -> str:
    headers = ["op (median / p99 µs)", *CONTENDERS.values(), "django-redis / KV", "by round"]
    rows = [
        [
            OPS[op].label,
            _cell(by.get("keyval")),
            _cell(by.get("redis")),
            report.times(_ratio(by)),
            _round_ratios(by),
        ]
        for op, by in run["ops"].items()
    ]
    return report.table(headers, rows, markdown)


def summary_table(runs: dict[str, Any], markdown: bool = False) -> str:
    """django-redis / KV of every operation on every database setting."""
    settings = list(runs)
    ops = list(dict.fromkeys(op for run in runs.values() for op in run["ops"]))
    rows = [
        [
            OPS[op].label,
            *(report.times(_ratio(runs[s]["ops"].get(op, {}))) for s in settings),
        ]
        for op in ops
    ]
    return report.table(["django-redis / KV", *settings], rows, markdown)


def print_runs(results: dict[str, Any], markdown: bool) -> None:
    runs = results.get("runs", {})
    for setting, run in runs.items():
        versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items())
        print(
            f"\n## structures, {setting}: {run['keys']:,} keys, structures of "
            f"{run['members']:,}, delete_pattern of {run['doomed']:,}, "
            f"{run['repeat']} rounds ({versions})\n"
        )
        for name, why in run.get("skipped", {}).items():
            print(f"skipped {CONTENDERS.get(name, name)}: {why}\n")
        print(run_table(run, markdown))
        for op, by in run.get("wrong", {}).items():
            for name, errors in by.items():
                for error in errors:
                    print(f"!! {CONTENDERS.get(name, name)}, {op}: {error}")
    if len(runs) > 1:
        print("\n## structures, django-redis / KV (ratio of medians; > 1: KeyValCache faster)\n")
        print(summary_table(runs, markdown))


def run(args: argparse.Namespace) -> int:
    """A run from parsed options (this module's, or ``python -m benchmarks``'s)."""
    from .run import plan, start_spinner

    if args.load:
        print_runs(json.loads(Path(args.load).read_text()), args.markdown)
        return 0
    workdir = args.workdir or tempfile.mkdtemp(prefix="keyval-bench-structures-")
    os.makedirs(workdir, exist_ok=True)
    common = {
        "keys": 1000 if args.quick else args.keys,
        "members": 100 if args.quick else args.members,
        "plan": plan(args),
        "repeat": 1 if args.quick else args.repeat,
        "sqlite_pragmas": args.sqlite_pragma,
        "ops": args.ops,
        "contenders": list(CONTENDERS),
    }
    results: dict[str, Any] = {
        "meta": {"argv": sys.argv[1:], "date": time.strftime("%Y-%m-%d %H:%M:%S")},
        "runs": {},
    }
    failed = False
    started = time.perf_counter()
    spinner = start_spinner() if args.keep_awake else None
    try:
        for setting in args.databases or STRUCTURE_SETTINGS:
            print(f"-- structures, {setting}", file=sys.stderr, flush=True)
            result = run_worker({**common, "setting": setting}, workdir)
            if result is None:
                failed = True
                continue
            results["runs"][setting] = result
            failed = failed or bool(result["wrong"])  # a skipped contender is not a failure
        results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
        print_runs(results, args.markdown)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"\n(total {results['meta']['seconds']:.0f}s)", file=sys.stderr)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
