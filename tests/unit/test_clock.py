"""Clocks: the manual clock moves only when told; the system clock is real."""

from __future__ import annotations

import pytest

from portside.adapters.clock import SystemClock
from portside.adapters.memory import ManualClock
from portside.ports import Clock


def test_manual_clock_advances_only_when_told() -> None:
    """now() and monotonic() change only through advance() or sleep()."""
    clock = ManualClock(start=100.0)
    assert (clock.now(), clock.monotonic()) == (100.0, 0.0)
    clock.advance(2.5)
    clock.sleep(0.5)
    assert (clock.now(), clock.monotonic()) == (103.0, 3.0)


def test_manual_clock_refuses_to_go_backwards() -> None:
    """Advancing by a negative amount is a programming error."""
    with pytest.raises(ValueError, match="backwards"):
        ManualClock().advance(-1)


def test_both_clocks_satisfy_the_port() -> None:
    """Both clocks are Clock ports at runtime and for the type checker."""
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(), Clock)
    system = SystemClock()
    before = system.monotonic()
    system.sleep(0)
    assert system.monotonic() >= before
    assert system.now() > 1_600_000_000
