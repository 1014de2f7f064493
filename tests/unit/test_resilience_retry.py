"""The retry policy: backoff on the manual clock, Retry-After, and the test-mode switch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from portside.adapters.memory import ManualClock
from portside.adapters.resilience import RetryPolicy, retries_disabled, retry_cap, set_retry_cap
from portside.domain import (
    Conflict,
    InvalidRequest,
    RateLimited,
    ServiceError,
    TimedOut,
    Unavailable,
)


@pytest.fixture(autouse=True)
def _no_cap() -> Iterator[None]:
    """Each test starts and ends without a process-wide retry cap."""
    set_retry_cap(None)
    yield
    set_retry_cap(None)


class _Flaky:
    """Fails with the given errors, then succeeds."""

    def __init__(self, *errors: ServiceError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> Result[str, ServiceError]:
        self.calls += 1
        if self.errors:
            return Failure(self.errors.pop(0))
        return Success("done")


def test_retries_retryable_errors_with_exponential_backoff(manual_clock: ManualClock) -> None:
    """Two Unavailable answers are retried after 0.1 s then 0.2 s (no jitter)."""
    fn = _Flaky(Unavailable(), Unavailable())
    waits: list[float] = []
    result = RetryPolicy(attempts=3, base=0.1, jitter=0.0).call(
        fn, clock=manual_clock, on_retry=lambda _a, _e, d: waits.append(d)
    )
    assert result == Success("done")
    assert fn.calls == 3
    assert waits == pytest.approx([0.1, 0.2])
    assert manual_clock.monotonic() == pytest.approx(0.3)


def test_gives_up_after_attempts_with_the_last_failure(manual_clock: ManualClock) -> None:
    """With every attempt failing, the last failure is returned after `attempts` calls."""
    last = TimedOut(message="third")
    fn = _Flaky(Unavailable(), TimedOut(), last, Unavailable())
    result = RetryPolicy(attempts=3).call(fn, clock=manual_clock)
    assert fn.calls == 3
    assert isinstance(result, Failure)
    assert result.failure() is last


def test_non_retryable_errors_are_returned_at_once(manual_clock: ManualClock) -> None:
    """An InvalidRequest is never repeated and nothing sleeps."""
    fn = _Flaky(InvalidRequest(message="bad"))
    result = RetryPolicy(attempts=5).call(fn, clock=manual_clock)
    assert fn.calls == 1
    assert isinstance(result, Failure)
    assert manual_clock.monotonic() == 0.0


def test_retry_after_is_honoured(manual_clock: ManualClock) -> None:
    """A RateLimited answer waits exactly the Retry-After the service asked for."""
    fn = _Flaky(RateLimited(retry_after=7.5))
    assert RetryPolicy(base=0.1).call(fn, clock=manual_clock) == Success("done")
    assert manual_clock.monotonic() == 7.5


def test_retry_after_beyond_the_limit_is_not_waited(manual_clock: ManualClock) -> None:
    """A Retry-After above max_retry_after is handed back instead of blocking the call."""
    fn = _Flaky(RateLimited(retry_after=600))
    result = RetryPolicy(max_retry_after=60).call(fn, clock=manual_clock)
    assert fn.calls == 1
    assert isinstance(result.failure(), RateLimited)
    assert manual_clock.monotonic() == 0.0


def test_retry_on_narrows_what_is_repeated(manual_clock: ManualClock) -> None:
    """A call that is not idempotent can refuse to repeat after a timeout."""
    fn = _Flaky(TimedOut())
    result = RetryPolicy().call(
        fn, clock=manual_clock, retry_on=lambda e: not isinstance(e, TimedOut)
    )
    assert fn.calls == 1
    assert isinstance(result, Failure)


@given(st.integers(1, 30), st.floats(0, 1), st.floats(0, 0.999))
def test_delay_is_bounded_by_cap_and_jitter(attempt: int, jitter: float, rand: float) -> None:
    """Every backoff lies within [(1 - jitter) * d, d] where d = min(cap, base * 2**(k-1))."""
    policy = RetryPolicy(base=0.05, cap=2.0, jitter=jitter)
    full = min(2.0, 0.05 * 2.0 ** (attempt - 1))
    wait = policy.delay(attempt, Conflict(), rand)
    assert wait is not None
    assert (1 - jitter) * full - 1e-12 <= wait <= full + 1e-12


def test_retries_disabled_makes_one_attempt(manual_clock: ManualClock) -> None:
    """Inside retries_disabled() a retryable failure is returned after one call."""
    fn = _Flaky(Unavailable())
    with retries_disabled():
        assert retry_cap() == 1
        result = RetryPolicy(attempts=5).call(fn, clock=manual_clock)
    assert fn.calls == 1
    assert isinstance(result, Failure)
    assert retry_cap() is None


def test_set_retry_cap_caps_every_policy(manual_clock: ManualClock) -> None:
    """A cap of two attempts overrides a policy allowing five."""
    set_retry_cap(2)
    fn = _Flaky(Unavailable(), Unavailable(), Unavailable())
    RetryPolicy(attempts=5).call(fn, clock=manual_clock)
    assert fn.calls == 2
    assert RetryPolicy(attempts=1).effective_attempts == 1


def test_invalid_settings_are_refused() -> None:
    """Zero attempts, negative delays or jitter outside [0, 1] are programming errors."""
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base=-1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)
    with pytest.raises(ValueError, match="max_attempts"):
        set_retry_cap(0)
