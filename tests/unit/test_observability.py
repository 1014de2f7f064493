"""Observability: the same log fields everywhere, redaction, counters, optional OpenTelemetry."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from returns.result import Failure, Result, Success

from portside.adapters import observability
from portside.adapters.memory import ManualClock
from portside.adapters.observability import (
    Metrics,
    instrument,
    log_call,
    redact,
    retry_logger,
    watch_breaker,
)
from portside.adapters.resilience import CircuitBreaker
from portside.domain import ServiceError, TimedOut, Usage

FIELDS = ("service", "operation", "outcome", "duration", "attempt")


class _Port:
    """Answers after advancing the clock, so durations are deterministic."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.answer: Result[str, ServiceError] = Success("v")

    def get(self, key: str) -> Result[str, ServiceError]:
        """Takes 0.25 s on the manual clock."""
        self.clock.advance(0.25)
        return self.answer

    def stream(self, key: str) -> Iterator[Result[str, ServiceError]]:
        """Yields two parts then the scripted answer."""
        yield Success("a")
        yield Success("b")
        yield self.answer

    def boom(self) -> Result[str, ServiceError]:
        """A programming error inside the port."""
        raise RuntimeError("bug")


@pytest.mark.parametrize(
    "secret",
    [
        "redis://user:hunter2pass@host:6379/0",
        "sk-proj-abcdefghijkl1234",
        "Authorization: Bearer abcdefghijklmnop",
        "api_key=hunter2pass",
        "password: hunter2pass",
    ],
)
def test_redact_hides_secrets(secret: str) -> None:
    """Passwords in URLs, API keys, bearer tokens and key=value secrets never survive."""
    cleaned = redact(f"failed with {secret} here")
    assert "hunter2pass" not in cleaned
    assert "abcdefghijkl" not in cleaned
    assert "***" in cleaned
    assert cleaned.startswith("failed with ")


def test_redact_keeps_plain_text() -> None:
    """Text without secrets is unchanged."""
    text = "redis://127.0.0.1:6379/0 answered ProtocolError in 3 ms"
    assert redact(text) == text


def test_log_call_has_the_standard_fields(caplog: pytest.LogCaptureFixture) -> None:
    """Every call record carries service, operation, outcome, duration and attempt."""
    logger = logging.getLogger("portside.test")
    with caplog.at_level(logging.DEBUG, logger="portside.test"):
        log_call(
            logger,
            service="cache",
            operation="get",
            outcome="TimedOut",
            duration=0.5,
            attempt=2,
            message="from redis://u:hunter2pass@h",
            url="redis://u:hunter2pass@h",
        )
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert {f: getattr(record, f) for f in FIELDS} == {
        "service": "cache",
        "operation": "get",
        "outcome": "TimedOut",
        "duration": 0.5,
        "attempt": 2,
    }
    assert "hunter2pass" not in record.getMessage()
    assert "hunter2pass" not in record.url  # type: ignore[attr-defined]


