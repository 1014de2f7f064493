"""Health checks: is each configured service reachable, and how fast it answered."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

from portside.adapters.app._services import Services

__all__ = ["CheckRow", "check_services"]


@attrs.frozen
class CheckRow:
    """One line of ``portside check``."""

    service: str
    adapter: str
    status: str
    latency_ms: float

    @property
    def ok(self) -> bool:
        """Whether the service answered."""
        return self.status == "ok"


def _timed(fn: Callable[[], str]) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        status = fn()
    except Exception as exc:  # a check reports any failure as a status
        status = f"down ({type(exc).__name__})"
    return status, (time.perf_counter() - start) * 1000


def _status(result: Any) -> str:
    from returns.result import Failure

    if isinstance(result, Failure):
        error = result.failure()
        return f"down ({type(error).__name__}: {error.message})"
    return "ok"


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
        error = map_error(exc, service="database", operation="check")
        return f"down ({type(error).__name__}: {error.message})"
    return "ok"


def _check_llm(services: Services) -> str:
    settings = services.settings
    if not settings.real_llm or services.adapters.get("llm", "").startswith(("fake", "Fake")):
        return "ok"
    import openai

    conn = settings.connections
    client = openai.OpenAI(
        api_key=str(conn.openai_api_key) if conn.openai_api_key is not None else "not-set",
        base_url=conn.openai_base_url,
        timeout=5.0,
        max_retries=0,
    )
    try:
        client.models.list()
    except openai.APIStatusError:
        return "ok"  # the server answered; not every compatible server lists models
    except openai.APIError as exc:
        return f"down ({type(exc).__name__})"
    finally:
        client.close()
    return "ok"


def check_services(services: Services) -> list[CheckRow]:
    """Connect to each configured service and report status and latency."""
    checks: list[tuple[str, Callable[[], str]]] = [
        ("database", lambda: _check_database(services)),
        ("cache", lambda: _status(services.cache.get("portside-check"))),
        ("queue", lambda: _status(services.queue.dead_letters("portside.check", "check"))),
        ("llm", lambda: _check_llm(services)),
    ]
    rows = []
    for name, check in checks:
        status, latency = _timed(check)
        rows.append(CheckRow(name, services.adapters.get(name, "?"), status, latency))
    return rows
