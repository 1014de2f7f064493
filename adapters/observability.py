"""Logs, counters and (when installed) OpenTelemetry for every port, with the same fields.

- Logging is stdlib ``logging`` under ``portside.*``. Every record about a call carries
  the same ``extra=`` fields: ``service``, ``operation``, ``outcome`` (``ok``, an
  error kind such as ``TimedOut``, or ``exception``), ``duration`` (seconds) and
  ``attempt``. Messages and string fields pass through ``redact`` first.
- ``Metrics`` holds thread-safe counters (calls by outcome, cache hits and misses,
  tokens saved), gauges (the outbox relay's lag) and the breakers to report on;
  ``snapshot()`` is what a services object exposes.
- ``instrument(port, service=...)`` wraps any port so each call is timed, logged,
  counted and, when ``opentelemetry-api`` is importable, traced as a span and
  recorded in OpenTelemetry metrics. Without it nothing OpenTelemetry-related runs.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Final, TypeVar, cast

import attrs
from returns.result import Failure, Success

from portside.adapters._introspect import returns_iterator
from portside.adapters.clock import SystemClock
from portside.adapters.resilience._breaker import CircuitBreaker
from portside.domain._errors import ServiceError
from portside.domain._llm import Usage
from portside.ports._clock import Clock

__all__ = [
    "Metrics",
    "default_metrics",
    "instrument",
    "log_call",
    "outcome_of",
    "redact",
    "retry_logger",
    "watch_breaker",
]

P = TypeVar("P")

_SECRET_PATTERNS: Final = (
    # URL credentials: scheme://user:password@host
    (
        re.compile(r"(?P<pre>[a-zA-Z][\w+.-]*://[^/\s:@]*:)[^@\s/]+(?P<post>@)"),
        r"\g<pre>***\g<post>",
    ),
    # OpenAI-style and similar API keys
    (re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_-]{8,}"), r"\1-***"),
    # Authorization headers and key=value secrets
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (
        re.compile(r"(?i)\b(api[_-]?key|password|passwd|secret|token)(\s*[=:]\s*)[^\s,;&]+"),
        r"\1\2***",
    ),
)


def redact(text: str) -> str:
    """``text`` with passwords in URLs, API keys, bearer tokens and ``key=secret`` hidden."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def outcome_of(result: object) -> str:
    """``ok`` for a ``Success``, the error kind for a ``Failure``, ``ok`` otherwise."""
    if isinstance(result, Failure):
        error = result.failure()
        return error.kind if isinstance(error, ServiceError) else type(error).__name__
    return "ok"


def log_call(
    logger: logging.Logger,
    *,
    service: str,
    operation: str,
    outcome: str,
    duration: float,
    attempt: int = 1,
    message: str = "",
    level: int | None = None,
    **fields: object,
) -> None:
    """Log one call with the standard fields; failures at WARNING, successes at DEBUG.

    ``fields`` are added to ``extra=``; string values are redacted like the message.
    """
    if level is None:
        level = logging.DEBUG if outcome == "ok" else logging.WARNING
    if not logger.isEnabledFor(level):
        return
    extra: dict[str, object] = {
        "service": service,
        "operation": operation,
        "outcome": outcome,
        "duration": duration,
        "attempt": attempt,
    }
    for key, value in fields.items():
        extra[key] = redact(value) if isinstance(value, str) else value
    text = f"{service}.{operation} {outcome} in {duration * 1000:.1f} ms"
    if attempt > 1:
        text += f" (attempt {attempt})"
    if message:
        text += f": {redact(message)}"
    logger.log(level, text, extra=extra)