def test_instrument_logs_counts_and_times_calls(
    manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An instrumented call is logged with its duration and counted by outcome."""
    metrics = Metrics()
    port = _Port(manual_clock)
    wrapped = instrument(port, service="cache", metrics=metrics, clock=manual_clock)
    with caplog.at_level(logging.DEBUG, logger="portside.cache"):
        assert wrapped.get("k") == Success("v")
        port.answer = Failure(TimedOut())
        assert isinstance(wrapped.get("k"), Failure)
    assert [r.outcome for r in caplog.records] == ["ok", "TimedOut"]  # type: ignore[attr-defined]
    assert [r.duration for r in caplog.records] == [0.25, 0.25]  # type: ignore[attr-defined]
    assert metrics.count("calls.cache.get.ok") == 1
    assert metrics.count("calls.cache.get.TimedOut") == 1


def test_instrument_stream_outcome_is_known_at_the_end(manual_clock: ManualClock) -> None:
    """A stream is counted once, with the outcome of its last item."""
    metrics = Metrics()
    port = _Port(manual_clock)
    port.answer = Failure(TimedOut())
    wrapped = instrument(port, service="llm", metrics=metrics, clock=manual_clock)
    items = list(wrapped.stream("k"))
    assert items[-1] == port.answer
    assert metrics.snapshot() == {"calls.llm.stream.TimedOut": 1}


def test_instrument_records_programming_errors(manual_clock: ManualClock) -> None:
    """An exception propagates unchanged and is counted as `exception`."""
    metrics = Metrics()
    wrapped = instrument(_Port(manual_clock), service="x", metrics=metrics, clock=manual_clock)
    with pytest.raises(RuntimeError, match="bug"):
        wrapped.boom()
    assert metrics.count("calls.x.boom.exception") == 1


class _Span:
    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = dict(attributes)
        self.ended = False

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def end(self) -> None:
        self.ended = True


class _Tracer:
    def __init__(self) -> None:
        self.spans: list[_Span] = []

    def start_span(self, name: str, attributes: dict[str, Any]) -> _Span:
        span = _Span(name, attributes)
        self.spans.append(span)
        return span


class _Instrument:
    def __init__(self) -> None:
        self.points: list[tuple[float, dict[str, str]]] = []

    def add(self, value: float, attributes: dict[str, str]) -> None:
        self.points.append((value, attributes))

    record = add


class _Meter:
    def __init__(self) -> None:
        self.instruments: dict[str, _Instrument] = {}

    def create_counter(self, name: str, **_: Any) -> _Instrument:
        return self.instruments.setdefault(name, _Instrument())

    create_histogram = create_counter


def test_opentelemetry_spans_and_metrics(manual_clock: ManualClock) -> None:
    """With a tracer and meter, each call is an ended span plus a counter and histogram point."""
    tracer, meter = _Tracer(), _Meter()
    wrapped = instrument(
        _Port(manual_clock),
        service="cache",
        metrics=Metrics(),
        tracer=tracer,
        meter=meter,
        clock=manual_clock,
    )
    wrapped.get("k")
    (span,) = tracer.spans
    assert span.name == "cache.get"
    assert span.ended
    assert span.attributes["portside.outcome"] == "ok"
    attrs = {"service": "cache", "operation": "get", "outcome": "ok"}
    assert meter.instruments["portside.calls"].points == [(1, attrs)]
    assert meter.instruments["portside.duration"].points == [(0.25, attrs)]


def test_without_opentelemetry_nothing_is_traced(
    manual_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When opentelemetry-api cannot be imported, calls still work and are still counted."""
    monkeypatch.setattr(observability, "_otel", lambda: None)
    metrics = Metrics()
    wrapped = instrument(_Port(manual_clock), service="c", metrics=metrics, clock=manual_clock)
    assert wrapped.get("k") == Success("v")
    assert wrapped._telemetry.tracer is None  # type: ignore[attr-defined]
    assert metrics.count("calls.c.get.ok") == 1


def test_real_opentelemetry_api_is_used_when_installed(manual_clock: ManualClock) -> None:
    """With opentelemetry-api importable the default no-op tracer is used without error."""
    pytest.importorskip("opentelemetry.trace")
    wrapped = instrument(_Port(manual_clock), service="c", metrics=Metrics(), clock=manual_clock)
    assert wrapped._telemetry.tracer is not None  # type: ignore[attr-defined]
    assert wrapped.get("k") == Success("v")


def test_metrics_snapshot_reports_cache_and_breakers(manual_clock: ManualClock) -> None:
    """Cache hits, misses, saved tokens and live breaker state appear in the snapshot."""
    metrics = Metrics()
    metrics.cache_hit(Usage(10, 5))
    metrics.cache_hit(Usage(1, 2))
    metrics.cache_miss()
    breaker = watch_breaker(
        CircuitBreaker(manual_clock, failure_threshold=1, name="redis"), metrics=metrics
    )
    breaker.record_failure()
    snap = metrics.snapshot()
    assert snap["cache.hits"] == 2
    assert snap["cache.misses"] == 1
    assert snap["cache.saved_input_tokens"] == 11
    assert snap["cache.saved_output_tokens"] == 7
    assert snap["breaker.redis.state"] == "open"
    assert snap["breaker.redis.opened"] == 1
    assert snap["breaker.redis.to_open"] == 1


def test_breaker_transitions_are_logged(
    manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening a watched breaker logs a warning under portside.resilience."""
    breaker = watch_breaker(
        CircuitBreaker(manual_clock, failure_threshold=1, name="redis"), metrics=Metrics()
    )
    with caplog.at_level(logging.INFO, logger="portside.resilience"):
        breaker.record_failure()
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.outcome == "open"  # type: ignore[attr-defined]
    assert "closed -> open" in record.getMessage()


def test_retry_logger_reports_attempt_and_delay(caplog: pytest.LogCaptureFixture) -> None:
    """Each retry is logged with its attempt number and the wait."""
    on_retry = retry_logger("llm", "complete")
    with caplog.at_level(logging.INFO, logger="portside.resilience"):
        on_retry(2, TimedOut(service="llm", operation="complete"), 0.4)
    (record,) = caplog.records
    assert record.attempt == 2  # type: ignore[attr-defined]
    assert record.retry_in == 0.4  # type: ignore[attr-defined]
    assert record.outcome == "TimedOut"  # type: ignore[attr-defined]
