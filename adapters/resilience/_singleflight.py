"""In-process single-flight: concurrent calls for one key share one execution.

Used by ``get_or_set`` (N threads missing one cache key call the factory once) and by
the LLM response cache (N identical requests make one upstream call).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import attrs

__all__ = ["SingleFlight"]

T = TypeVar("T")


@attrs.define(eq=False)
class _Flight(Generic[T]):
    """One execution in progress and what the waiters need to see its outcome."""

    done: threading.Event = attrs.field(factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None
    waiters: int = 0


@attrs.define
class SingleFlight(Generic[T]):
    """Run ``fn`` once per key at a time; callers that arrive meanwhile share its result.

    Thread-safe. A key is free again as soon as its execution finishes, so a later call
    runs ``fn`` afresh (this is deduplication of concurrent work, not a cache).
    """

    _flights: dict[str, _Flight[T]] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def do(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """``fn()``'s result and whether it was shared with (produced by) another caller.

        An exception raised by ``fn`` propagates to the caller that ran it and to every
        caller that waited for it, and frees the key.
        """
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight()
                leader = True
            else:
                flight.waiters += 1
                leader = False
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result, True  # type: ignore[return-value]  # set by the leader
        try:
            flight.result = fn()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return flight.result, False

    def in_flight(self, key: str) -> bool:
        """Whether an execution for ``key`` is running now."""
        with self._lock:
            return key in self._flights

    def waiters(self, key: str) -> int:
        """How many callers are waiting for the execution for ``key`` now."""
        with self._lock:
            flight = self._flights.get(key)
            return 0 if flight is None else flight.waiters