@attrs.define
class Metrics:
    """Thread-safe counters a services object can expose through ``snapshot()``."""

    _counts: Counter[str] = attrs.field(factory=Counter, init=False)
    _gauges: dict[str, float] = attrs.field(factory=dict, init=False)
    _breakers: dict[str, CircuitBreaker] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def incr(self, name: str, by: int = 1) -> None:
        """Add ``by`` to counter ``name``."""
        with self._lock:
            self._counts[name] += by

    def count(self, name: str) -> int:
        """The current value of counter ``name`` (0 when never touched)."""
        with self._lock:
            return self._counts[name]

    def gauge(self, name: str, value: float) -> None:
        """Set gauge ``name`` to ``value``; snapshots show the last value set."""
        with self._lock:
            self._gauges[name] = value

    def cache_hit(self, saved: Usage) -> None:
        """Count a cache hit and the tokens it saved."""
        with self._lock:
            self._counts["cache.hits"] += 1
            self._counts["cache.saved_input_tokens"] += saved.input_tokens
            self._counts["cache.saved_output_tokens"] += saved.output_tokens

    def cache_miss(self) -> None:
        """Count a cache miss."""
        self.incr("cache.misses")

    def add_breaker(self, breaker: CircuitBreaker) -> None:
        """Report ``breaker``'s live state under ``breaker.<name>`` in snapshots."""
        with self._lock:
            self._breakers[breaker.name or f"breaker{len(self._breakers)}"] = breaker

    def snapshot(self) -> dict[str, int | float | str]:
        """Every counter and gauge, plus ``breaker.<name>.state`` and ``.opened`` per breaker."""
        with self._lock:
            out: dict[str, int | float | str] = dict(sorted(self._counts.items()))
            out.update(sorted(self._gauges.items()))
            breakers = dict(self._breakers)
        for name, breaker in breakers.items():
            out[f"breaker.{name}.state"] = breaker.state
            out[f"breaker.{name}.opened"] = breaker.times_opened
        return out


_default_metrics: Final = Metrics()


def default_metrics() -> Metrics:
    """The process-wide ``Metrics`` used when none is passed explicitly."""
    return _default_metrics


def watch_breaker(
    breaker: CircuitBreaker,
    *,
    metrics: Metrics | None = None,
    logger: logging.Logger | None = None,
) -> CircuitBreaker:
    """Log every transition of ``breaker`` and report it in ``metrics``; returns it."""
    log = logger or logging.getLogger("portside.resilience")
    registry = metrics or _default_metrics
    registry.add_breaker(breaker)

    def on_change(b: CircuitBreaker, old: str, new: str) -> None:
        registry.incr(f"breaker.{b.name or 'breaker'}.to_{new}")
        log.log(
            logging.WARNING if new == "open" else logging.INFO,
            "circuit breaker %s: %s -> %s",
            b.name or "breaker",
            old,
            new,
            extra={
                "service": b.name or "breaker",
                "operation": "breaker",
                "outcome": new,
                "duration": 0.0,
                "attempt": 1,
            },
        )

    breaker.subscribe(on_change)
    return breaker


def retry_logger(
    service: str, operation: str, logger: logging.Logger | None = None
) -> Callable[[int, ServiceError, float], None]:
    """An ``on_retry`` callback for ``RetryPolicy.call`` that logs each retry."""
    log = logger or logging.getLogger("portside.resilience")

    def on_retry(attempt: int, error: ServiceError, delay: float) -> None:
        log_call(
            log,
            service=service,
            operation=operation,
            outcome=error.kind,
            duration=0.0,
            attempt=attempt,
            message=f"retrying in {delay:.3f} s: {error}",
            level=logging.INFO,
            retry_in=delay,
        )

    return on_retry


def _otel() -> tuple[Any, Any] | None:
    """``(trace, metrics)`` modules of opentelemetry-api, or ``None`` when absent."""
    try:
        return (
            importlib.import_module("opentelemetry.trace"),
            importlib.import_module("opentelemetry.metrics"),
        )
    except ImportError:
        return None


@attrs.define
class _Telemetry:
    """OpenTelemetry tracer and instruments, or nothing."""

    tracer: Any = None
    calls: Any = None
    durations: Any = None

    @classmethod
    def create(cls, tracer: Any = None, meter: Any = None) -> _Telemetry:
        modules = _otel() if tracer is None or meter is None else None
        if modules is not None:
            tracer = tracer or modules[0].get_tracer("portside")
            meter = meter or modules[1].get_meter("portside")
        if meter is None:
            return cls(tracer)
        return cls(
            tracer,
            meter.create_counter("portside.calls", description="Port calls by outcome"),
            meter.create_histogram("portside.duration", unit="s", description="Port call time"),
        )


