"""The asyncio twins of the resilience tools: retry, breaker and single flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock, async_sleeper
from portside.adapters.memory import ManualClock
from portside.adapters.resilience import (
    AsyncSingleFlight,
    CircuitBreaker,
    RetryPolicy,
    retries_disabled,
    set_retry_cap,
    with_async_breaker,
)
from portside.domain import InvalidRequest, RateLimited, ServiceError, TimedOut, Unavailable


@pytest.fixture(autouse=True)
def _no_cap() -> Iterator[None]:
    """Each test starts and ends without a process-wide retry cap."""
    set_retry_cap(None)
    yield
    set_retry_cap(None)


class _Flaky:
    """An async call that fails with the given errors, then succeeds."""

    def __init__(self, *errors: ServiceError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> Result[str, ServiceError]:
        self.calls += 1
        if self.errors:
            return Failure(self.errors.pop(0))
        return Success("done")


def test_acall_backs_off_as_call_does(manual_clock: ManualClock) -> None:
    """Two Unavailable answers are retried after 0.1 s then 0.2 s, on the manual clock."""
    fn = _Flaky(Unavailable(), Unavailable())
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, base=0.1, jitter=0.0)
    result = asyncio.run(
        policy.acall(fn, clock=manual_clock, on_retry=lambda _a, _e, d: waits.append(d))
    )
    assert result == Success("done")
    assert fn.calls == 3
    assert waits == pytest.approx([0.1, 0.2])
    assert manual_clock.monotonic() == pytest.approx(0.3)


def test_acall_makes_the_same_decisions_as_call(manual_clock: ManualClock) -> None:
    """Retry-After, non-retryable errors, the attempt limit and the test cap agree."""
    policy = RetryPolicy(attempts=3, base=0.1, jitter=0.0, max_retry_after=10.0)
    cases: list[list[ServiceError]] = [
        [RateLimited(retry_after=2.0)],
        [RateLimited(retry_after=20.0)],
        [InvalidRequest()],
        [TimedOut(), TimedOut(), TimedOut()],
    ]
    for errors in cases:
        sync_clock, async_clock = ManualClock(), ManualClock()
        sync_fn, async_fn = _Flaky(*errors), _Flaky(*errors)

        def call_sync(fn: _Flaky = sync_fn) -> Result[str, ServiceError]:
            return asyncio.run(fn())

        expected = policy.call(call_sync, clock=sync_clock)
        assert asyncio.run(policy.acall(async_fn, clock=async_clock)) == expected
        assert (async_fn.calls, async_clock.monotonic()) == (sync_fn.calls, sync_clock.monotonic())
    with retries_disabled():
        capped = _Flaky(Unavailable())
        assert isinstance(asyncio.run(policy.acall(capped, clock=manual_clock)), Failure)
        assert capped.calls == 1


def test_acall_waits_on_the_event_loop_so_other_tasks_run() -> None:
    """With the system clock the backoff is asyncio.sleep: a task cancelled mid-wait stops."""
    fn = _Flaky(Unavailable(), Unavailable())
    policy = RetryPolicy(attempts=3, base=30.0, jitter=0.0)

    async def scenario() -> None:
        task = asyncio.ensure_future(policy.acall(fn, clock=SystemClock()))
        ticks = 0
        while fn.calls == 0 or ticks < 5:
            await asyncio.sleep(0)
            ticks += 1
        assert not task.done()  # parked in a 30 s wait, not blocking this loop
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert fn.calls == 1


def test_acall_stops_before_a_wait_past_the_deadline(manual_clock: ManualClock) -> None:
    """A wait that would end after the deadline is not started."""
    fn = _Flaky(Unavailable(), Unavailable())
    policy = RetryPolicy(attempts=5, base=1.0, jitter=0.0)
    result = asyncio.run(policy.acall(fn, clock=manual_clock, deadline=1.5))
    assert isinstance(result, Failure)
    assert fn.calls == 2


def test_async_sleeper_advances_a_manual_clock_and_yields() -> None:
    """On a manual clock the sleep is an advance plus one turn of the loop."""
    clock = ManualClock()
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async def scenario() -> None:
        task = asyncio.ensure_future(other())
        await async_sleeper(clock)(4.0)
        order.append("slept")
        await task

    asyncio.run(scenario())
    assert clock.monotonic() == 4.0
    assert order == ["other", "slept"]


def test_breaker_acall_opens_and_short_circuits(manual_clock: ManualClock) -> None:
    """After the threshold acall returns Unavailable without calling the function."""
    breaker = CircuitBreaker(manual_clock, failure_threshold=2, reset_timeout=5.0)
    fn = _Flaky(TimedOut(), TimedOut(), TimedOut())

    async def scenario() -> None:
        assert isinstance((await breaker.acall(fn)).failure(), TimedOut)
        assert isinstance((await breaker.acall(fn)).failure(), TimedOut)
        assert breaker.state == "open"
        refused = await breaker.acall(fn, operation="get")
        assert "breaker is open" in refused.failure().message
        assert fn.calls == 2
        manual_clock.advance(5.0)
        assert isinstance((await breaker.acall(fn)).failure(), TimedOut)  # the probe
        assert breaker.state == "open"

    asyncio.run(scenario())


class _AsyncPort:
    """A small async port: one Result method, one stream, and aclose."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False
        self.fail_with: ServiceError | None = None

    @property
    def namespace(self) -> str:
        """Passed through unguarded."""
        return "ns"

    async def fetch(self, key: str) -> Result[str, ServiceError]:
        """The key back, or the configured failure."""
        self.calls += 1
        return Failure(self.fail_with) if self.fail_with else Success(key)

    async def stream(self, n: int) -> AsyncIterator[Result[int, ServiceError]]:
        """``n`` successes, then the configured failure if any."""
        self.calls += 1
        for i in range(n):
            yield Success(i)
        if self.fail_with is not None:
            yield Failure(self.fail_with)

    async def aclose(self) -> None:
        """Marks the port closed."""
        self.closed = True


