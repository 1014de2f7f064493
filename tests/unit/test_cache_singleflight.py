"""SingleFlight: concurrent callers of one key share one execution."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from portside.adapters.resilience import SingleFlight

WAITERS = 5


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition()`` for up to 10 s (a bound, not a timing assertion)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.001)


def test_concurrent_callers_share_one_execution() -> None:
    """While one call runs, every other caller of the key gets its result, shared."""
    flights: SingleFlight[int] = SingleFlight()
    release = threading.Event()
    calls: list[int] = []
    results: list[tuple[int, bool]] = []

    def work() -> int:
        calls.append(1)
        release.wait(10)
        return 42

    def call() -> None:
        results.append(flights.do("k", work))

    threads = [threading.Thread(target=call) for _ in range(WAITERS + 1)]
    threads[0].start()
    _wait_until(lambda: flights.in_flight("k"), "the leader to start")
    for thread in threads[1:]:
        thread.start()
    _wait_until(lambda: flights.waiters("k") == WAITERS, "every follower to wait")
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1
    assert sorted(results) == [(42, False)] + [(42, True)] * WAITERS
    assert not flights.in_flight("k")


def test_an_exception_reaches_every_waiter_and_frees_the_key() -> None:
    """The error of the one execution is raised to all its callers; the key is free after."""
    flights: SingleFlight[int] = SingleFlight()
    release = threading.Event()
    errors: list[BaseException] = []

    def boom() -> int:
        release.wait(10)
        raise RuntimeError("factory failed")

    def call() -> None:
        try:
            flights.do("k", boom)
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    threads[0].start()
    _wait_until(lambda: flights.in_flight("k"), "the leader to start")
    for thread in threads[1:]:
        thread.start()
    _wait_until(lambda: flights.waiters("k") == 2, "both followers to wait")
    release.set()
    for thread in threads:
        thread.join(10)
    assert [str(e) for e in errors] == ["factory failed"] * 3
    assert flights.do("k", lambda: 7) == (7, False)


def test_different_keys_run_independently() -> None:
    """Two keys never share a result."""
    flights: SingleFlight[str] = SingleFlight()
    assert flights.do("a", lambda: "A") == ("A", False)
    assert flights.do("b", lambda: "B") == ("B", False)


def test_a_finished_flight_is_not_a_cache() -> None:
    """After an execution ends, the next call runs the function again."""
    flights: SingleFlight[int] = SingleFlight()
    counter = iter(range(10))
    assert flights.do("k", lambda: next(counter)) == (0, False)
    assert flights.do("k", lambda: next(counter)) == (1, False)
    with pytest.raises(ZeroDivisionError):
        flights.do("k", lambda: 1 // 0)
