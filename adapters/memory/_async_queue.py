"""``AsyncMemoryQueue``: the in-memory queue fake for asyncio, over ``MemoryQueue``.

It holds a ``MemoryQueue`` and has no state of its own: every method is the sync fake's
method of the same name, so there is no second model that could drift from the one the
contract kit checks against. Only a ``receive(wait=)`` that finds nothing on the system
clock differs: instead of blocking a thread on the queue's condition it awaits an
``asyncio.Event`` that the queue sets (through ``MemoryQueue.watch``) when a publish or
nack may have made a message ready, or the time the group's next lease or delay falls
due, whichever comes first. On a ``ManualClock`` it advances the clock, as the sync fake
does, and never suspends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.memory._queue import _SERVICE, MemoryQueue
from portside.domain._errors import ServiceError
from portside.domain._queue import DeadLetter, Delivery
from portside.ports._clock import Clock
from portside.ports._queue import AsyncQueuePort
from portside.ports.queue_rules import QueueOptions, check_receive

__all__ = ["AsyncMemoryQueue"]


def _own_queue(self: AsyncMemoryQueue) -> MemoryQueue:
    return MemoryQueue(self.clock, self.options)


@attrs.define
class AsyncMemoryQueue(AsyncQueuePort):
    """``AsyncQueuePort`` on a ``MemoryQueue`` (same arguments, same answers). For tests.

    ``sync`` is that ``MemoryQueue`` (built from ``clock`` and ``options`` unless given;
    ``AsyncMemoryQueue.over(queue)`` shares an existing one): a sync and an async view of
    one queue see the same messages, and a publish on either wakes a waiting receive on
    the other. Returns what ``MemoryQueue`` returns; never ``Unavailable`` or ``TimedOut``.
    Only a waiting ``receive`` suspends, and it holds nothing while it does, so a
    cancelled call leaves the queue as if it had not been made.
    """

    clock: Clock = attrs.field(factory=SystemClock)
    options: QueueOptions = attrs.field(factory=QueueOptions)
    sync: MemoryQueue = attrs.field(default=attrs.Factory(_own_queue, takes_self=True), repr=False)

    @classmethod
    def over(cls, queue: MemoryQueue) -> AsyncMemoryQueue:
        """An async view of ``queue`` (its clock, options and state)."""
        return cls(queue.clock, queue.options, queue)

    async def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        """``MemoryQueue.publish``."""
        return self.sync.publish(topic, body, headers=headers, dedupe_key=dedupe_key, delay=delay)

    async def publish_many(
        self,
        topic: str,
        bodies: Iterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Result[list[str], ServiceError]:
        """``MemoryQueue.publish_many``."""
        return self.sync.publish_many(topic, bodies, headers=headers)

    async def receive(
        self,
        topic: str,
        group: str,
        consumer: str,
        *,
        max_messages: int = 1,
        wait: float = 0.0,
    ) -> Result[list[Delivery], ServiceError]:
        """``MemoryQueue.receive``; a ``wait`` on the system clock is awaited on the loop."""
        checked = check_receive(topic, group, consumer, max_messages, wait, service=_SERVICE)
        if type(checked) is Failure:
            return checked
        count, waiting = checked.unwrap()
        if waiting <= 0 or not self.sync.waits_in_real_time:
            return self.sync.receive(topic, group, consumer, max_messages=count, wait=waiting)
        return Success(await self._wait_for(topic, group, consumer, count, waiting))

    async def _wait_for(
        self, topic: str, group: str, consumer: str, count: int, waiting: float
    ) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake() -> None:
            # Runs on whichever thread published; the loop may be gone already.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ready.set)

        unwatch = self.sync.watch(wake)
        try:
            deadline = self.clock.monotonic() + waiting
            while True:
                # Cleared before looking: a publish after the look sets it again.
                ready.clear()
                got, pause = self.sync.take_now(topic, group, consumer, count)
                remaining = deadline - self.clock.monotonic()
                if got or remaining <= 0:
                    return got
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, pause)):
                        await ready.wait()
        finally:
            unwatch()

    async def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """``MemoryQueue.ack``."""
        return self.sync.ack(delivery)

    async def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """``MemoryQueue.ack_many``."""
        return self.sync.ack_many(deliveries)

    async def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """``MemoryQueue.nack``."""
        return self.sync.nack(delivery, delay=delay)

    async def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """``MemoryQueue.extend``."""
        return self.sync.extend(delivery, by=by)

    async def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """``MemoryQueue.dead_letters``."""
        return self.sync.dead_letters(topic, group)

    def stored(self, topic: str) -> int:
        """``MemoryQueue.stored``: how many messages of ``topic`` are held."""
        return self.sync.stored(topic)

    async def aclose(self) -> None:
        """Nothing to release; present for the port."""
        self.sync.close()
