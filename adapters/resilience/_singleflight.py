"""In-process single-flight: concurrent calls for one key share one execution.

One mechanism for both kinds of work:

- ``do(key, fn)`` runs a function once for every caller that arrives while it runs and
  hands them its return value (``get_or_set``; ``CachingLLM.complete``).
- ``join(key)`` / ``land(key, flight, outcome)`` are the same rendezvous taken apart,
  for work that is yielded while it is produced (``CachingLLM.stream``): the leader
  streams to its own consumer and lands the outcome when it ends; followers ``wait``
  for it. A leader that lands ``ABORTED`` (its consumer stopped early) sends its
  followers off to try again on their own.
- ``AsyncSingleFlight.do(key, fn)`` is ``do`` for the tasks of an event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar

import attrs

__all__ = ["ABORTED", "Aborted", "AsyncSingleFlight", "Flight", "SingleFlight"]

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


@attrs.define
class AsyncSingleFlight(Generic[T]):
    """``SingleFlight`` for the tasks of an event loop: concurrent calls share one run.

    The first task to arrive for a key runs the work itself (so cancelling it stops the
    work, leaving nothing behind in the background); the tasks that arrive meanwhile wait
    for its outcome without being able to cancel it. When the leader is cancelled, the
    waiting tasks are not: the first of them runs the work afresh. An exception raised
    by the work propagates to the leader and to every waiting task. Flights are kept per
    event loop, so one table can serve several loops (threads) at once.
    """

    _flights: dict[tuple[int, str], asyncio.Future[tuple[T | Aborted, BaseException | None]]] = (
        attrs.field(factory=dict, init=False, repr=False)
    )

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``await fn()``'s result and whether it was shared with (produced by) another task."""
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        while (running := self._flights.get(slot)) is not None:
            # shield: a waiting task that is cancelled must not cancel the shared future.
            outcome, error = await asyncio.shield(running)
            if error is not None:
                raise error
            if not isinstance(outcome, Aborted):
                return outcome, True
            # The leader was cancelled: whoever loops first here leads the next run.
        future: asyncio.Future[tuple[T | Aborted, BaseException | None]] = loop.create_future()
        self._flights[slot] = future
        try:
            result = await fn()
        except asyncio.CancelledError:
            self._land(slot, future, (ABORTED, None))
            raise
        except BaseException as exc:
            self._land(slot, future, (ABORTED, exc))
            raise
        self._land(slot, future, (result, None))
        return result, False

    def join(
        self, key: str
    ) -> tuple[asyncio.Future[tuple[T | Aborted, BaseException | None]], bool]:
        """The flight for ``key`` on the running loop and whether the caller leads it.

        For work that cannot be one awaited call (a stream the leader hands out as it
        goes): the leader must ``land`` the flight, in a ``finally``; followers await
        ``asyncio.shield(flight)`` and get ``(outcome, error)``.
        """
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        running = self._flights.get(slot)
        if running is not None:
            return running, False
        future: asyncio.Future[tuple[T | Aborted, BaseException | None]] = loop.create_future()
        self._flights[slot] = future
        return future, True

    def land(
        self,
        key: str,
        flight: asyncio.Future[tuple[T | Aborted, BaseException | None]],
        outcome: T | Aborted,
    ) -> None:
        """Publish the leader's ``outcome``, free the key and wake every follower."""
        self._land((id(asyncio.get_running_loop()), key), flight, (outcome, None))

    def in_flight(self, key: str) -> bool:
        """Whether a run for ``key`` is in progress on the running event loop."""
        return (id(asyncio.get_running_loop()), key) in self._flights

    def _land(
        self,
        slot: tuple[int, str],
        future: asyncio.Future[tuple[T | Aborted, BaseException | None]],
        outcome: tuple[T | Aborted, BaseException | None],
    ) -> None:
        if self._flights.get(slot) is future:
            del self._flights[slot]
        future.set_result(outcome)
