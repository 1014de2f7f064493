"""The system clock: the machine's wall and monotonic time behind the ``Clock`` port."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import attrs

from portside.ports import Clock

__all__ = ["SystemClock", "async_sleeper"]


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


def async_sleeper(clock: Clock) -> Callable[[float], Awaitable[None]]:
    """How async code waits on ``clock``: ``asyncio.sleep`` for the system clock.

    The event loop's timer is the system's monotonic clock, so waiting there lets other
    tasks run and a cancelled task stop at once. Any other clock is a test clock whose
    ``sleep`` does not block (``ManualClock`` advances): it is called, then the task
    yields once to the loop, so code that polls still lets the others run.
    """
    if isinstance(clock, SystemClock):
        return _loop_sleep

    async def sleep(seconds: float) -> None:
        import asyncio  # here, not at the top: importing the clock must stay cheap

        clock.sleep(seconds)
        await asyncio.sleep(0)

    return sleep


async def _loop_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(max(0.0, seconds))
