"""In-process single-flight: concurrent calls for one key share one execution.

One mechanism for both kinds of work:

- ``do(key, fn)`` runs a function once for every caller that arrives while it runs and
  hands them its return value (``get_or_set``; ``CachingLLM.complete``).
- ``join(key)`` / ``land(key, flight, outcome)`` are the same rendezvous taken apart,
  for work that is yielded while it is produced (``CachingLLM.stream``): the leader
  streams to its own consumer and lands the outcome when it ends; followers ``wait``
  for it. A leader that lands ``ABORTED`` (its consumer stopped early) sends its
  followers off to try again on their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final, Generic, TypeVar

import attrs

__all__ = ["ABORTED", "Aborted", "Flight", "SingleFlight"]

T = TypeVar("T")


class Aborted:
    """The outcome of a flight whose leader gave up (or a wait that timed out)."""

    def __repr__(self) -> str:
        return "ABORTED"


#: What ``Flight.wait`` returns when the leader gave up or the wait timed out.
ABORTED: Final = Aborted()


@attrs.define(eq=False)
class Flight(Generic[T]):
    """One execution in progress, and what its followers need to see its outcome."""

    _done: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)
    _outcome: T | Aborted = attrs.field(default=ABORTED, init=False)
    _error: BaseException | None = attrs.field(default=None, init=False)
    waiters: int = attrs.field(default=0, init=False)

    def wait(self, timeout: float | None = None) -> T | Aborted:
        """The leader's outcome, or ``ABORTED`` if it gave up or ``timeout`` passed.

        Raises the exception the leader's execution raised, if it raised one.
        """
        if not self._done.wait(timeout):
            return ABORTED
        if self._error is not None:
            raise self._error
        return self._outcome


@attrs.define
class SingleFlight(Generic[T]):
    """Run work once per key at a time; callers that arrive meanwhile share its outcome.

    Thread-safe. A key is free again as soon as its execution finishes, so a later call
    runs afresh (this is deduplication of concurrent work, not a cache).
    """

    _flights: dict[str, Flight[T]] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def join(self, key: str) -> tuple[Flight[T], bool]:
        """The flight for ``key`` and whether the caller leads it (and must ``land`` it)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                flight.waiters += 1
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def land(
        self,
        key: str,
        flight: Flight[T],
        outcome: T | Aborted,
        error: BaseException | None = None,
    ) -> None:
        """Publish the leader's ``outcome`` (or ``error``), free the key, wake every follower."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight._outcome = outcome
        flight._error = error
        flight._done.set()

    def do(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """``fn()``'s result and whether it was shared with (produced by) another caller.

        An exception raised by ``fn`` propagates to the caller that ran it and to every
        caller that waited for it, and frees the key.
        """
        flight, leader = self.join(key)
        if not leader:
            outcome = flight.wait()
            # A leader of ``do`` always lands a value or an error, never ABORTED.
            assert not isinstance(outcome, Aborted)
            return outcome, True
        try:
            result = fn()
        except BaseException as exc:
            self.land(key, flight, ABORTED, exc)
            raise
        self.land(key, flight, result)
        return result, False

    def in_flight(self, key: str) -> bool:
        """Whether an execution for ``key`` is running now."""
        with self._lock:
            return key in self._flights

    def waiters(self, key: str) -> int:
        """How many callers are waiting for the execution for ``key`` now."""
        with self._lock:
            flight = self._flights.get(key)
            return 0 if flight is None else flight.waiters
