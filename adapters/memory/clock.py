"""Clocks: the system clock for production and a manual clock for tests."""

from __future__ import annotations

import threading
import time

import attrs

from ports.clock import Clock

__all__ = ["ManualClock", "SystemClock"]


@attrs.frozen
class SystemClock(Clock):
    """The machine's clocks."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep()``, ignoring non-positive durations."""
        if seconds > 0:
            time.sleep(seconds)


@attrs.define
class ManualClock(Clock):
    """A clock that moves only when a test says so. For tests.

    ``sleep()`` advances the clock instead of waiting, so code that backs off or waits
    for a lease runs instantly and deterministically.
    """

    start: float = 1_700_000_000.0
    _offset: float = attrs.field(default=0.0, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def now(self) -> float:
        """The start time plus every advance so far."""
        return self.start + self._offset

    def monotonic(self) -> float:
        """Every advance so far (starts at 0)."""
        return self._offset

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` without waiting."""
        if seconds > 0:
            self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward; negative values are a programming error."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._offset += seconds
