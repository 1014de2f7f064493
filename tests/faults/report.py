"""Render the fault suite's JSON report as the Markdown table of ``docs/reliability.md``.

PORTSIDE_FAULT_REPORT=fault-report.json python -m pytest tests/faults
python -m tests.faults.report fault-report.json
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any


def _merge(records: list[dict[str, Any]]) -> dict[str, Any]:
    faults: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    recovery: float | None = None
    for record in records:
        faults.update(record["faults"])
        failures.update(record["failures"])
        if record["recovery_seconds"] is not None:
            recovery = max(recovery or 0.0, record["recovery_seconds"])
    return {
        "tests": len(records),
        "threads": max(r["threads"] for r in records),
        "operations": sum(r["operations"] for r in records),
        "faults": faults,
        "failures": failures,
        "recovery": recovery,
        "lost": sum(r["data_lost"] for r in records),
        "seconds": sum(r["seconds"] for r in records),
        "notes": "; ".join(sorted({r["notes"] for r in records if r["notes"]})),
    }


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name}: {n}" for name, n in counter.most_common()) or "none"


def render(report: dict[str, Any]) -> str:
    """The Markdown table, one row per campaign, in the order the campaigns ran."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in report["campaigns"]:
        groups[record["campaign"]].append(record)
    lines = [
        "| Campaign | Load (operations, threads) | Faults injected | Failures observed "
        "| Worst recovery | Data lost | Time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, records in groups.items():
        row = _merge(records)
        recovery = "n/a" if row["recovery"] is None else f"{row['recovery'] * 1000:.1f} ms"
        lines.append(
            f"| {name} ({row['tests']} tests) | {row['operations']}, {row['threads']} "
            f"| {_counts(row['faults'])} | {_counts(row['failures'])} | {recovery} "
            f"| {row['lost']} | {row['seconds']:.1f} s |"
        )
    notes = [(name, _merge(records)["notes"]) for name, records in groups.items()]
    lines.append("")
    lines += [f"- *{name}*: {text}" for name, text in notes if text]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Print the table for the report file named on the command line."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(render(json.loads(Path(argv[1]).read_text())), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
