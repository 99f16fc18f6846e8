"""The operations, their arguments, and the timing loop.

Every call is timed on its own with ``time.perf_counter_ns`` after a warm-up,
with the garbage collector paused during the timed calls (it catches up
between them; the worker freezes what set-up allocated, so that catching up
is cheap). Whatever an operation needs beforehand (the keys a delete or pop
removes) is written untimed, by the contender itself, in chunks between timed
calls; keys an add created are removed untimed afterwards, so the table keeps
its size. Every contender gets the same keys in the same order.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .contenders import Contender

BATCH = 100
COUNTERS = 100


def key_name(i: int) -> str:
    return f"key:{i:07d}"


def make_value(i: int) -> dict[str, Any]:
    """A small record, about 130 bytes pickled: what caches mostly hold."""
    return {
        "id": i,
        "name": f"user {i:07d}",
        "email": f"user{i}@example.com",
        "roles": ["reader", "writer"],
        "active": True,
    }


class Workload:
    """The keys of the table and the order in which operations visit them."""

    def __init__(self, keys: int, seed: int = 2024) -> None:
        self.size = keys
        self.keys = [key_name(i) for i in range(keys)]
        rng = random.Random(seed)
        self.order = list(range(keys))
        rng.shuffle(self.order)

    def initial(self) -> dict[str, Any]:
        data: dict[str, Any] = {key: make_value(i) for i, key in enumerate(self.keys)}
        data.update({f"counter:{j}": 0 for j in range(COUNTERS)})
        return data

    def existing(self, i: int) -> str:
        return self.keys[self.order[i % self.size]]

    def existing_batch(self, i: int) -> list[str]:
        start = (i * BATCH) % self.size
        picked = [self.keys[self.order[(start + j) % self.size]] for j in range(BATCH)]
        return list(dict.fromkeys(picked))


@dataclass(frozen=True)
class Op:
    """An operation: what it calls, with what, and what it needs around it.

    ``args(workload, tag, i)`` gives the arguments of call ``i``; ``tag`` is
    unique per round and warm-up, so keys that calls create never collide.
    ``before`` gives what must exist before the call, ``after`` the keys to
    remove after it (both untimed).
    """

    name: str
    label: str
    method: str
    batch: bool
    args: Callable[[Workload, str, int], tuple[Any, ...]]
    before: Callable[[tuple[Any, ...]], dict[str, Any]] | None = None
    after: Callable[[tuple[Any, ...]], list[str]] | None = None


def _one(args: tuple[Any, ...]) -> dict[str, Any]:
    return {args[0]: make_value(0)}


def _all(args: tuple[Any, ...]) -> dict[str, Any]:
    return {key: make_value(0) for key in args[0]}


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("get_hit", "get (hit)", "get", False, lambda w, t, i: (w.existing(i),)),
        Op("get_miss", "get (miss)", "get", False, lambda w, t, i: (f"miss:{t}:{i}",)),
        Op(
            "set",
            "set (overwrite)",
            "set",
            False,
            lambda w, t, i: (w.existing(i), make_value(i)),
        ),
        Op(
            "add",
            "add",
            "add",
            False,
            lambda w, t, i: (f"add:{t}:{i}", make_value(i)),
            after=lambda a: [a[0]],
        ),
        Op("delete", "delete", "delete", False, lambda w, t, i: (f"del:{t}:{i}",), before=_one),
        Op("incr", "incr", "incr", False, lambda w, t, i: (f"counter:{i % COUNTERS}",)),
        Op("pop", "pop", "pop", False, lambda w, t, i: (f"pop:{t}:{i}",), before=_one),
        Op(
            "get_many",
            f"get_many({BATCH})",
            "get_many",
            True,
            lambda w, t, i: (w.existing_batch(i),),
        ),
        Op(
            "set_many",
            f"set_many({BATCH})",
            "set_many",
            True,
            lambda w, t, i: ({key: make_value(i) for key in w.existing_batch(i)},),
        ),
        Op(
            "delete_many",
            f"delete_many({BATCH})",
            "delete_many",
            True,
            lambda w, t, i: ([f"dm:{t}:{i}:{j}" for j in range(BATCH)],),
            before=_all,
        ),
    )
}


@dataclass
class Plan:
    """How many calls to time, per operation, contender and round."""

    iterations: int  # single-key operations
    batch_iterations: int  # batch operations
    warmup: int
    batch_warmup: int
    budget_s: float  # stop a timed batch after this long, once it has min_samples
    min_samples: int = 5
    chunk: int = 10  # calls prepared and timed together, between untimed steps

    def calls(self, op: Op) -> int:
        return self.batch_iterations if op.batch else self.iterations

    def warmups(self, op: Op) -> int:
        return self.batch_warmup if op.batch else self.warmup


def measure(
    op: Op, contender: Contender, workload: Workload, tag: str, plan: Plan, offset: int = 0
) -> list[int]:
    """Time the calls of ``op`` on ``contender``; nanoseconds per call.

    ``offset`` shifts which existing keys the round visits, so that rounds do
    not all read the same few rows.
    """
    fn: Callable[..., Any] = getattr(contender, op.method)
    chunk = 1 if op.batch else plan.chunk
    calls = plan.calls(op)
    # Warm up on other keys than the timed calls will visit.
    _run(op, contender, fn, workload, f"w{tag}", offset + calls, plan.warmups(op), chunk, None, 0)
    return _run(
        op, contender, fn, workload, tag, offset, calls, chunk, plan.budget_s, plan.min_samples
    )


def _run(
    op: Op,
    contender: Contender,
    fn: Callable[..., Any],
    workload: Workload,
    tag: str,
    offset: int,
    calls: int,
    chunk: int,
    budget_s: float | None,
    min_samples: int,
) -> list[int]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = None if budget_s is None else clock() + int(budget_s * 1e9)
    i = 0
    while i < calls:
        batch = [op.args(workload, tag, offset + j) for j in range(i, min(calls, i + chunk))]
        i += len(batch)
        if op.before is not None:
            needed: dict[str, Any] = {}
            for args in batch:
                needed.update(op.before(args))
            contender.fill(needed)
        gc.disable()
        try:
            for args in batch:
                start = clock()
                fn(*args)
                samples.append(clock() - start)
        finally:
            gc.enable()
        if op.after is not None:
            contender.purge([key for args in batch for key in op.after(args)])
        if deadline is not None and len(samples) >= min_samples and clock() > deadline:
            break
    return samples
