"""run_async_worker on the async memory queue: concurrency, retries, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging

import attrs
import pytest
from returns.result import Failure, Result, Success

from portside.adapters.app import Backoff, run_async_worker
from portside.adapters.memory import AsyncMemoryQueue, ManualClock, MemoryQueue
from portside.domain import Delivery, RateLimited, ServiceError
from portside.ports.queue_rules import QueueOptions


def _queue(clock: ManualClock | None = None, max_deliveries: int = 3) -> AsyncMemoryQueue:
    options = QueueOptions(lease_timeout=30.0, max_deliveries=max_deliveries)
    queue = AsyncMemoryQueue(clock or ManualClock(), options)
    queue.sync.receive("t", "g", "probe").unwrap()  # create the group before publishing
    return queue


def _publish(queue: AsyncMemoryQueue, count: int) -> None:
    for i in range(count):
        queue.sync.publish("t", f"m{i}".encode()).unwrap()


def test_handlers_run_concurrently_up_to_the_limit_and_every_message_is_acked() -> None:
    """Twelve messages, four at a time: never more than four in flight, all acked."""
    queue = _queue()
    _publish(queue, 12)
    active = peak = 0
    seen: list[bytes] = []

    async def handler(delivery: Delivery) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        seen.append(delivery.message.body)
        active -= 1

    report = asyncio.run(
        run_async_worker(queue, "t", "g", handler, concurrency=4, wait=0, drain=True)
    )
    assert peak == 4
    assert sorted(seen) == sorted(f"m{i}".encode() for i in range(12))
    assert (report.handled, report.acked, report.retried) == (12, 12, 0)
    assert queue.sync.receive("t", "g", "other").unwrap() == []


@pytest.mark.parametrize("how", ["returned", "raised"])
def test_a_rate_limited_handler_gets_its_message_back_after_retry_after(how: str) -> None:
    """A handler reporting RateLimited(retry_after=60) sees the message again after 60 s."""
    clock = ManualClock()
    queue = _queue(clock)
    _publish(queue, 1)
    limited = RateLimited(service="api", operation="call", message="slow down", retry_after=60.0)

    async def handler(_: Delivery) -> Result[None, ServiceError]:
        if how == "raised":
            raise limited
        return Failure(limited)

    report = asyncio.run(
        run_async_worker(queue, "t", "g", handler, wait=0, limit=1, backoff=Backoff(base=1.0))
    )
    assert report.retried == 1
    clock.advance(59.0)
    assert queue.sync.receive("t", "g", "c").unwrap() == []
    clock.advance(1.0)
    assert [d.attempt for d in queue.sync.receive("t", "g", "c").unwrap()] == [2]


def test_the_last_allowed_delivery_is_dead_lettered_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that always fails: retried, then dead-lettered on the last delivery."""
    clock = ManualClock()
    queue = _queue(clock, max_deliveries=2)
    _publish(queue, 1)

    async def handler(_: Delivery) -> Result[None, ServiceError]:
        return Failure(RuntimeError("broken"))  # type: ignore[arg-type]

    with caplog.at_level(logging.WARNING, logger="portside.queue.worker"):
        report = asyncio.run(
            run_async_worker(queue, "t", "g", handler, wait=0, drain=True, backoff=Backoff(0.0))
        )
    assert (report.handled, report.retried, report.dead_lettered) == (2, 1, 1)
    assert len(queue.sync.dead_letters("t", "g").unwrap()) == 1
    assert any("dead-lettered" in r.getMessage() for r in caplog.records)


def test_stopping_finishes_the_handlers_in_progress_and_receives_no_more() -> None:
    """Stop with two handlers running: both finish and are acked; the rest stay queued."""
    queue = _queue()
    _publish(queue, 5)
    stop = asyncio.Event()
    finished: list[bytes] = []

    async def scenario() -> object:
        release = asyncio.Event()
        both = asyncio.Event()
        started: list[bytes] = []

        async def handler(delivery: Delivery) -> None:
            started.append(delivery.message.body)
            if len(started) == 2:
                both.set()
            await release.wait()
            finished.append(delivery.message.body)

        worker = asyncio.ensure_future(
            run_async_worker(queue, "t", "g", handler, concurrency=2, wait=0, stop=stop)
        )
        await both.wait()
        stop.set()
        await asyncio.sleep(0.01)
        assert not worker.done()  # waiting for the two in progress
        release.set()
        return await worker

    report = asyncio.run(scenario())
    assert len(finished) == 2
    assert (report.handled, report.acked, report.given_back) == (2, 2, 0)  # type: ignore[attr-defined]
    assert len(queue.sync.receive("t", "g", "later", max_messages=10).unwrap()) == 3


