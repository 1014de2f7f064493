"""``python -m benchmarks [--quick] [--json] [--markdown] [NAME...]``."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

from benchmarks._harness import CasesFactory, Result, run_all


def _factories(names: list[str]) -> list[CasesFactory]:
    found: list[CasesFactory] = []
    here = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        rows: tuple[str, ...] = module.NAMES
        if names and not any(r.startswith(n) for r in rows for n in names):
            continue
        found.append(module.cases)
    return found


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _goal(r: Result) -> str:
    return f">= {_fmt(r.goal)} {r.unit}" if not r.has_baseline else f">= {r.goal:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("names", nargs="*", help="run rows whose name starts with NAME")
    args = parser.parse_args(argv)

    skipped: list[str] = []
    results: list[Result] = []
    header = f"{'name':<24} {'ours':>14} {'baseline':>14} {'unit':<12} {'ratio':>7}  goal"
    if not (args.json or args.markdown):
        print(header)
    for result in run_all(_factories(args.names), args.names, quick=args.quick, skipped=skipped):
        results.append(result)
        if not (args.json or args.markdown):
            mark = "" if result.met else "  (goal not met)"
            print(
                f"{result.name:<24} {_fmt(result.ours):>14} {_fmt(result.baseline):>14} "
                f"{result.unit:<12} {result.ratio:>7.2f}  {_goal(result)}{mark}",
                flush=True,
            )
    if args.json:
        rows = [
            {
                "name": r.name,
                "ours": r.ours,
                "baseline": r.baseline,
                "unit": r.unit,
                "ratio": round(r.ratio, 4),
                "goal": r.goal,
            }
            for r in results
        ]
        print(json.dumps({"benchmarks": rows, "skipped": skipped}, indent=2))
    elif args.markdown:
        print("| name | ours | baseline | unit | ratio | goal | met | note |")
        print("|---|---:|---:|---|---:|---|---|---|")
        for r in results:
            print(
                f"| {r.name} | {_fmt(r.ours)} | {_fmt(r.baseline)} | {r.unit} | "
                f"{r.ratio:.2f} | {_goal(r)} | {'yes' if r.met else 'no'} | {r.note} |"
            )
    for reason in skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
