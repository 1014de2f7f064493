"""Health checks for ``AsyncServices``: the rows of ``check_services``, awaited.

The probes, the statuses and the report's lifetime are ``_health``'s: a read of a cache
key nobody writes, a read of a queue's dead letters and its durability check, ``SELECT
1`` on an SQL database, the model list of a real LLM server. Only the awaiting differs;
the LLM probe (once per report, with a short timeout) runs the sync probe in a worker
thread rather than keeping a second HTTP client for it. A database held in memory is a
warning, as an in-memory queue is: it works, but nothing survives a restart.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable

import attrs
from returns.result import Failure

from portside.adapters.app._async_services import AsyncServices
from portside.adapters.app._health import (
    PROBE_GROUP,
    PROBE_KEY,
    PROBE_TOPIC,
    CheckRow,
    check_llm,
    down,
    is_stale,
    queue_status,
    status_of,
)

__all__ = ["NOT_DURABLE_DATABASE", "acheck_services"]

#: The database row's warning for a database that keeps its rows in the process.
NOT_DURABLE_DATABASE = "warning (in-memory database: rows do not survive a restart)"


async def _timed(check: Callable[[], Awaitable[str]]) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        status = await check()
    except Exception as exc:  # a check reports any failure as a status, never raises
        status = f"down ({type(exc).__name__})"
    return status, (time.perf_counter() - start) * 1000


async def _check_database(services: AsyncServices) -> str:
    from portside.adapters.memory import MemoryDatabase

    if isinstance(services.database, MemoryDatabase):
        return NOT_DURABLE_DATABASE
    engine = getattr(services.database, "engine", None)
    if engine is None:
        return "ok"  # a session factory without an engine: nothing to probe here
    from sqlalchemy import select

    from portside.adapters.sqlalchemy import SQL_ERRORS, map_error

    try:
        async with engine.connect() as connection:
            await connection.execute(select(1))
    except SQL_ERRORS as exc:
        return down(map_error(exc, service="database", operation="check"))
    return "ok"


async def _check_cache(services: AsyncServices) -> str:
    return status_of(await services.cache.get(PROBE_KEY))


async def _check_queue(services: AsyncServices) -> str:
    answered = await services.queue.dead_letters(PROBE_TOPIC, PROBE_GROUP)
    if isinstance(answered, Failure):
        return status_of(answered)
    check = getattr(services.queue, "check_durability", None)
    return queue_status(answered, None if check is None else await check())


async def _check_llm(services: AsyncServices) -> str:
    adapter = services.adapters.get("llm", "")
    return await asyncio.to_thread(check_llm, services.settings, adapter)


async def _probe(services: AsyncServices) -> list[CheckRow]:
    checks = [
        ("database", _check_database),
        ("cache", _check_cache),
        ("queue", _check_queue),
        ("llm", _check_llm),
    ]
    rows = []
    for name, check in checks:
        status, latency = await _timed(functools.partial(check, services))
        rows.append(CheckRow(name, services.adapters.get(name, "?"), status, latency))
    return rows


@attrs.define
class _Report:
    """The last report of one ``AsyncServices`` and the lock that lets one task probe."""

    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    rows: list[CheckRow] | None = None
    taken_at: float = 0.0


async def acheck_services(
    services: AsyncServices, *, max_age: float | None = None
) -> list[CheckRow]:
    """``check_services`` for ``AsyncServices``: a row per service; never raises.

    A report younger than ``max_age`` seconds (default ``PORTSIDE_HEALTH_INTERVAL``) is
    returned again; while one task probes, the others await its report.
    """
    age_limit = services.settings.tuning.health_interval if max_age is None else max_age
    report: _Report | None = services.health_report
    if report is None:
        report = services.health_report = _Report()
    async with report.lock:
        if is_stale(report.rows, report.taken_at, services.clock.monotonic(), age_limit):
            report.rows = await _probe(services)
            report.taken_at = services.clock.monotonic()
        assert report.rows is not None
        return list(report.rows)
