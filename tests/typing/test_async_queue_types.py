"""Type-level checks of the async queue port (run by mypy --strict, and imported by pytest)."""

from __future__ import annotations

import asyncio
from typing import assert_type

from returns.result import Result

from portside.adapters.memory import AsyncMemoryQueue, ManualClock
from portside.adapters.redis import AsyncRedisQueue
from portside.domain import DeadLetter, Delivery, ServiceError
from portside.ports import AsyncQueuePort


def test_async_queue_methods_await_to_results() -> None:
    """Awaiting an AsyncQueuePort method gives the QueuePort method's Result type."""

    async def scenario(queue: AsyncQueuePort) -> None:
        assert_type(await queue.publish("t", b"x"), Result[str, ServiceError])
        assert_type(await queue.publish_many("t", [b"x"]), Result[list[str], ServiceError])
        got = await queue.receive("t", "g", "c")
        assert_type(got, Result[list[Delivery], ServiceError])
        [delivery] = got.unwrap()
        assert_type(await queue.extend(delivery, by=1.0), Result[Delivery, ServiceError])
        assert_type(await queue.ack_many([delivery]), Result[int, ServiceError])
        assert_type(await queue.ack(delivery), Result[None, ServiceError])
        assert_type(await queue.dead_letters("t", "g"), Result[list[DeadLetter], ServiceError])
        await queue.aclose()

    async def both() -> None:
        fake = AsyncMemoryQueue(ManualClock())
        await fake.receive("t", "g", "c")
        await scenario(fake)

    asyncio.run(both())


def test_the_redis_queue_is_an_async_queue_port() -> None:
    """AsyncRedisQueue is accepted where an AsyncQueuePort is expected (checked by mypy)."""

    def accepts(queue: AsyncQueuePort) -> AsyncQueuePort:
        return queue

    assert callable(accepts)
    built: type[AsyncQueuePort] = AsyncRedisQueue
    assert built.__name__ == "AsyncRedisQueue"
