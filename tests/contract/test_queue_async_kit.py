"""The queue contract kit on the async memory queue, through the sync bridge, and its controls."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import attrs
import pytest
from hypothesis import Phase, settings
from returns.result import Result, Success

from portside.adapters.memory import AsyncMemoryQueue, MemoryQueue
from portside.adapters.memory._queue import _Lease
from portside.adapters.testing import EventLoopThread, MemoryQueueFaults, check_queue_contract
from portside.domain import Delivery, ServiceError
from portside.ports import Clock, QueuePort
from portside.ports.queue_rules import QueueOptions

_NO_SHRINK = settings(phases=[Phase.explicit, Phase.reuse, Phase.generate], database=None)


@pytest.fixture(name="runner", scope="module")
def _runner() -> Iterator[EventLoopThread]:
    runner = EventLoopThread()
    yield runner
    runner.close()


def test_async_memory_queue_meets_the_contract(runner: EventLoopThread) -> None:
    """AsyncMemoryQueue, awaited on a loop through BlockingQueue, behaves like the model."""

    def factory(clock: Clock, options: QueueOptions) -> QueuePort:
        return runner.blocking_queue(AsyncMemoryQueue(clock, options))

    check_queue_contract(factory, faults=MemoryQueueFaults(), max_examples=40, steps=40)


@attrs.define
class _StaleExtend(AsyncMemoryQueue):
    """``extend`` moves the lease but hands back the delivery it was given, old lease and all."""

    async def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        extended = self.sync.extend(delivery, by=by)
        return Success(delivery) if isinstance(extended, Success) else extended


@attrs.define
class _NackIgnoresDelay(AsyncMemoryQueue):
    """``nack`` forwards the delivery but drops its delay: the message is due at once."""

    async def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        return self.sync.nack(delivery, delay=0.0 if delay >= 0 else delay)


class _NoRedelivery(MemoryQueue):
    """Forgets the visibility timeout: only nacked messages ever come back."""

    def _due(self, lease: _Lease, now: float) -> bool:
        return lease.receipt is None and lease.due <= now


def _over_broken_sync(clock: Clock, options: QueueOptions) -> AsyncMemoryQueue:
    return AsyncMemoryQueue.over(_NoRedelivery(clock, options))


@pytest.mark.parametrize(
    "broken",
    [_StaleExtend, _NackIgnoresDelay, _over_broken_sync],
    ids=["stale-extend", "nack-ignores-delay", "over-a-queue-that-never-redelivers"],
)
def test_kit_catches_a_broken_async_queue(
    broken: Callable[[Clock, QueueOptions], AsyncMemoryQueue], runner: EventLoopThread
) -> None:
    """Each deliberately broken async queue fails the kit through the bridge."""

    def factory(clock: Clock, options: QueueOptions) -> QueuePort:
        return runner.blocking_queue(broken(clock, options))

    with pytest.raises(AssertionError):
        check_queue_contract(
            factory, faults=MemoryQueueFaults(), max_examples=300, steps=40, extra=_NO_SHRINK
        )
