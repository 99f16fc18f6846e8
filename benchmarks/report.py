"""Statistics, tables (aligned text that is also an RST simple table, or
markdown), ratios, the issue's targets, and the plot."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from typing import Any

from .contenders import CONTENDERS
from .ops import OPS

# Ratio columns: (title, numerator contender, denominator contender). KeyValCache
# against the floor reads "times the floor" (1.0 is the floor, lower is better);
# against the others, "times faster" (higher is better).
RATIOS = (
    ("KV / floor", "keyval", "floor"),
    ("DatabaseCache / KV", "dbcache", "keyval"),
    ("django-redis / KV", "redis", "keyval"),
    ("diskcache / KV", "diskcache", "keyval"),
)
WRITES = ("set", "add", "delete", "incr", "pop", "set_many", "delete_many")


def stats(samples_ns: Sequence[int]) -> dict[str, Any]:
    """Median, p99 (nearest rank), mean and min in microseconds."""
    ordered = sorted(samples_ns)
    n = len(ordered)
    p99 = ordered[min(n - 1, math.ceil(0.99 * n) - 1)]
    return {
        "n": n,
        "median_us": statistics.median(ordered) / 1000,
        "p99_us": p99 / 1000,
        "mean_us": statistics.fmean(ordered) / 1000,
        "min_us": ordered[0] / 1000,
    }


def us(value: float | None) -> str:
    """Microseconds, with the precision that means something."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def times(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}x"
    return f"{value:,.0f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """Aligned text: an RST simple table, or a markdown table."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return ("| " + " | ".join(out) + " |") if markdown else "  ".join(out).rstrip()

    if markdown:
        rule = (
            "|"
            + "|".join(
                ("-" * (w + 1) + ":") if i else ("-" * (w + 2)) for i, w in enumerate(widths)
            )
            + "|"
        )
        return "\n".join([line(headers), rule, *(line(row) for row in rows)])
    rule = "  ".join("=" * w for w in widths)
    return "\n".join([rule, line(headers), rule, *(line(row) for row in rows), rule])


def _median(run: dict[str, Any], op: str, contender: str) -> float | None:
    entry = run["ops"].get(op, {}).get(contender)
    return None if entry is None else entry["median_us"]


def ratio(run: dict[str, Any], op: str, top: str, bottom: str) -> float | None:
    a, b = _median(run, op, top), _median(run, op, bottom)
    return None if a is None or b is None or b == 0 else a / b


def latency_table(run: dict[str, Any], markdown: bool = False) -> str:
    names = run["contenders"]
    headers = ["op (median / p99 µs)", *(CONTENDERS.get(n, n) for n in names)]
    rows = []
    for op, by_contender in run["ops"].items():
        cells = [OPS[op].label]
        for name in names:
            entry = by_contender.get(name)
            cells.append(
                "-" if entry is None else f"{us(entry['median_us'])} / {us(entry['p99_us'])}"
            )
        rows.append(cells)
    return table(headers, rows, markdown)


def ratio_table(run: dict[str, Any], markdown: bool = False) -> str:
    present = set(run["contenders"])
    columns = [r for r in RATIOS if r[1] in present and r[2] in present]
    headers = ["op (ratio of medians)", *(title for title, _, _ in columns)]
    rows = [
        [OPS[op].label, *(times(ratio(run, op, top, bottom)) for _, top, bottom in columns)]
        for op in run["ops"]
    ]
    return table(headers, rows, markdown)


