"""Coalescing of concurrent identical streams: one leader streams, followers wait and replay.

``SingleFlight`` shares a function's return value; a stream is yielded while it is
produced, so it needs its own rendezvous. The leader publishes its outcome when the
stream ends: the recorded deltas, the failure, or ``ABORTED`` when its consumer
stopped early (followers then try again on their own).
"""

from __future__ import annotations

import threading
from typing import Final, Generic, TypeVar

import attrs

__all__ = ["ABORTED", "Flight", "Flights"]

T = TypeVar("T")

ABORTED: Final = object()


@attrs.define
class Flight(Generic[T]):
    """One in-progress call that followers can wait on."""

    _done: threading.Event = attrs.field(factory=threading.Event, init=False)
    _outcome: T | object = attrs.field(default=ABORTED, init=False)

    def wait(self, timeout: float | None) -> T | object:
        """The leader's outcome, or ``ABORTED`` if it gave up or ``timeout`` passed."""
        if not self._done.wait(timeout):
            return ABORTED
        return self._outcome


@attrs.define
class Flights(Generic[T]):
    """The flights in progress, by key."""

    _flights: dict[str, Flight[T]] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def join(self, key: str) -> tuple[Flight[T], bool]:
        """The flight for ``key`` and whether the caller leads it (and must ``land`` it)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = Flight[T]()
            self._flights[key] = flight
            return flight, True

    def land(self, key: str, flight: Flight[T], outcome: T | object) -> None:
        """Publish the leader's ``outcome``, free the key and wake every follower."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight._outcome = outcome
        flight._done.set()