def test_with_async_breaker_guards_calls_and_streams(manual_clock: ManualClock) -> None:
    """Failures open it; while open calls and streams answer Unavailable with no I/O."""
    port = _AsyncPort()
    breaker = CircuitBreaker(manual_clock, failure_threshold=2, reset_timeout=5.0, name="svc")
    guarded = with_async_breaker(port, breaker)

    async def collect(n: int) -> list[Result[int, ServiceError]]:
        return [item async for item in guarded.stream(n)]

    async def scenario() -> None:
        assert await guarded.fetch("a") == Success("a")
        port.fail_with = Unavailable()
        assert isinstance((await guarded.fetch("a")).failure(), Unavailable)
        streamed = await collect(2)
        assert streamed[:2] == [Success(0), Success(1)]
        assert isinstance(streamed[2].failure(), Unavailable)
        assert breaker.state == "open"
        calls = port.calls
        refused = await collect(2)
        assert len(refused) == 1
        assert refused[0].failure().service == "svc"
        assert isinstance((await guarded.fetch("a")).failure(), Unavailable)
        assert port.calls == calls
        assert guarded.namespace == "ns"
        await guarded.aclose()
        assert port.closed
        port.fail_with = None
        manual_clock.advance(5.0)
        assert await collect(1) == [Success(0)]  # the probe stream closes the breaker
        assert breaker.state == "closed"

    asyncio.run(scenario())
    assert "with_async_breaker" in repr(guarded)


def test_single_flight_shares_one_run_among_tasks() -> None:
    """Ten tasks asking for one key while it runs share one execution."""
    flights: AsyncSingleFlight[int] = AsyncSingleFlight()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        return 42

    async def scenario() -> list[tuple[int, bool]]:
        return await asyncio.gather(*(flights.do("k", work) for _ in range(10)))

    results = asyncio.run(scenario())
    assert runs == 1
    assert [value for value, _ in results] == [42] * 10
    assert sorted(shared for _, shared in results) == [False] + [True] * 9


def test_a_cancelled_leader_hands_the_work_to_a_waiting_task() -> None:
    """Cancelling the leader cancels only it; a waiting task runs the work afresh."""
    flights: AsyncSingleFlight[str] = AsyncSingleFlight()
    runs: list[str] = []
    release = asyncio.Event()

    async def scenario() -> None:
        async def work() -> str:
            runs.append("run")
            await release.wait()
            return "value"

        leader = asyncio.ensure_future(flights.do("k", work))
        await asyncio.sleep(0)
        follower = asyncio.ensure_future(flights.do("k", work))
        await asyncio.sleep(0)
        assert flights.in_flight("k")
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        await asyncio.sleep(0)
        release.set()
        assert await follower == ("value", False)
        assert not flights.in_flight("k")

    asyncio.run(scenario())
    assert runs == ["run", "run"]


def test_an_exception_reaches_every_waiting_task_and_frees_the_key() -> None:
    """The work's exception propagates to all callers; the next call runs afresh."""
    flights: AsyncSingleFlight[int] = AsyncSingleFlight()

    async def boom() -> int:
        await asyncio.sleep(0.01)
        raise RuntimeError("factory failed")

    async def ok() -> int:
        return 1

    async def scenario() -> None:
        outcomes = await asyncio.gather(
            *(flights.do("k", boom) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(o, RuntimeError) for o in outcomes)
        assert await flights.do("k", ok) == (1, False)

    asyncio.run(scenario())
