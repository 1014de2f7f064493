"""The circuit breaker: closed, open and half-open on the manual clock, and with_breaker."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from portside.adapters.memory import ManualClock
from portside.adapters.resilience import CircuitBreaker, default_trips, with_breaker
from portside.domain import (
    InvalidRequest,
    NotFound,
    ServiceError,
    TimedOut,
    Unavailable,
)

DOWN = Unavailable(service="svc", operation="get", message="down")


def _opened(clock: ManualClock, threshold: int = 3, reset: float = 10.0) -> CircuitBreaker:
    breaker = CircuitBreaker(clock, failure_threshold=threshold, reset_timeout=reset, name="svc")
    for _ in range(threshold):
        breaker.record_failure()
    return breaker


def test_opens_after_threshold_consecutive_failures(manual_clock: ManualClock) -> None:
    """The breaker stays closed below the threshold and opens exactly at it."""
    breaker = CircuitBreaker(manual_clock, failure_threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    assert breaker.times_opened == 1


def test_success_resets_the_failure_count(manual_clock: ManualClock) -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    breaker = CircuitBreaker(manual_clock, failure_threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.consecutive_failures == 1


def test_half_open_lets_exactly_one_probe_through(manual_clock: ManualClock) -> None:
    """After reset_timeout one caller probes while the others are still refused."""
    breaker = _opened(manual_clock)
    manual_clock.advance(9.9)
    assert not breaker.allow()
    manual_clock.advance(0.1)
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()
    assert breaker.state == "half_open"


def test_probe_success_closes(manual_clock: ManualClock) -> None:
    """A successful probe closes the breaker and every caller goes through again."""
    breaker = _opened(manual_clock)
    manual_clock.advance(10)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.allow()
    assert breaker.allow()


def test_probe_failure_reopens_for_a_full_timeout(manual_clock: ManualClock) -> None:
    """A failed probe opens the breaker again, counting the timeout from the failure."""
    breaker = _opened(manual_clock)
    manual_clock.advance(10)
    assert breaker.allow()
    manual_clock.advance(5)
    breaker.record_failure()
    assert breaker.state == "open"
    manual_clock.advance(9)
    assert not breaker.allow()
    manual_clock.advance(1)
    assert breaker.allow()
    assert breaker.times_opened == 2


def test_silent_probe_is_replaced_after_a_timeout(manual_clock: ManualClock) -> None:
    """A probe that never reports does not keep the breaker half-open forever."""
    breaker = _opened(manual_clock)
    manual_clock.advance(10)
    assert breaker.allow()
    manual_clock.advance(10)
    assert breaker.allow()


def test_late_success_while_open_does_not_close(manual_clock: ManualClock) -> None:
    """A success from a call started before the breaker opened proves nothing now."""
    breaker = _opened(manual_clock)
    breaker.record_success()
    assert breaker.state == "open"


def test_only_one_of_many_threads_probes(manual_clock: ManualClock) -> None:
    """Twenty threads asking at once in half-open state get exactly one probe."""
    breaker = _opened(manual_clock)
    manual_clock.advance(10)
    barrier = threading.Barrier(20)
    allowed: list[bool] = []
    lock = threading.Lock()

    def ask() -> None:
        barrier.wait()
        answer = breaker.allow()
        with lock:
            allowed.append(answer)

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1


def test_listeners_see_every_transition(manual_clock: ManualClock) -> None:
    """Subscribers hear closed->open->half_open->closed in order."""
    breaker = CircuitBreaker(manual_clock, failure_threshold=1, reset_timeout=1)
    seen: list[tuple[str, str]] = []
    breaker.subscribe(lambda _b, old, new: seen.append((old, new)))
    breaker.record_failure()
    manual_clock.advance(1)
    breaker.allow()
    breaker.record_success()
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_bad_settings_are_refused(manual_clock: ManualClock) -> None:
    """A threshold below one or a negative timeout is a programming error."""
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(manual_clock, failure_threshold=0)
    with pytest.raises(ValueError, match="reset_timeout"):
        CircuitBreaker(manual_clock, reset_timeout=-1)


@given(st.lists(st.booleans(), max_size=40), st.integers(1, 5))
def test_state_follows_the_reference_model(outcomes: list[bool], threshold: int) -> None:
    """Any sequence of outcomes in closed state opens exactly when a run reaches the threshold."""
    breaker = CircuitBreaker(ManualClock(), failure_threshold=threshold)
    run = 0
    for ok in outcomes:
        if ok:
            breaker.record_success()
            run = 0
        else:
            breaker.record_failure()
            run += 1
        if run >= threshold:
            assert breaker.state == "open"
            return
        assert breaker.state == "closed"


def test_only_unavailable_and_timeouts_trip() -> None:
    """Errors proving the service answered never count as breaker failures."""
    assert default_trips(DOWN)
    assert default_trips(TimedOut())
    assert not default_trips(NotFound())
    assert not default_trips(InvalidRequest())


class _Port:
    """A tiny port whose answers the test scripts."""

    def __init__(self) -> None:
        self.calls = 0
        self.answer: Result[str, ServiceError] = Success("ok")
        self.closed = False

    @property
    def namespace(self) -> str:
        """Passed straight through."""
        return "ns"

    def get(self, key: str) -> Result[str, ServiceError]:
        """Counts calls and returns the scripted answer."""
        self.calls += 1
        return self.answer

    def stream(self, key: str) -> Iterator[Result[str, ServiceError]]:
        """Yields two items, the last being the scripted answer."""
        self.calls += 1
        yield Success("a")
        yield self.answer

    def close(self) -> None:
        """Records that it was closed."""
        self.closed = True


def test_with_breaker_short_circuits_while_open(manual_clock: ManualClock) -> None:
    """Once open, calls return Failure(Unavailable) without reaching the port."""
    port = _Port()
    port.answer = Failure(DOWN)
    guarded = with_breaker(port, CircuitBreaker(manual_clock, failure_threshold=2, name="svc"))
    assert guarded.get("k") == port.answer
    assert guarded.get("k") == port.answer
    result = guarded.get("k")
    assert port.calls == 2
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, Unavailable)
    assert (error.service, error.operation) == ("svc", "get")
    assert "open" in error.message


def test_with_breaker_streams_one_failure_while_open(manual_clock: ManualClock) -> None:
    """A stream method on an open breaker yields exactly one Unavailable failure."""
    port = _Port()
    port.answer = Failure(DOWN)
    breaker = CircuitBreaker(manual_clock, failure_threshold=1)
    guarded = with_breaker(port, breaker)
    assert list(guarded.stream("k")) == [Success("a"), Failure(DOWN)]
    assert breaker.state == "open"
    items = list(guarded.stream("k"))
    assert port.calls == 1
    assert len(items) == 1
    assert isinstance(items[0], Failure)
    assert isinstance(items[0].failure(), Unavailable)


def test_with_breaker_recovers_through_a_probe(manual_clock: ManualClock) -> None:
    """After the timeout one real call goes through and a success closes the breaker."""
    port = _Port()
    port.answer = Failure(DOWN)
    breaker = CircuitBreaker(manual_clock, failure_threshold=1, reset_timeout=5)
    guarded = with_breaker(port, breaker)
    guarded.get("k")
    manual_clock.advance(5)
    port.answer = Success("back")
    assert guarded.get("k") == Success("back")
    assert breaker.state == "closed"


def test_with_breaker_counts_answers_as_success(manual_clock: ManualClock) -> None:
    """A NotFound proves the service answered and does not trip the breaker."""
    port = _Port()
    port.answer = Failure(NotFound())
    breaker = CircuitBreaker(manual_clock, failure_threshold=1)
    guarded = with_breaker(port, breaker)
    guarded.get("k")
    guarded.get("k")
    assert breaker.state == "closed"
    assert port.calls == 2


def test_with_breaker_passes_through_close_and_properties(manual_clock: ManualClock) -> None:
    """close() and descriptive properties reach the port even while the breaker is open."""
    port = _Port()
    breaker = _opened(manual_clock)
    guarded = with_breaker(port, breaker)
    assert guarded.namespace == "ns"
    guarded.close()
    assert port.closed
    assert "svc" in repr(guarded)
