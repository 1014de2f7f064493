"""Rows ``import_*``: importing one adapter in a fresh interpreter vs its raw client.

Each call starts a new interpreter that imports one adapter from its facade (``ours``)
or the SDK it wraps (``baseline``), so nothing is cached between calls; interpreter
start-up is in both. Peak memory (the child's high-water resident set) is measured once
per side and shown in the note. Goal: at most 1.10x the raw client's import time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from benchmarks._harness import Case

NAMES = ("import_redis_cache", "import_redis_queue", "import_openai", "import_sqlalchemy")

#: (row, what portside's user writes, what the raw client's user writes).
_IMPORTS = (
    ("import_redis_cache", "from portside.adapters.redis import RedisCache", "import redis"),
    ("import_redis_queue", "from portside.adapters.redis import RedisQueue", "import redis"),
    ("import_openai", "from portside.adapters.openai import OpenAILLM", "import openai"),
    (
        "import_sqlalchemy",
        "from portside.adapters.sqlalchemy import Database",
        "import sqlalchemy.orm",
    ),
)
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the
# benchmark process the child was forked from.
_PEAK = (
    "print(next(line.split()[1] for line in open('/proc/self/status') "
    "if line.startswith('VmHWM:')))"
)


# An installed wheel is byte-compiled (pip does it), and so is the raw client here; the
# children may write portside's bytecode too (the warm-up call does), so both sides
# import compiled modules, whatever PYTHONDONTWRITEBYTECODE says in this shell.
_UNSET = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")


def _run(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def _peak_mb(statement: str) -> float:
    return int(_run(f"{statement}; {_PEAK}").strip()) / 1024


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    rows = []
    for name, ours, raw in _IMPORTS:
        _run(ours)  # writes the bytecode before anything is measured
        mine, theirs = _peak_mb(ours), _peak_mb(raw)
        rows.append(
            Case(
                name,
                partial(_run, ours),
                partial(_run, raw),
                goal=1 / 1.10,
                unit="imports/s",
                note=f"peak RSS {mine:.1f} MB vs {theirs:.1f} MB ({mine / theirs:.2f}x)",
            )
        )
    yield rows
