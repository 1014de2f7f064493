"""AsyncMemoryQueue: the sync fake's answers, awaited; a waiting receive never blocks the loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from returns.result import Failure, Success

from portside.adapters.memory import AsyncMemoryQueue, ManualClock, MemoryQueue
from portside.domain import InvalidRequest
from portside.ports import AsyncQueuePort
from portside.ports.queue_rules import QueueOptions


def test_it_is_an_async_queue_port_over_one_memory_queue() -> None:
    """A sync and an async view of one MemoryQueue see the same messages."""
    shared = MemoryQueue(ManualClock())
    queue: AsyncQueuePort = AsyncMemoryQueue.over(shared)

    async def scenario() -> None:
        assert await queue.receive("t", "g", "c") == Success([])
        mid = shared.publish("t", b"x").unwrap()
        [got] = (await queue.receive("t", "g", "c")).unwrap()
        assert got.message.id == mid
        assert await queue.ack(got) == Success(None)
        assert shared.stored("t") == 0

    asyncio.run(scenario())


def test_bad_input_is_invalid_request_not_an_exception() -> None:
    """A bad wait, count or name is Failure(InvalidRequest), as on the sync fake."""
    queue = AsyncMemoryQueue(ManualClock())

    async def scenario() -> None:
        for call in (
            queue.receive("t", "g", "c", wait=-1.0),
            queue.receive("t", "g", "c", wait="soon"),  # type: ignore[arg-type]
            queue.receive("t", "g", "c", max_messages=0),
            queue.receive("", "g", "c", wait=5.0),
            queue.publish("t", "not bytes"),  # type: ignore[arg-type]
        ):
            outcome = await call
            assert isinstance(outcome, Failure)
            assert isinstance(outcome.failure(), InvalidRequest)

    asyncio.run(scenario())


def test_a_wait_on_a_manual_clock_advances_it_without_suspending() -> None:
    """receive(wait=) on a manual clock moves the clock, as MemoryQueue does; no real wait."""
    clock = ManualClock()
    queue = AsyncMemoryQueue(clock, QueueOptions(lease_timeout=10.0))

    async def scenario() -> None:
        assert await queue.receive("t", "g", "c") == Success([])
        await queue.publish("t", b"later", delay=5.0)
        started = time.monotonic()
        got = (await queue.receive("t", "g", "c", wait=6.0)).unwrap()
        assert [d.message.body for d in got] == [b"later"]
        assert time.monotonic() - started < 1.0
        assert clock.monotonic() == 6.0

    asyncio.run(scenario())


def test_a_waiting_receive_is_woken_by_a_publish_on_the_same_loop() -> None:
    """A task waiting for a message gets it as soon as another task publishes; the loop runs on."""
    queue = AsyncMemoryQueue()

    async def scenario() -> float:
        assert await queue.receive("t", "g", "c") == Success([])
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        waiting = asyncio.create_task(queue.receive("t", "g", "c", wait=30.0))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        assert ticks >= 5, "the waiting receive blocked the event loop"
        started = time.monotonic()
        await queue.publish("t", b"now")
        got = (await waiting).unwrap()
        ticking.cancel()
        assert [d.message.body for d in got] == [b"now"]
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0


def test_a_waiting_receive_is_woken_by_a_publish_from_another_thread() -> None:
    """A sync view publishing from a thread wakes a receive awaiting on the loop."""
    shared = MemoryQueue()
    queue = AsyncMemoryQueue.over(shared)
    shared.receive("t", "g", "c").unwrap()

    async def scenario() -> list[bytes]:
        publisher = threading.Timer(0.1, lambda: shared.publish("t", b"from a thread"))
        publisher.start()
        got = (await queue.receive("t", "g", "c", wait=30.0)).unwrap()
        publisher.join()
        return [d.message.body for d in got]

    started = time.monotonic()
    assert asyncio.run(scenario()) == [b"from a thread"]
    assert time.monotonic() - started < 5.0


def test_a_waiting_receive_wakes_when_a_lease_falls_due() -> None:
    """With nothing published, a lease running out ends the wait with the redelivery."""
    queue = AsyncMemoryQueue(options=QueueOptions(lease_timeout=0.2))

    async def scenario() -> None:
        assert await queue.receive("t", "g", "c") == Success([])
        await queue.publish("t", b"x")
        [first] = (await queue.receive("t", "g", "c")).unwrap()
        [again] = (await queue.receive("t", "g", "c2", wait=10.0)).unwrap()
        assert (again.message.id, again.attempt) == (first.message.id, 2)

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 5.0


def test_a_wait_with_nothing_coming_ends_empty_after_its_time() -> None:
    """A receive(wait=0.2) on an idle topic returns [] after about 0.2 s."""
    queue = AsyncMemoryQueue()

    async def scenario() -> None:
        started = time.monotonic()
        assert await queue.receive("t", "g", "c", wait=0.2) == Success([])
        assert 0.15 < time.monotonic() - started < 2.0

    asyncio.run(scenario())


def test_a_cancelled_waiting_receive_leases_nothing_and_stops_watching() -> None:
    """Cancelling a waiting receive leaves no watcher; the next publish goes to the next receive."""
    shared = MemoryQueue()
    queue = AsyncMemoryQueue.over(shared)

    async def scenario() -> None:
        assert await queue.receive("t", "g", "c") == Success([])
        waiting = asyncio.create_task(queue.receive("t", "g", "c", wait=30.0))
        await asyncio.sleep(0.05)
        assert len(shared._watchers) == 1
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        assert shared._watchers == []
        await queue.publish("t", b"x")
        [got] = (await queue.receive("t", "g", "c2")).unwrap()
        assert got.attempt == 1

    asyncio.run(scenario())