class _Instrumented:
    """A proxy that times, logs, counts and traces every public method of ``port``."""

    def __init__(
        self,
        port: object,
        service: str,
        metrics: Metrics,
        logger: logging.Logger,
        telemetry: _Telemetry,
        clock: Clock,
    ) -> None:
        self._port = port
        self._service = service
        self._metrics = metrics
        self._logger = logger
        self._telemetry = telemetry
        self._clock = clock

    def __repr__(self) -> str:
        return f"instrument({self._port!r}, service={self._service!r})"

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._port, name)
        if name.startswith("_") or not callable(target) or name == "close":
            return target
        wrapped = (
            self._wrap_stream(name, target)
            if returns_iterator(target)
            else self._wrap_call(name, target)
        )
        self.__dict__[name] = wrapped
        return wrapped

    def _finish(self, operation: str, outcome: str, started: float, span: Any) -> None:
        duration = self._clock.monotonic() - started
        self._metrics.incr(f"calls.{self._service}.{operation}.{outcome}")
        log_call(
            self._logger,
            service=self._service,
            operation=operation,
            outcome=outcome,
            duration=duration,
        )
        attributes = {"service": self._service, "operation": operation, "outcome": outcome}
        if self._telemetry.calls is not None:
            self._telemetry.calls.add(1, attributes)
            self._telemetry.durations.record(duration, attributes)
        if span is not None:
            span.set_attribute("portside.outcome", outcome)
            span.end()

    def _span(self, operation: str) -> Any:
        if self._telemetry.tracer is None:
            return None
        return self._telemetry.tracer.start_span(
            f"{self._service}.{operation}",
            attributes={"portside.service": self._service, "portside.operation": operation},
        )

    def _wrap_call(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def instrumented(*args: Any, **kwargs: Any) -> Any:
            span = self._span(name)
            started = self._clock.monotonic()
            outcome = "exception"
            try:
                result = method(*args, **kwargs)
                outcome = outcome_of(result)
                return result
            finally:
                self._finish(name, outcome, started, span)

        return instrumented

    def _wrap_stream(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def instrumented(*args: Any, **kwargs: Any) -> Iterator[Any]:
            span = self._span(name)
            started = self._clock.monotonic()
            outcome = "abandoned"
            try:
                for item in method(*args, **kwargs):
                    if isinstance(item, Failure):
                        outcome = outcome_of(item)
                    elif isinstance(item, Success) and outcome == "abandoned":
                        finish = getattr(item.unwrap(), "finish_reason", None)
                        outcome = "ok" if finish is not None else outcome
                    yield item
            except Exception:
                outcome = "exception"
                raise
            finally:
                self._finish(name, outcome, started, span)

        return instrumented


def instrument(
    port: P,
    *,
    service: str,
    metrics: Metrics | None = None,
    logger: logging.Logger | None = None,
    tracer: Any = None,
    meter: Any = None,
    clock: Clock | None = None,
) -> P:
    """``port`` with every method call timed, logged under ``portside.<service>``, counted.

    Counters are ``calls.<service>.<operation>.<outcome>`` in ``metrics``. When
    ``opentelemetry-api`` is importable (or a ``tracer``/``meter`` is passed) each
    call is also a span named ``<service>.<operation>`` and is recorded in the
    ``portside.calls`` counter and ``portside.duration`` histogram. A stream's
    outcome is known when it ends; one the consumer stopped early is ``abandoned``.
    Results pass through unchanged: this decorator never alters what a port returns.
    """
    return cast(
        P,
        _Instrumented(
            port,
            service,
            metrics or _default_metrics,
            logger or logging.getLogger(f"portside.{service}"),
            _Telemetry.create(tracer, meter),
            clock or SystemClock(),
        ),
    )
