"""Health checks: whether each service the application needs is reachable and serving.

One row per service (database, cache, queue, LLM, outbox). Each check is a cheap probe
that changes nothing: ``SELECT 1``, a cache read of a key nobody writes, a read of a
queue's dead letters, for an OpenAI-compatible server the model list, which generates
nothing and costs nothing but still proves the key is accepted (a refused key is
``down (Unauthorized ...)``), and the age of the oldest undelivered outbox message (a
warning above ``PORTSIDE_OUTBOX_LAG_WARNING`` seconds, down when it cannot be read).
A Redis cache or queue row also names the deployment behind it (``server: 1 primary,
0 replicas`` or ``cluster: 3 primaries, 3 replicas, 16384/16384 slots``), read fresh;
a cluster with hash slots no primary serves is a warning.
A report is kept for ``PORTSIDE_HEALTH_INTERVAL`` seconds and concurrent callers share
one probe, so a busy ``/healthz`` does not hammer the servers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
from returns.result import Failure

from portside.adapters.app._clients import openai_client
from portside.adapters.app._services import Services
from portside.adapters.app._settings import Settings
from portside.domain._errors import NotFound, ServiceError

__all__ = [
    "NOT_DURABLE",
    "PROBE_GROUP",
    "PROBE_KEY",
    "PROBE_TOPIC",
    "CheckRow",
    "check_llm",
    "check_services",
    "down",
    "health_body",
    "is_stale",
    "queue_status",
    "status_of",
]

#: The longest an LLM probe may take: a health check must answer quickly.
LLM_PROBE_TIMEOUT = 5.0


@attrs.frozen
class CheckRow:
    """One line of ``portside check``.

    ``status`` is ``ok``, ``down (<Kind>: <why>)``, or ``warning (<why>)`` for a service
    that works but cannot keep a promise (a queue whose server can lose messages).
    """

    service: str
    adapter: str
    status: str
    latency_ms: float

    @property
    def ok(self) -> bool:
        """Whether the service answered (a warning is shown, but the service works)."""
        return self.status == "ok" or self.status.startswith("warning")


def down(error: ServiceError) -> str:
    """A ``down (<Kind>: <why>)`` status for ``error``."""
    return f"down ({type(error).__name__}: {error.message})"


def _timed(fn: Callable[[], str]) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        status = fn()
    except Exception as exc:  # a check reports any failure as a status, never raises
        status = f"down ({type(exc).__name__})"
    return status, (time.perf_counter() - start) * 1000


def status_of(result: Any) -> str:
    """``ok`` for a success, ``down (...)`` for a failure."""
    return down(result.failure()) if isinstance(result, Failure) else "ok"


def _check_database(services: Services) -> str:
    engine = getattr(services.database, "engine", None)
    if engine is None:
        return "ok"
    from sqlalchemy import select

    from portside.adapters.sqlalchemy import SQL_ERRORS, map_error

    try:
        with engine.connect() as connection:
            connection.execute(select(1))
    except SQL_ERRORS as exc:
        return down(map_error(exc, service="database", operation="check"))
    return "ok"


def check_llm(settings: Settings, adapter: str) -> str:
    """The LLM row's status: the model list of a real OpenAI-compatible server."""
    if not settings.real_llm or adapter.startswith(("fake", "Fake")):
        return "ok"
    from portside.adapters.openai._errors import SDK_ERRORS, map_error

    key = settings.openai_api_key()
    client = openai_client(settings, timeout=min(LLM_PROBE_TIMEOUT, settings.tuning.llm_timeout))
    try:
        client.models.list()
    except SDK_ERRORS as exc:
        error = map_error(exc, operation="check", now=time.time(), secret=key)
        if isinstance(error, NotFound):
            return "ok"  # it answered past authentication; not every server lists models
        return down(error)
    finally:
        client.close()
    return "ok"


#: The queue row's warning for a queue that keeps its messages in the process.
NOT_DURABLE = "warning (in-memory queue: messages do not survive a restart)"
#: What the queue's health probe reads (a dead-letter list nobody writes).
PROBE_TOPIC, PROBE_GROUP = "portside.check", "check"
#: What the cache's health probe reads (a key nobody writes).
PROBE_KEY = "portside-check"


def queue_status(answered: Any, durability: Any | None) -> str:
    """The queue row's status from the probe's answer and its durability check.

    ``durability`` is ``check_durability()``'s result, ``None`` for a queue without one
    (an in-memory queue: a warning, since its messages do not survive a restart).
    """
    status = status_of(answered)
    if status != "ok":
        return status
    if durability is None:
        return NOT_DURABLE
    if isinstance(durability, Failure):
        return down(durability.failure())
    report = durability.unwrap()
    return "ok" if report.durable else f"warning ({report.summary})"


def _check_queue(services: Services) -> str:
    """The queue answers, and whether its server keeps acknowledged messages."""
    answered = services.queue.dead_letters(PROBE_TOPIC, PROBE_GROUP)
    if isinstance(answered, Failure):
        return status_of(answered)
    check = getattr(services.queue, "check_durability", None)
    return queue_status(answered, None if check is None else check())


