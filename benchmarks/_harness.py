"""The benchmark harness every benchmark module plugs into.

A module ``benchmarks/bench_<topic>.py`` defines ``NAMES`` (the rows it can produce)
and ``cases(quick)``, a context manager yielding a list of ``Case``. The harness
times ``ours`` and ``baseline`` alternately, round after round, in the same process,
and reports medians. ``ratio = ours / baseline`` in throughput, so higher is better.
A case without a baseline is compared with its goal (ratio >= 1 means the goal is met).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import attrs

__all__ = ["Case", "Result", "SkipBenchmark", "measure"]


class SkipBenchmark(Exception):
    """Raised by ``cases()`` when a benchmark cannot run here (a server is down)."""


@attrs.frozen
class Case:
    """One row: ``ours`` and ``baseline`` each perform ``ops`` operations per call."""

    name: str
    ours: Callable[[], object]
    baseline: Callable[[], object] | None
    goal: float
    unit: str = "ops/s"
    ops: int = 1
    note: str = ""


@attrs.frozen
class Result:
    """A measured row."""

    name: str
    ours: float
    baseline: float
    unit: str
    ratio: float
    goal: float
    note: str = ""
    has_baseline: bool = True

    @property
    def met(self) -> bool:
        """Whether the goal is met."""
        return self.ratio >= self.goal if self.has_baseline else self.ratio >= 1.0


CasesFactory = Callable[[bool], AbstractContextManager[list[Case]]]


def _rate(fn: Callable[[], object], calls: int, ops: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - start
    return calls * ops / elapsed if elapsed > 0 else float("inf")


def _calibrate(fn: Callable[[], object], target: float) -> int:
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= target / 4 or calls >= 1 << 22:
            return max(1, int(calls * target / max(elapsed, 1e-9)))
        calls *= 4


def measure(case: Case, *, quick: bool) -> Result:
    """Median throughput of ``ours`` and ``baseline``, interleaved round by round."""
    target = 0.04 if quick else 0.2
    rounds = 5 if quick else 15
    fns = [case.ours] + ([case.baseline] if case.baseline is not None else [])
    for fn in fns:  # warm up connections, caches and code paths
        fn()
    calls = [_calibrate(fn, target) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    # What is alive before the row starts (every other row's fixtures, clients and
    # data) is frozen out of the collector's scans: otherwise a row pays for the heap
    # the rows before it left, and its ratio depended on its place in the run (the
    # 1,000-entity commit measured 0.96 first in a process, 0.67 after another row).
    # Garbage the row itself makes is still collected, on both sides alike.
    gc.collect()
    gc.freeze()
    try:
        for r in range(rounds):
            # alternate who goes first so drift on a noisy machine hits both sides alike
            order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
            for i in order:
                samples[i].append(_rate(fns[i], calls[i], case.ops))
    finally:
        gc.unfreeze()
    ours = statistics.median(samples[0])
    if case.baseline is None:
        return Result(
            case.name,
            ours,
            case.goal,
            case.unit,
            ours / case.goal,
            case.goal,
            case.note,
            has_baseline=False,
        )
    baseline = statistics.median(samples[1])
    return Result(case.name, ours, baseline, case.unit, ours / baseline, case.goal, case.note)


def run_all(
    factories: list[CasesFactory], names: list[str], *, quick: bool, skipped: list[str]
) -> Iterator[Result]:
    """Measure every case whose name starts with one of ``names`` (all when empty)."""
    for factory in factories:
        try:
            with factory(quick) as cases:
                for case in cases:
                    if names and not any(case.name.startswith(n) for n in names):
                        continue
                    yield measure(case, quick=quick)
        except SkipBenchmark as exc:
            skipped.append(str(exc))
