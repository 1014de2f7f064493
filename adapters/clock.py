"""The system clock: the machine's wall and monotonic time behind the ``Clock`` port."""

from __future__ import annotations

import time

import attrs

from portside.ports import Clock

__all__ = ["SystemClock"]


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
