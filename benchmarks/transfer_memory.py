"""The dump and load run (``--transfer-memory``): time and peak memory of
``keyval -c dump`` and ``keyval -c load`` at two sizes or more, for the
issue's target of a 1,000,000-entry dump and load in constant memory.

Every step runs in a fresh process of its own, ``python -m
benchmarks.transfer_memory STEP CONFIG.json``, so that the peak resident set
it reports (``getrusage``'s ``ru_maxrss``) is that step's alone, not that of
a process that filled a table before. One child fills the source database
through ``KeyValCache.set_many`` (and migrates an empty target database
beside it); one runs the command's dump to a file; one loads that file into
the target database and counts what arrived. A last child only sets up
Django, imports the command and connects: its peak is the floor every other
child stands on (Python, Django, the driver), so that the reader can tell it
from what the dump or the load holds.

Constant memory means the peak barely moves from the smallest size to the
largest: rows kept by mistake, even a few dozen bytes each, would show as
tens of megabytes at a million entries. A peak can also grow with memory
that nothing holds any more: glibc keeps freed blocks of the C heap, and
large blocks freed in a changing order leave holes it does not give back. So
each step also reports the C heap it leaves, in use and freed but kept: rows
held show in the first, fragmentation in the second.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .databases import Database, database

STORE = "transfer"
# Entries per set_many call, and per transaction, while filling.
FILL_STEP = 10_000
# What "constant" allows between the smallest and the largest size: at the
# default sizes, 5 MB over 900,000 more entries is under 6 bytes an entry,
# less than any row kept.
CONSTANT_MB = 5.0
ROOT = Path(__file__).resolve().parent.parent


def run_transfer(
    setting: str, sizes: list[int], workdir: str, pragmas: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Fill, dump and load ``sizes`` entries on ``setting``, each step in a
    child process; the two databases are made afresh for every size and
    dropped at the end."""
    source = database(setting, workdir, "_dump", pragmas)
    target = database(setting, workdir, "_load", pragmas)
    config: dict[str, Any] = {
        "setting": setting,
        "workdir": workdir,
        "sqlite_pragmas": list(pragmas),
        "dump_file": os.path.join(workdir, f"transfer_{setting}.jsonl"),
    }
    result: dict[str, Any] = {"setting": setting, "sqlite_pragmas": list(pragmas), "sizes": []}
    try:
        for entries in sizes:
            source.recreate()
            target.recreate()
            step = {**config, "entries": entries}
            filled = _child("fill", step)
            dumped = _child("dump", step)
            dump_bytes = os.path.getsize(config["dump_file"])
            with open(config["dump_file"], "rb") as file:
                lines = sum(1 for _ in file)
            if lines != entries:
                raise RuntimeError(f"the dump of {entries:,} entries has {lines:,} lines")
            loaded = _child("load", step)
            if loaded["count"] != entries:
                raise RuntimeError(f"{entries:,} entries dumped, {loaded['count']:,} loaded")
            _log(
                f"[{setting} transfer] {entries:,}: filled in {filled['seconds']:.0f}s, "
                f"dump {dumped['seconds']:.1f}s {dumped['peak_kb'] / 1024:.1f} MB, "
                f"load {loaded['seconds']:.1f}s {loaded['peak_kb'] / 1024:.1f} MB"
            )
            result["versions"] = filled["versions"]
            result["sizes"].append(
                {"entries": entries, "dump_bytes": dump_bytes, "dump": dumped, "load": loaded}
            )
            os.remove(config["dump_file"])
        result["baseline"] = _child("baseline", config)
    finally:
        for db in (source, target):
            try:
                db.drop()
            except Exception as exc:
                _log(f"[{setting} transfer] could not drop {db.settings_dict['NAME']}: {exc}")
        if os.path.exists(config["dump_file"]):
            os.remove(config["dump_file"])
    return result


def _child(step: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run ``step`` in a fresh interpreter; what it measured."""
    fd, output = tempfile.mkstemp(suffix=".json", dir=config["workdir"])
    os.close(fd)
    config_path = output + ".config"
    Path(config_path).write_text(json.dumps({**config, "output": output}))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.transfer_memory", step, config_path],
            cwd=ROOT,
            env=env,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"the {step} step on {config['setting']} failed (exit {completed.returncode})"
            )
        return json.loads(Path(output).read_text())  # type: ignore[no-any-return]
    finally:
        for path in (output, config_path):
            os.remove(path)


# -- the children ----------------------------------------------------------------------


def _configure(source: Database, target: Database, alias: str) -> None:
    """Django with the two databases, and a KeyValCache on ``alias``, the
    command's default cache. No migrate: it would load the migration graph
    into the measured process (the fill step migrates, once)."""
    import django
    from django.conf import settings

    from .databases import django_entry
    from .process import SECRET_KEY

    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET_KEY,
        USE_TZ=True,
        DATABASES={"default": django_entry(source), "target": django_entry(target)},
        INSTALLED_APPS=["keyval_backend"],
        CACHES={
            "keyval": {
                "BACKEND": "keyval_backend.cache.KeyValCache",
                "LOCATION": STORE,
                "OPTIONS": {"DATABASE": alias},
            }
        },
    )
    django.setup()


def _peak_kb() -> int:
    """The process's peak resident set so far, in kB (Linux's unit)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _fill(source: Database, config: dict[str, Any]) -> dict[str, Any]:
    from django.core.cache import caches
    from django.core.management import call_command
    from django.db import transaction

    from keyval_backend.cache import TABLE

    from .ops import key_name, make_value
    from .process import analyze, versions

    for alias in ("default", "target"):
        call_command("migrate", database=alias, verbosity=0, interactive=False)
    cache, entries = caches["keyval"], config["entries"]
    started = time.perf_counter()
    for start in range(0, entries, FILL_STEP):
        chunk = {key_name(i): make_value(i) for i in range(start, min(entries, start + FILL_STEP))}
        with transaction.atomic():
            cache.set_many(chunk, timeout=None)
    # The statistics a table of this size would have by the time anyone dumps it.
    analyze(source, [TABLE])
    return {"seconds": time.perf_counter() - started, "versions": versions(source)}


