"""Time as a port: TTLs, leases, breakers and backoff read a ``Clock``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Clock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time that tests can control.

    ``now()`` is wall-clock seconds since the epoch (for TTLs and timestamps that are
    stored); ``monotonic()`` never goes backwards (for durations and deadlines);
    ``sleep()`` waits, or, on a manual clock, advances time without waiting.
    """

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a manual clock advances instead)."""
        ...