def test_a_handler_past_the_shutdown_deadline_is_cancelled_and_its_message_given_back() -> None:
    """A handler that never ends is cancelled after shutdown_timeout; its message returns."""
    queue = _queue()
    _publish(queue, 1)
    stop = asyncio.Event()
    cancelled: list[bool] = []

    async def handler(_: Delivery) -> None:
        stop.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    report = asyncio.run(
        run_async_worker(queue, "t", "g", handler, wait=0, stop=stop, shutdown_timeout=0.05)
    )
    assert cancelled == [True]
    assert (report.handled, report.acked, report.given_back) == (1, 0, 1)
    again = queue.sync.receive("t", "g", "other").unwrap()
    assert [d.attempt for d in again] == [2]


def test_a_stop_while_waiting_for_messages_returns_promptly() -> None:
    """A worker parked in a 30 s receive stops at once when told to, taking nothing."""
    queue = AsyncMemoryQueue()  # the system clock: the receive really waits
    queue.sync.receive("t", "g", "probe").unwrap()
    stop = asyncio.Event()

    async def handler(_: Delivery) -> None:
        raise AssertionError("nothing was published")

    async def scenario() -> object:
        worker = asyncio.ensure_future(
            run_async_worker(queue, "t", "g", handler, wait=30, stop=stop)
        )
        await asyncio.sleep(0.05)
        stop.set()
        return await asyncio.wait_for(worker, timeout=2.0)

    report = asyncio.run(scenario())
    assert report.handled == 0  # type: ignore[attr-defined]
    queue.sync.publish("t", b"after").unwrap()
    assert len(queue.sync.receive("t", "g", "c").unwrap()) == 1


@attrs.define
class _Counting:
    """An async queue that counts lease extensions."""

    inner: AsyncMemoryQueue
    extended: int = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """Counted, then the inner queue's extend."""
        self.extended += 1
        return await self.inner.extend(delivery, by=by)


def test_a_slow_handler_has_its_lease_extended_by_the_heartbeat() -> None:
    """While a handler runs, the heartbeat task extends its lease; it stops with it."""
    queue = _Counting(_queue())
    _publish(queue.inner, 1)

    async def handler(_: Delivery) -> None:
        await asyncio.sleep(0.1)

    report = asyncio.run(
        run_async_worker(queue, "t", "g", handler, wait=0, limit=1, heartbeat=0.02)  # type: ignore[arg-type]
    )
    assert report.acked == 1
    assert queue.extended >= 2
    count = queue.extended
    asyncio.run(asyncio.sleep(0.05))
    assert queue.extended == count


def test_a_receive_that_cannot_succeed_ends_the_loop() -> None:
    """A bad topic name is InvalidRequest: logged, counted, and the worker returns."""

    async def handler(_: Delivery) -> None:
        raise AssertionError("never called")

    report = asyncio.run(run_async_worker(_queue(), "bad topic\n", "g", handler, wait=0))
    assert report.receive_failures == 1


def test_bad_settings_are_refused() -> None:
    """Concurrency under 1 or a non-positive heartbeat is a ValueError before any I/O."""

    async def handler(_: Delivery) -> None:
        return None

    with pytest.raises(ValueError, match="concurrency"):
        asyncio.run(run_async_worker(_queue(), "t", "g", handler, concurrency=0))
    with pytest.raises(ValueError, match="heartbeat"):
        asyncio.run(run_async_worker(_queue(), "t", "g", handler, heartbeat=0))


def test_the_sync_and_async_workers_settle_alike() -> None:
    """The same handler outcomes give the same report on run_worker and run_async_worker."""
    from portside.adapters.app import run_worker

    outcomes = [Success(None), Failure(RuntimeError("x")), Success(None)]

    def make_sync_queue() -> MemoryQueue:
        queue = MemoryQueue(ManualClock(), QueueOptions(lease_timeout=30.0, max_deliveries=3))
        queue.receive("t", "g", "probe").unwrap()
        for i in range(3):
            queue.publish("t", f"m{i}".encode()).unwrap()
        return queue

    def pick(delivery: Delivery) -> object:
        return outcomes[int(delivery.message.body[1:])]

    async def apick(delivery: Delivery) -> object:
        return pick(delivery)

    sync_report = run_worker(make_sync_queue(), "t", "g", pick, wait=0, limit=3)
    async_queue = AsyncMemoryQueue.over(make_sync_queue())
    async_report = asyncio.run(run_async_worker(async_queue, "t", "g", apick, wait=0, limit=3))
    assert async_report == sync_report
