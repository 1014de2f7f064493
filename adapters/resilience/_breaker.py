"""The circuit breaker, and ``with_breaker`` to put one around any port.

- ``CircuitBreaker`` counts consecutive failures on the injected ``Clock``: after
  ``failure_threshold`` of them it opens and callers stop paying a timeout on every
  call; after ``reset_timeout`` seconds it lets exactly one probe through (half-open),
  which closes it on success or opens it again on failure.
- ``with_breaker(port, breaker)`` wraps any port: while the breaker is open every
  ``Result``-returning method short-circuits to ``Failure(Unavailable)`` and a stream
  method yields that single failure.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, Literal, TypeVar, cast

import attrs
from returns.result import Failure, Result, Success

from portside.adapters._introspect import returns_iterator
from portside.domain._errors import ServiceError, TimedOut, Unavailable
from portside.ports._clock import Clock

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "Guarded",
    "StreamOutcome",
    "default_trips",
    "with_breaker",
]

T = TypeVar("T")
P = TypeVar("P")

#: The state of a circuit breaker.
BreakerState = Literal["closed", "open", "half_open"]
StateListener = Callable[["CircuitBreaker", str, str], None]


def default_trips(error: ServiceError) -> bool:
    """Whether ``error`` says the service itself is unhealthy (and should count).

    Only ``Unavailable`` and ``TimedOut`` trip a breaker: a ``NotFound`` or an
    ``InvalidRequest`` proves the service answered, so it counts as a success.
    """
    return isinstance(error, Unavailable | TimedOut)


@attrs.define
class CircuitBreaker:
    """Closed / open / half-open breaker on the injected clock. Thread-safe.

    ``allow()`` is asked before each call and ``record_success()`` /
    ``record_failure()`` after it. While open, ``allow()`` is ``False`` until
    ``reset_timeout`` seconds have passed; then exactly one caller is let through as a
    probe (half-open) and the others keep being refused until the probe reports.
    A probe that never reports is replaced by another after ``reset_timeout``.
    """

    clock: Clock
    failure_threshold: int = 5
    reset_timeout: float = 30.0
    name: str = ""
    _state: BreakerState = attrs.field(default="closed", init=False)
    _failures: int = attrs.field(default=0, init=False)
    _opened_at: float = attrs.field(default=0.0, init=False)
    _probe_at: float | None = attrs.field(default=None, init=False)
    _opened_count: int = attrs.field(default=0, init=False)
    _listeners: list[StateListener] = attrs.field(factory=list, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.reset_timeout < 0:
            raise ValueError("reset_timeout must not be negative")

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open``, or ``half_open`` once a probe would be let through."""
        with self._lock:
            if (
                self._state == "open"
                and self.clock.monotonic() - self._opened_at >= self.reset_timeout
            ):
                return "half_open"
            return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures recorded since the last success."""
        return self._failures

    @property
    def times_opened(self) -> int:
        """How many times the breaker has opened since it was created."""
        return self._opened_count

    def subscribe(self, listener: StateListener) -> None:
        """Call ``listener(breaker, old_state, new_state)`` on every transition.

        Listeners run outside the breaker's lock; an exception in one propagates to
        the caller that caused the transition (it is a programming error).
        """
        with self._lock:
            self._listeners.append(listener)

    def allow(self) -> bool:
        """Whether a call may go ahead now; ``False`` while open."""
        if self._is_closed():
            # Lock-free fast path for the common case: reading one attribute is atomic,
            # and a call racing a transition to open was already in flight anyway.
            return True
        with self._lock:
            if self._state == "closed":
                return True
            now = self.clock.monotonic()
            if self._state == "open":
                if now - self._opened_at < self.reset_timeout:
                    return False
                self._probe_at = now
                change = self._move("half_open")
            else:  # half_open: one probe at a time, unless the probe went silent
                if self._probe_at is not None and now - self._probe_at < self.reset_timeout:
                    return False
                self._probe_at = now
                change = None
        self._notify(change)
        return True

    def record_success(self) -> None:
        """A call went through; a half-open breaker closes."""
        if self._failures == 0 and self._is_closed():
            return  # nothing to reset: skip the lock on the hot path
        with self._lock:
            self._failures = 0
            # A success reported while open comes from a call started before the
            # breaker opened; it proves nothing about the service now.
            change = None
            if self._state == "half_open":
                self._probe_at = None
                change = self._move("closed")
        self._notify(change)

    def record_failure(self) -> None:
        """A call failed because the service is unhealthy; may open the breaker."""
        with self._lock:
            change = None
            if self._state == "half_open":
                change = self._open()
            elif self._state == "closed":
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    change = self._open()
        self._notify(change)

    def call(
        self,
        fn: Callable[[], Result[T, ServiceError]],
        *,
        operation: str = "call",
        trips: Callable[[ServiceError], bool] = default_trips,
    ) -> Result[T, ServiceError]:
        """``fn()`` guarded by the breaker: ``Failure(Unavailable)`` while open."""
        if not self.allow():
            return Failure(self.open_error(operation))
        result = fn()
        self.record(result, trips)
        return result

    async def acall(
        self,
        fn: Callable[[], Awaitable[Result[T, ServiceError]]],
        *,
        operation: str = "call",
        trips: Callable[[ServiceError], bool] = default_trips,
    ) -> Result[T, ServiceError]:
        """``await fn()`` guarded by the breaker: ``call`` for coroutines."""
        if not self.allow():
            return Failure(self.open_error(operation))
        result = await fn()
        self.record(result, trips)
        return result

    def record(
        self, result: Result[Any, ServiceError], trips: Callable[[ServiceError], bool]
    ) -> None:
        """Record ``result``: a failure that ``trips`` counts, anything else is a success."""
        if isinstance(result, Failure) and trips(result.failure()):
            self.record_failure()
        else:
            self.record_success()

    def open_error(self, operation: str) -> Unavailable:
        """The error a guarded call returns while the breaker is open."""
        return Unavailable(
            service=self.name or "breaker",
            operation=operation,
            message="circuit breaker is open; not calling the service",
        )

    def _is_closed(self) -> bool:
        # A method, not an inline test, so the type checker does not carry the
        # narrowing of ``_state`` into the locked section that reads it again.
        return self._state == "closed"

    def _open(self) -> tuple[str, str] | None:
        self._opened_at = self.clock.monotonic()
        self._probe_at = None
        self._opened_count += 1
        return self._move("open")

    def _move(self, new: BreakerState) -> tuple[str, str] | None:
        old, self._state = self._state, new
        if new == "closed":
            self._failures = 0
        return (old, new) if old != new else None

    def _notify(self, change: tuple[str, str] | None) -> None:
        if change is None or not self._listeners:
            return
        for listener in tuple(self._listeners):
            listener(self, change[0], change[1])


# Methods that release resources or describe the port; never guarded.
_UNGUARDED: Final = frozenset({"close", "aclose", "namespace", "identity"})


class Guarded:
    """A proxy that routes every public method of ``port`` through ``breaker``."""

    def __init__(
        self, port: object, breaker: CircuitBreaker, trips: Callable[[ServiceError], bool]
    ) -> None:
        self._port = port
        self._breaker = breaker
        self._trips = trips

    def __repr__(self) -> str:
        return f"with_breaker({self._port!r}, {self._breaker.name or 'breaker'!r})"

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker guarding the port."""
        return self._breaker

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._port, name)
        if name.startswith("_") or name in _UNGUARDED or not callable(target):
            return target
        wrapped = (
            self._guard_stream(name, target)
            if self._is_stream(target)
            else self._guard_call(name, target)
        )
        # Cache on the instance so __getattr__ runs once per method name.
        self.__dict__[name] = wrapped
        return wrapped

    def _is_stream(self, method: Callable[..., Any]) -> bool:
        return returns_iterator(method)

    def _guard_call(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        breaker, trips = self._breaker, self._trips

        @functools.wraps(method)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not breaker.allow():
                return Failure(breaker.open_error(name))
            result = method(*args, **kwargs)
            if isinstance(result, Success | Failure):
                breaker.record(result, trips)
            return result

        return guarded

    def _guard_stream(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        breaker, trips = self._breaker, self._trips

        @functools.wraps(method)
        def guarded(*args: Any, **kwargs: Any) -> Iterator[Any]:
            if not breaker.allow():
                yield Failure(breaker.open_error(name))
                return
            outcome = StreamOutcome(breaker, trips)
            try:
                for item in method(*args, **kwargs):
                    outcome.saw(item)
                    yield item
            finally:
                outcome.record()

        return guarded


@attrs.define
class StreamOutcome:
    """What a guarded stream tells its breaker: its last failure, else a success.

    Shared by the sync and async stream guards. A stream the consumer abandoned says
    nothing against the service, so it records a success.
    """

    breaker: CircuitBreaker
    trips: Callable[[ServiceError], bool]
    failure: Result[Any, ServiceError] | None = None

    def saw(self, item: object) -> None:
        """Note ``item``, one element of the stream."""
        if isinstance(item, Failure):
            self.failure = item

    def record(self) -> None:
        """Report the stream's outcome to the breaker (once, when it ends)."""
        if self.failure is not None:
            self.breaker.record(self.failure, self.trips)
        else:
            self.breaker.record_success()


def with_breaker(
    port: P, breaker: CircuitBreaker, *, trips: Callable[[ServiceError], bool] = default_trips
) -> P:
    """``port`` with every I/O method guarded by ``breaker``.

    While the breaker is open, a method returning a ``Result`` returns
    ``Failure(Unavailable)`` without touching the service, and a method returning an
    iterator of results (``LLMPort.stream``) yields that one failure. Failures for
    which ``trips`` is true count towards opening it; every other outcome, including
    ``NotFound`` or ``InvalidRequest``, proves the service answered. ``close``,
    ``namespace`` and ``identity`` pass straight through.
    """
    return cast(P, Guarded(port, breaker, trips))