def _ready() -> int:
    """Import what the command runs and connect, as the dump and the load do
    before they start; the peak so far, in kB."""
    from django.db import connections

    from keyval_backend.management.commands import keyval  # noqa: F401

    for alias in ("default", "target"):
        connections[alias].ensure_connection()
    return _peak_kb()


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2``: ten ``size_t`` fields."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",  # allocated
            "fordblks",  # free, kept by the allocator
            "keepcost",
        )
    ]


def _heap_kb() -> dict[str, int] | None:
    """glibc's heap as a step leaves it: what is allocated, and what was
    freed but is still kept (resident, so in the peak), to tell memory held
    by the code from memory the allocator did not give back. None where the
    C library is not glibc 2.33 or later."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {"in_use": info.uordblks // 1024, "free": info.fordblks // 1024}


def _command(*args: str) -> dict[str, Any]:
    """Run ``keyval`` with ``args`` (verbosity 0: no progress bar): its time,
    the peak resident set before and after it, and the heap it leaves."""
    from django.core.management import call_command

    ready_kb = _ready()
    started = time.perf_counter()
    call_command("keyval", *args, "-v", "0")
    return {
        "seconds": time.perf_counter() - started,
        "ready_kb": ready_kb,
        "peak_kb": _peak_kb(),
        "heap_kb": _heap_kb(),
    }


def child_main(argv: list[str]) -> int:
    step, config_path = argv[1], argv[2]
    config = json.loads(Path(config_path).read_text())
    pragmas = tuple(config["sqlite_pragmas"])
    source = database(config["setting"], config["workdir"], "_dump", pragmas)
    target = database(config["setting"], config["workdir"], "_load", pragmas)
    _configure(source, target, "target" if step == "load" else "default")
    result: dict[str, Any]
    if step == "fill":
        result = _fill(source, config)
    elif step == "dump":
        result = _command("-c", "dump", "--output", config["dump_file"])
    elif step == "load":
        from keyval_backend.transfer import count_live

        result = _command("-c", "load", "--input", config["dump_file"])
        result["count"] = count_live("target")
    elif step == "baseline":
        result = {"peak_kb": _ready()}
    else:
        raise ValueError(f"unknown step {step!r}")
    from django.db import connections

    connections.close_all()
    Path(config["output"]).write_text(json.dumps(result))
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the report ------------------------------------------------------------------------


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


def tables(result: dict[str, Any], markdown: bool = False) -> str:
    from .report import table

    sizes = result["sizes"]
    rows = [
        [
            f"{size['entries']:,}",
            f"{size['dump_bytes'] / 1e6:,.1f}",
            f"{size['dump']['seconds']:.1f}",
            _mb(size["dump"]["peak_kb"]),
            f"{size['load']['seconds']:.1f}",
            _mb(size["load"]["peak_kb"]),
        ]
        for size in sizes
    ]
    text = table(
        ["entries", "file MB", "dump s", "dump peak MB", "load s", "load peak MB"],
        rows,
        markdown,
    )
    baseline = result["baseline"]["peak_kb"]
    text += (
        f"\npeak RSS of a process that only sets up Django, imports the command and "
        f"connects: {_mb(baseline)} MB"
    )
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        growth = []
        for step in ("dump", "load"):
            mb = (last[step]["peak_kb"] - first[step]["peak_kb"]) / 1024
            verdict = "constant" if mb <= CONSTANT_MB else "GROWS"
            growth.append(f"{step} {mb:+.1f} MB ({verdict})")
        text += (
            f"\npeak RSS from {first['entries']:,} to {last['entries']:,} entries: "
            f"{', '.join(growth)}; constant means within {CONSTANT_MB:g} MB"
        )
    heaps = [
        f"{step} {_mb(heap['in_use'])} / {_mb(heap['free'])}"
        for step in ("dump", "load")
        if (heap := sizes[-1][step].get("heap_kb"))
    ]
    if heaps:
        text += (
            f"\nC heap (glibc) after {sizes[-1]['entries']:,} entries, MB in use / freed "
            f"but kept: {', '.join(heaps)}"
        )
    return text


if __name__ == "__main__":
    raise SystemExit(child_main(sys.argv))
