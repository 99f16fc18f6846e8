"""``python -m benchmarks``: KeyValCache against DatabaseCache, django-redis,
diskcache and the raw driver floor, on each database setting.

Each database setting runs in a subprocess of its own (``benchmarks.worker``)
with Django configured for that database only. Within it, the contenders take
turns: every round times every operation on every contender, and each round
starts with another contender, so that drift on a shared machine is spread
over all of them. Compare ratios from one run; absolute numbers move with the
machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import async_ops, process, report, transfer_memory
from .contenders import CONTENDERS
from .databases import DEFAULT_SETTINGS, SETTINGS
from .ops import OPS


def _names(value: str, known: Any, what: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["none"]:
        return []
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return names


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(size) for size in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive: {value!r}")
    return sizes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--databases",
        type=lambda v: _names(v, SETTINGS, "database setting"),
        help=f"database settings, comma-separated, of {', '.join(SETTINGS)} (default: "
        f"{','.join(DEFAULT_SETTINGS)}; sqlite-wal with --profile)",
    )
    p.add_argument(
        "--ops",
        default=",".join(OPS),
        type=lambda v: _names(v, OPS, "operation"),
        help=f"operations (or 'none'): {', '.join(OPS)}",
    )
    p.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        type=lambda v: _names(v, CONTENDERS, "contender"),
        help=f"contenders: {', '.join(CONTENDERS)}",
    )
    p.add_argument("--keys", type=int, default=10_000, help="keys in the table")
    p.add_argument("--repeat", type=int, default=5, help="rounds (contenders alternate)")
    p.add_argument(
        "--iterations",
        type=int,
        default=200,
        help="timed calls per single-key operation, contender and round",
    )
    p.add_argument(
        "--batch-iterations",
        type=int,
        default=20,
        help="timed calls per batch operation, contender and round",
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
        help="smoke run of a few seconds per database (CI): small table, few calls",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="also run the scale run (slow): latency at --scale-keys against "
        "1,000 keys, and expired rows after --scale-writes writes of 1 s keys",
    )
    p.add_argument("--scale-keys", type=int, default=1_000_000)
    p.add_argument("--scale-writes", type=int, default=1_000_000)
    p.add_argument(
        "--transfer-memory",
        action="store_true",
        help="also time keyval -c dump and -c load at each of --transfer-entries "
        "(slow), with their peak memory, each in a fresh process",
    )
    p.add_argument(
        "--transfer-entries",
        default="100000,1000000",
        type=_sizes,
        help="entries dumped and loaded, comma-separated (with --quick: 1000,10000)",
    )
    p.add_argument(
        "--async",
        dest="async_api",
        action="store_true",
        help="also benchmark the async API (benchmarks.async_ops): a* natively and through "
        "the thread against the sync methods; PostgreSQL: 1,000 concurrent aget; SQLite-WAL: "
        "the event loop's lag under 4 writing processes",
    )
    p.add_argument(
        "--profile",
        metavar="OP",
        choices=list(OPS),
        help="instead of the comparison, profile OP on KeyValCache (first database)",
    )
    p.add_argument("--profile-contender", default="keyval", choices=["keyval", "floor"])
    p.add_argument("--profile-calls", type=int, default=20_000)
    p.add_argument("--plot", metavar="PATH.png", help="write a plot of the medians")
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--load", metavar="PATH", help="report a run saved with --json, run nothing")
    p.add_argument("--markdown", action="store_true", help="print markdown tables")
    p.add_argument(
        "--sqlite-pragma",
        action="append",
        default=[],
        metavar="PRAGMA",
        help="extra statement for every SQLite connection, KeyValCache's and the floor's "
        "(e.g. 'PRAGMA cache_size=-65536'); repeatable",
    )
    p.add_argument("--workdir", help="where SQLite files and diskcache live (default: a temp dir)")
    p.add_argument(
        "--structures",
        action="store_true",
        help="instead, time locks, hashes, sets, sorted sets and "
        "delete_pattern against django-redis; its options: python -m benchmarks.structures --help",
    )
    p.add_argument(
        "--near",
        action="store_true",
        help="instead, time the near cache (OPTIONS['NEAR_CACHE']): hits, cross-process "
        "staleness, a mixed workload; its options: python -m benchmarks.near --help",
    )
    p.add_argument(
        "--keep-awake",
        action="store_true",
        help="run a busy loop at the lowest priority meanwhile, so that idle CPUs do not "
        "sleep between round trips (see docs/performance: on a virtual machine an idle "
        "CPU's wake-up doubles a loopback round trip)",
    )
    return p


def start_spinner() -> subprocess.Popen[bytes]:
    """A process spinning at nice 19, for ``--keep-awake``.

    An idle virtual CPU halts, and waking it for a packet costs tens of
    microseconds: a Redis or database round trip on loopback measured 85 µs
    on an idle machine and 31 µs with one core kept busy. Production servers
    are rarely idle; the spinner only takes time no contender wants.
    """
    return subprocess.Popen(
        [sys.executable, "-c", "import os\nos.nice(19)\nwhile True: pass"],
        stdin=subprocess.DEVNULL,
    )


def plan(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return {
            "iterations": 20,
            "batch_iterations": 3,
            "warmup": 2,
            "batch_warmup": 1,
            "budget_s": 0.1,
            "min_samples": 1,
        }
    return {
        "iterations": args.iterations,
        "batch_iterations": args.batch_iterations,
        "warmup": max(1, args.iterations // 10),
        "batch_warmup": max(1, args.batch_iterations // 10),
        "budget_s": args.budget,
    }


def run_worker(config: dict[str, Any], workdir: str) -> dict[str, Any] | None:
    """Run one worker; its result, or None if it failed (it said why on stderr)."""
    return process.run_configured(
        ["benchmarks.worker"], config, workdir, f"{config['mode']} run on {config['setting']}"
    )


def print_runs(results: dict[str, Any], markdown: bool) -> None:
    for setting, run in results.get("runs", {}).items():
        versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items())
        print(f"\n## {setting}: {run['keys']:,} keys, {run['repeat']} rounds ({versions})\n")
        if run.get("sqlite_pragmas"):
            print(f"SQLite connections run: {'; '.join(run['sqlite_pragmas'])}\n")
        if run.get("skipped"):
            for name, why in run["skipped"].items():
                print(f"skipped {CONTENDERS.get(name, name)}: {why}")
            print()
        print(report.latency_table(run, markdown))
        print()
        print(report.ratio_table(run, markdown))
        checks = report.targets(run)
        if checks:
            print()
            print(report.targets_table(run, markdown))
    for setting, scale in results.get("scale", {}).items():
        print(f"\n## scale, {setting}\n")
        if scale.get("sqlite_pragmas"):
            print(f"SQLite connections run: {'; '.join(scale['sqlite_pragmas'])}\n")
        print(report.scale_tables(scale, markdown))
    for setting, found in results.get("async", {}).items():
        print(f"\n## async API, {setting}\n")
        print(async_ops.tables(found, markdown))
    for setting, transfer in results.get("transfer", {}).items():
        versions = ", ".join(f"{k} {v}" for k, v in transfer["versions"].items())
        print(f"\n## dump and load, {setting} ({versions})\n")
        if transfer.get("sqlite_pragmas"):
            print(f"SQLite connections run: {'; '.join(transfer['sqlite_pragmas'])}\n")
        print(transfer_memory.tables(transfer, markdown))


def print_profile(result: dict[str, Any], markdown: bool) -> None:
    label = CONTENDERS[result["contender"]]
    print(
        f"\n## profile of {OPS[result['op']].label} on {label}, {result['setting']}: "
        f"{result['calls']:,} calls, {result['plain_us']:.1f} µs per call plain, "
        f"{result['profiled_us']:.1f} µs under cProfile\n"
    )
    for title, key in (("own time", "by_own"), ("cumulative time", "by_cum")):
        rows = [
            [
                row["function"],
                f"{row['own_us']:.2f}",
                f"{row['cum_us']:.2f}",
                f"{row['calls_per_op']:.3g}",
            ]
            for row in result[key]
        ]
        print(f"by {title} (µs per operation, under cProfile):\n")
        print(report.table(["function", "own", "cumulative", "calls per op"], rows, markdown))
        print()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.structures:
        parser().error("write --structures in full")
    if args.near:
        parser().error("write --near in full")
    if args.load:
        saved = json.loads(Path(args.load).read_text())
        print_runs(saved, args.markdown)
        if args.plot and saved.get("runs"):
            report.plot(saved["runs"], args.plot)
        return 0

    workdir = args.workdir or tempfile.mkdtemp(prefix="keyval-bench-")
    os.makedirs(workdir, exist_ok=True)
    keys = 1000 if args.quick else args.keys
    common = {
        "keys": keys,
        "plan": plan(args),
        "repeat": 1 if args.quick else args.repeat,
        "sqlite_pragmas": args.sqlite_pragma,
    }
    failed = False
    started = time.perf_counter()
    spinner = start_spinner() if args.keep_awake else None
    try:
        if args.profile:
            setting = args.databases[0] if args.databases else "sqlite-wal"
            result = run_worker(
                {
                    **common,
                    "mode": "profile",
                    "setting": setting,
                    "profile": args.profile,
                    "profile_contender": args.profile_contender,
                    "profile_calls": 200 if args.quick else args.profile_calls,
                },
                workdir,
            )
            if result is None:
                return 1
            print_profile(result, args.markdown)
            return 0

        results: dict[str, Any] = {
            "meta": {
                "argv": sys.argv[1:] if argv is None else argv,
                "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
                "python": platform.python_version(),
            },
            "runs": {},
            "scale": {},
            "transfer": {},
            "async": {},
        }
        databases = args.databases or list(DEFAULT_SETTINGS)
        if args.ops:
            for setting in databases:
                print(f"-- {setting}", file=sys.stderr, flush=True)
                run = run_worker(
                    {
                        **common,
                        "mode": "ops",
                        "setting": setting,
                        "ops": args.ops,
                        "contenders": args.contenders,
                    },
                    workdir,
                )
                if run is None:
                    failed = True
                else:
                    results["runs"][setting] = run
        if args.scale:
            for setting in databases:
                print(f"-- scale, {setting}", file=sys.stderr, flush=True)
                scale = run_worker(
                    {
                        **common,
                        "mode": "scale",
                        "setting": setting,
                        "scale_ops": ["get_hit", "set"],
                        "small_keys": 1000,
                        "large_keys": 10_000 if args.quick else args.scale_keys,
                        "scale_writes": 5000 if args.quick else args.scale_writes,
                    },
                    workdir,
                )
                if scale is None:
                    failed = True
                else:
                    results["scale"][setting] = scale
        if args.transfer_memory:
            sizes = [1000, 10_000] if args.quick else args.transfer_entries
            for setting in databases:
                print(f"-- dump and load, {setting}", file=sys.stderr, flush=True)
                try:
                    results["transfer"][setting] = transfer_memory.run_transfer(
                        setting, sizes, workdir, tuple(args.sqlite_pragma)
                    )
                except Exception as exc:  # a step that failed, a service that is down
                    print(f"!! dump and load on {setting}: {exc}", file=sys.stderr)
                    failed = True
        if args.async_api:
            for setting in databases:
                print(f"-- async API, {setting}", file=sys.stderr, flush=True)
                found = async_ops.run(setting, workdir, 1 if args.quick else args.repeat)
                if found is None:
                    failed = True
                else:
                    results["async"][setting] = found
        results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
        print_runs(results, args.markdown)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        if args.plot and results["runs"]:
            report.plot(results["runs"], args.plot)
            print(f"\nplot written to {args.plot}")
        print(f"\n(total {results['meta']['seconds']:.0f}s)", file=sys.stderr)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0
