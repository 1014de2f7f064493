"""The manual clock: time that moves only when a test says so. For tests."""

from __future__ import annotations

import threading

import attrs

from portside.ports._clock import Clock

__all__ = ["ManualClock"]


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