def targets(run: dict[str, Any]) -> list[tuple[str, str, float | None, str]]:
    """The issue's targets for this database setting: (what, bound, measured,
    verdict). Informational: nothing fails on them."""
    checks: list[tuple[str, str, str, str, float]] = []  # op, top, bottom, <= or >=, bound
    setting = run["setting"]
    if setting == "sqlite-wal":
        for op in ("get_hit", "get_miss"):
            checks += [(op, "keyval", "floor", "<=", 1.5), (op, "redis", "keyval", ">=", 4)]
        for op in ("set", "add", "delete", "incr", "pop"):
            checks += [(op, "keyval", "floor", "<=", 2), (op, "redis", "keyval", ">=", 3)]
        for op in ("get_many", "set_many", "delete_many"):
            checks.append((op, "keyval", "floor", "<=", 2))
        checks.append(("set_many", "dbcache", "keyval", ">=", 50))
    elif setting == "sqlite":
        checks += [(op, "dbcache", "keyval", ">=", 1.5) for op in WRITES]
    else:
        checks += [("get_hit", "dbcache", "keyval", ">=", 3)]
        checks += [("set_many", "dbcache", "keyval", ">=", 50)]
        checks += [(op, "keyval", "floor", "<=", 1.3) for op in OPS]
    found = []
    for op, top, bottom, sense, bound in checks:
        if op not in run["ops"]:
            continue
        value = ratio(run, op, top, bottom)
        what = f"{OPS[op].label}: {CONTENDERS[top]} / {CONTENDERS[bottom]}"
        if value is None:
            verdict = "n/a"
        else:
            verdict = "ok" if (value <= bound if sense == "<=" else value >= bound) else "MISSED"
        found.append((what, f"{sense} {bound}", value, verdict))
    return found


def targets_table(run: dict[str, Any], markdown: bool = False) -> str:
    rows = [[what, bound, times(value), verdict] for what, bound, value, verdict in targets(run)]
    return table(["target (issue 5)", "bound", "measured", "verdict"], rows, markdown)


def scale_tables(result: dict[str, Any], markdown: bool = False) -> str:
    small, large = result["small_keys"], result["large_keys"]
    rows = []
    for op, by in result["ops"].items():
        for base in ("keyval", "floor"):
            a, b = by.get(f"{base}@small"), by.get(f"{base}@large")
            if a is None or b is None:
                continue
            rows.append(
                [
                    f"{OPS[op].label}, {CONTENDERS[base]}",
                    f"{us(a['median_us'])} / {us(a['p99_us'])}",
                    f"{us(b['median_us'])} / {us(b['p99_us'])}",
                    times(b["median_us"] / a["median_us"]),
                ]
            )
    latency = table(
        ["op (median / p99 µs)", f"{small:,} keys", f"{large:,} keys", "large / small"],
        rows,
        markdown,
    )
    expiry = result.get("expiry")
    if not expiry:
        return latency
    expiry_rows = [
        [f"{row['writes']:,}", f"{row['live']:,}", f"{row['rows']:,}", f"{row['expired']:,}"]
        for row in expiry["samples"]
    ]
    expiry_table = table(
        ["writes of 1 s keys", "live", "rows in store", "expired rows"], expiry_rows, markdown
    )
    summary = (
        f"{expiry['writes']:,} writes of distinct keys with a 1 s timeout, the clock "
        f"advancing {expiry['tick_ms']} ms per write; most expired rows seen: "
        f"{expiry['max_expired']:,} (PURGE_EVERY={expiry['purge_every']}, "
        f"PURGE_BATCH={expiry['purge_batch']})"
    )
    return f"{latency}\n\n{expiry_table}\n{summary}"


def plot(runs: dict[str, dict[str, Any]], path: str) -> None:
    """Median latency per operation per backend, log scale, one panel per
    database setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(runs)
    fig, axes = plt.subplots(
        len(settings), 1, figsize=(12, 3.6 * len(settings)), squeeze=False, sharey=True
    )
    colors = {
        "keyval": "#2b7bba",
        "floor": "#9e9e9e",
        "dbcache": "#e07b39",
        "redis": "#c0392b",
        "diskcache": "#6a9f3a",
    }
    for ax, setting in zip(axes[:, 0], settings, strict=True):
        run = runs[setting]
        ops = list(run["ops"])
        names = run["contenders"]
        width = 0.8 / len(names)
        for k, name in enumerate(names):
            values = [_median(run, op, name) or float("nan") for op in ops]
            positions = [i + (k - (len(names) - 1) / 2) * width for i in range(len(ops))]
            ax.bar(
                positions, values, width, label=CONTENDERS.get(name, name), color=colors.get(name)
            )
        ax.set_yscale("log")
        ax.set_xticks(range(len(ops)), [OPS[op].label for op in ops], rotation=20, ha="right")
        ax.set_ylabel("median µs per call")
        ax.set_title(f"{setting} ({run['keys']:,} keys)")
        ax.grid(axis="y", which="major", alpha=0.3)
    axes[0, 0].legend(ncols=len(CONTENDERS), loc="upper left", fontsize="small")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
