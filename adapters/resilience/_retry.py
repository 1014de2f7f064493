"""The retry policy, for call paths whose adapter does not own retries already.

``RetryPolicy`` retries a call that returned a ``retryable`` error, backing off
exponentially with jitter on the injected ``Clock`` and honouring
``RateLimited.retry_after``. Use it only where no adapter retries already (one retry
owner per call path). Test mode: ``retries_disabled()`` and ``set_retry_cap(n)`` turn
every policy's retries off or cap them process-wide, so tests fail fast and
deterministically.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Final, TypeVar

import attrs
from returns.result import Result, Success

from portside.adapters.clock import SystemClock, async_sleeper
from portside.domain._errors import RateLimited, ServiceError, TimedOut, Unavailable
from portside.ports._clock import Clock

__all__ = [
    "RetryListener",
    "RetryPolicy",
    "retries_disabled",
    "retry_cap",
    "set_retry_cap",
]

T = TypeVar("T")

_cap_lock: Final = threading.Lock()
_SYSTEM: Final = SystemClock()
_max_attempts_cap: int | None = None


def retry_cap() -> int | None:
    """The process-wide cap on attempts set for tests, or ``None`` when uncapped."""
    return _max_attempts_cap


def set_retry_cap(max_attempts: int | None) -> None:
    """Cap every ``RetryPolicy`` at ``max_attempts`` attempts (1 = no retries).

    ``None`` removes the cap. Meant for tests: an autouse fixture can call it so no
    test waits on a backoff it did not ask for.
    """
    global _max_attempts_cap
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be at least 1 (1 means no retries)")
    with _cap_lock:
        _max_attempts_cap = max_attempts


@contextmanager
def retries_disabled() -> Iterator[None]:
    """Within the block every ``RetryPolicy`` makes exactly one attempt."""
    previous = _max_attempts_cap
    set_retry_cap(1)
    try:
        yield
    finally:
        set_retry_cap(previous)


# The errors that can carry the server's Retry-After (429, and 503/504/529).
_SAYS_WHEN: Final = (RateLimited, Unavailable, TimedOut)

#: Called before each retry with the attempt number, the error and the delay.
RetryListener = Callable[[int, ServiceError, float], None]


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter for calls that return ``Result``.

    Attempt ``k`` (from 1) that fails with a ``retryable`` error waits
    ``min(cap, base * 2**(k-1))``, of which a ``jitter`` fraction is randomised
    downwards, then tries again, up to ``attempts`` attempts in all. An error with
    ``retry_after`` (``RateLimited``, ``Unavailable``, ``TimedOut``) waits that long
    instead, unless it is above ``max_retry_after``: then the failure is returned at
    once, because waiting that long inside a call is worse than letting the caller
    reschedule.
    """

    attempts: int = 3
    base: float = 0.1
    cap: float = 5.0
    jitter: float = 1.0
    max_retry_after: float = 60.0

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter is a fraction between 0 and 1")

    @property
    def effective_attempts(self) -> int:
        """``attempts``, lowered to the test-mode cap when one is set."""
        cap = _max_attempts_cap
        return self.attempts if cap is None else min(self.attempts, cap)

    def delay(self, attempt: int, error: ServiceError, rand: float = 1.0) -> float | None:
        """Seconds to wait after failed ``attempt``; ``None`` means do not retry.

        ``rand`` in [0, 1) is the jitter draw; 1.0 means no jitter.
        """
        if not error.retryable:
            return None
        asked = error.retry_after if isinstance(error, _SAYS_WHEN) else None
        if asked is not None:
            if asked > self.max_retry_after:
                return None
            return max(0.0, asked)
        backoff = min(self.cap, self.base * 2.0 ** (attempt - 1))
        return backoff * (1.0 - self.jitter * (1.0 - rand))

    def call(
        self,
        fn: Callable[[], Result[T, ServiceError]],
        *,
        clock: Clock,
        retry_on: Callable[[ServiceError], bool] | None = None,
        on_retry: RetryListener | None = None,
        rng: Callable[[], float] = random.random,
        deadline: float | None = None,
    ) -> Result[T, ServiceError]:
        """``fn()``, repeated on retryable failures; the last result is returned.

        ``retry_on`` narrows which retryable errors are repeated (pass one that
        rejects ``TimedOut`` for a call that is not idempotent). ``on_retry(attempt,
        error, delay)`` is called before each wait. Sleeps on ``clock``. ``deadline``
        (on ``clock.monotonic()``'s scale) ends the retries: a wait that would end
        after it is not started, and the last failure is returned.
        """
        limit = self.effective_attempts
        attempt = 1
        while True:
            result = fn()
            wait = self._wait_after(
                attempt, limit, result, clock, retry_on, on_retry, rng, deadline
            )
            if wait is None:
                return result
            clock.sleep(wait)
            attempt += 1

    async def acall(
        self,
        fn: Callable[[], Awaitable[Result[T, ServiceError]]],
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        retry_on: Callable[[ServiceError], bool] | None = None,
        on_retry: RetryListener | None = None,
        rng: Callable[[], float] = random.random,
        deadline: float | None = None,
    ) -> Result[T, ServiceError]:
        """``await fn()``, repeated on retryable failures: ``call`` for coroutines.

        The same decisions as ``call`` (attempts, backoff, ``Retry-After``, ``retry_on``,
        ``deadline`` on ``clock.monotonic()``'s scale); the waits are ``await
        sleep(seconds)``, by default ``async_sleeper(clock)``: ``asyncio.sleep`` on the
        event loop's clock for the system clock (other tasks run meanwhile and a
        cancelled task stops waiting at once), an instant advance on a ``ManualClock``.
        """
        clock = clock or _SYSTEM
        sleep = sleep or async_sleeper(clock)
        limit = self.effective_attempts
        attempt = 1
        while True:
            result = await fn()
            wait = self._wait_after(
                attempt, limit, result, clock, retry_on, on_retry, rng, deadline
            )
            if wait is None:
                return result
            await sleep(wait)
            attempt += 1

    def _wait_after(
        self,
        attempt: int,
        limit: int,
        result: Result[T, ServiceError],
        clock: Clock,
        retry_on: Callable[[ServiceError], bool] | None,
        on_retry: RetryListener | None,
        rng: Callable[[], float],
        deadline: float | None,
    ) -> float | None:
        """The wait before the next attempt after ``result``; ``None``: return ``result``.

        The one retry decision of ``call`` and ``acall``; calls ``on_retry`` when it
        decides to retry.
        """
        if isinstance(result, Success) or attempt >= limit:
            return None
        error = result.failure()
        if retry_on is not None and not retry_on(error):
            return None
        wait = self.delay(attempt, error, rng())
        if wait is None or (deadline is not None and clock.monotonic() + wait >= deadline):
            return None
        if on_retry is not None:
            on_retry(attempt, error, wait)
        return wait