def _with_topology(service: object, check: Callable[[], str], adapter: list[str]) -> str:
    """``check()``, then the Redis topology behind ``service`` (when it runs on redis-py).

    The topology goes into the row's adapter column; uncovered slots make an ``ok`` a
    warning, and a topology that cannot be read is only noted (the check itself answered).
    A row already down is not probed again (its timeout is paid once).
    """
    status = check()
    client = getattr(service, "client", None)
    on_redis = type(service).__module__.startswith("portside.adapters.redis")
    if status.startswith("down") or client is None or not on_redis:
        return status
    import redis
    from redis.cluster import RedisCluster

    if not isinstance(client, redis.Redis | RedisCluster):
        return status  # an asyncio client: the sync check does not drive it
    from portside.adapters.redis._topology import redis_topology

    found = redis_topology(client)
    if isinstance(found, Failure):
        adapter.append(f"topology unknown ({type(found.failure()).__name__})")
        return status
    topology = found.unwrap()
    adapter.append(topology.summary)
    if status == "ok" and not topology.complete:
        return f"warning (hash slots without a primary: {topology.summary})"
    return status


def _outbox_table_missing(services: Services) -> bool:
    engine = getattr(services.database, "engine", None)
    if engine is None:
        return False
    from sqlalchemy import inspect

    from portside.adapters.sqlalchemy import SQL_ERRORS

    try:
        return not inspect(engine).has_table(services.entities.outbox.name)
    except SQL_ERRORS:
        return False  # the database is down: the lag's own error says so


def _check_outbox(services: Services, adapter: list[str]) -> str:
    """The relay's lag: ok, a warning above the threshold, down when it cannot be read."""
    loop = services.outbox
    mode = services.settings.tuning.outbox_relay
    adapter.append(f"relay {mode}")
    if loop is None:
        adapter.append("no engine")
        return "ok"
    lag = loop.record_lag()
    if isinstance(lag, Failure):
        if _outbox_table_missing(services):
            adapter.append("no table yet")  # an application that never publishes
            return "ok"
        return down(lag.failure())
    seconds, limit = lag.unwrap(), services.settings.tuning.outbox_lag_warning
    adapter.append(f"lag {seconds:.1f} s")
    if seconds > limit:
        idle = ", PORTSIDE_OUTBOX_RELAY=off" if mode == "off" else ""
        return f"warning (oldest undelivered message {seconds:.1f} s old, over {limit:g} s{idle})"
    return "ok"


def _probe(services: Services) -> list[CheckRow]:
    # What each check adds to its row's adapter column (the outbox's has nothing else).
    extra: dict[str, list[str]] = {name: [] for name in ("cache", "queue", "outbox")}
    checks: list[tuple[str, Callable[[], str]]] = [
        ("database", lambda: _check_database(services)),
        (
            "cache",
            lambda: _with_topology(
                services.cache, lambda: status_of(services.cache.get(PROBE_KEY)), extra["cache"]
            ),
        ),
        (
            "queue",
            lambda: _with_topology(services.queue, lambda: _check_queue(services), extra["queue"]),
        ),
        ("llm", lambda: check_llm(services.settings, services.adapters.get("llm", ""))),
        ("outbox", lambda: _check_outbox(services, extra["outbox"])),
    ]
    rows = []
    for name, check in checks:
        status, latency = _timed(check)
        named = [] if name == "outbox" else [services.adapters.get(name, "?")]
        adapter = ", ".join([*named, *extra.get(name, [])])
        rows.append(CheckRow(name, adapter, status, latency))
    return rows


@attrs.define
class _Report:
    """The last report of one ``Services`` and the lock that lets one caller probe."""

    lock: threading.Lock = attrs.field(factory=threading.Lock)
    rows: list[CheckRow] | None = None
    taken_at: float = 0.0


_reports_lock = threading.Lock()


def _report_of(services: Services) -> _Report:
    with _reports_lock:
        report: _Report | None = services.health_report
        if report is None:
            report = services.health_report = _Report()
        return report


def health_body(rows: list[CheckRow]) -> tuple[dict[str, Any], int]:
    """The JSON body and status code of a ``/healthz`` answer: 200 when all are ok, else 503."""
    healthy = all(row.ok for row in rows)
    body = {
        "status": "ok" if healthy else "degraded",
        "services": [
            {
                "service": r.service,
                "adapter": r.adapter,
                "status": r.status,
                "latency_ms": round(r.latency_ms, 2),
            }
            for r in rows
        ],
    }
    return body, 200 if healthy else 503


def is_stale(rows: object, taken_at: float, now: float, age_limit: float) -> bool:
    """Whether a report taken at ``taken_at`` must be probed again at ``now``."""
    return rows is None or age_limit <= 0 or now - taken_at >= age_limit


def check_services(services: Services, *, max_age: float | None = None) -> list[CheckRow]:
    """A row per service with its status and latency; never raises.

    A report younger than ``max_age`` seconds (default ``PORTSIDE_HEALTH_INTERVAL``,
    read on ``services.clock``) is returned again instead of probing; ``max_age=0``
    always probes. While one caller probes, the others wait for its report.
    """
    age_limit = services.settings.tuning.health_interval if max_age is None else max_age
    report = _report_of(services)
    with report.lock:
        if is_stale(report.rows, report.taken_at, services.clock.monotonic(), age_limit):
            report.rows = _probe(services)
            report.taken_at = services.clock.monotonic()
        assert report.rows is not None
        return list(report.rows)
