"""Fault-suite fixtures: throwaway servers, proxies, and the campaign report.

Every fault test records what it did (load, faults injected, failures by type, recovery
time, data lost) with the ``campaign`` fixture. When ``PORTSIDE_FAULT_REPORT`` names a
file, the records of the run are written there as JSON at the end of the session; that
file is what ``docs/reliability.md`` reports.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from portside.adapters.testing import FaultToolError, ThrowawayRedis, throwaway_redis

REPORT_ENV = "PORTSIDE_FAULT_REPORT"
_RECORDS: list[dict[str, Any]] = []


@attrs.define
class Campaign:
    """What one fault or bad-input campaign held, injected and observed."""

    name: str
    threads: int = 1
    operations: int = 0
    faults: list[str] = attrs.field(factory=list)
    failures: Counter[str] = attrs.field(factory=Counter)
    recovery_seconds: float | None = None
    data_lost: int = 0
    notes: str = ""
    #: Seconds the campaign took, when it ran before this record was made.
    elapsed: float | None = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def count(self, operations: int = 1, failure: str | None = None) -> None:
        """Count operations done and, when one failed, its error kind."""
        with self._lock:
            self.operations += operations
            if failure is not None:
                self.failures[failure] += 1

    def fault(self, what: str) -> None:
        """Note a fault injected."""
        with self._lock:
            self.faults.append(what)

    def recovered(self, seconds: float) -> None:
        """Keep the worst recovery time seen."""
        with self._lock:
            worst = self.recovery_seconds or 0.0
            self.recovery_seconds = max(worst, seconds)

    def as_json(self, test: str, seconds: float) -> dict[str, Any]:
        """The record written to the report."""
        return {
            "campaign": self.name,
            "test": test,
            "threads": self.threads,
            "operations": self.operations,
            "faults": Counter(self.faults),
            "failures": dict(self.failures),
            "recovery_seconds": self.recovery_seconds,
            "data_lost": self.data_lost,
            "notes": self.notes,
            "seconds": round(self.elapsed if self.elapsed is not None else seconds, 2),
        }


@pytest.fixture(name="campaign")
def _campaign(request: pytest.FixtureRequest) -> Iterator[Campaign]:
    """A campaign record for this test, kept for the report."""
    record = Campaign(name=request.node.name)
    started = time.monotonic()
    yield record
    _RECORDS.append(record.as_json(request.node.nodeid, time.monotonic() - started))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the campaign records when ``PORTSIDE_FAULT_REPORT`` asks for them."""
    target = os.environ.get(REPORT_ENV)
    if not target or not _RECORDS:
        return
    report = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "campaigns": _RECORDS,
    }
    Path(target).write_text(json.dumps(report, indent=2, default=str) + "\n")


@pytest.fixture(name="redis_server")
def _redis_server() -> Iterator[ThrowawayRedis]:
    """A throwaway redis-server of this test's own (nothing persisted), killed at the end."""
    yield from _start(durable=False)


@pytest.fixture(name="durable_redis_server")
def _durable_redis_server() -> Iterator[ThrowawayRedis]:
    """A throwaway redis-server with an fsync-always append-only file, killed at the end."""
    yield from _start(durable=True)


def _start(*, durable: bool) -> Iterator[ThrowawayRedis]:
    servers = throwaway_redis(durable=durable)
    try:
        server = servers.__enter__()
    except FaultToolError as exc:
        pytest.skip(f"cannot start a throwaway redis-server: {exc}")
    try:
        yield server
    finally:
        servers.__exit__(None, None, None)
