"""Import cost as instructions: ``python -m benchmarks.import_instructions [ROW...]``.

The ``import_*`` rows time fresh interpreters, which a loaded machine makes swing by
±20 %. This counts the instructions the same fresh interpreters execute, under
valgrind's callgrind (repeatable to a fraction of a percent for the same binary and
inputs, whatever else the machine is doing), and prints portside's import beside the
raw client's, and beside the raw client with attrs and returns added (the value and
result libraries every portside module is built on): the floor no adapter can go
under. Needs ``valgrind`` on PATH; each count takes tens of seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from benchmarks.bench_imports import _IMPORTS

_COLLECTED = re.compile(r"Collected : (\d+)")
#: What every portside import loads before any adapter: the value and result libraries.
_FLOOR = "import attrs, returns.result"


def instructions(code: str) -> int:
    """The instructions a fresh interpreter executes to run ``code``."""
    # A fixed hash seed: set and dict layouts, and so the counts, repeat run to run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            code,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found = _COLLECTED.search(done.stderr)
    assert found is not None, done.stderr[-500:]
    return int(found.group(1))


def main() -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 1
    print("| row | portside | raw client | ratio | raw client + attrs + returns | ratio |")
    print("|---|---|---|---|---|---|")
    wanted = sys.argv[1:]  # row name prefixes; all rows when none is given
    for name, ours, raw in _IMPORTS:
        if wanted and not any(name.startswith(prefix) for prefix in wanted):
            continue
        instructions(ours)  # writes the bytecode before anything is counted
        mine, theirs = instructions(ours), instructions(raw)
        floor = instructions(f"{raw}; {_FLOOR}")
        print(
            f"| `{name}` | {mine / 1e6:,.0f} M | {theirs / 1e6:,.0f} M | {mine / theirs:.2f}x "
            f"| {floor / 1e6:,.0f} M | {floor / theirs:.2f}x |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
