"""build_async_services on a real Redis: the async adapters, their health, the async worker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from returns.result import Success

from portside.adapters.app import (
    acheck_services,
    build_async_services,
    load_settings,
    run_async_worker,
)
from portside.adapters.memory import MemoryDatabase
from portside.adapters.redis import AsyncRedisCache, AsyncRedisQueue
from portside.adapters.testing import DEFAULT_REDIS_URL, kit_entities, require_server
from portside.domain import Delivery

pytestmark = pytest.mark.services


@pytest.fixture(name="redis_url")
def _redis_url() -> str:
    return require_server("Redis", "REDIS_URL", DEFAULT_REDIS_URL)


def test_redis_url_gives_the_async_redis_adapters_and_honest_health(redis_url: str) -> None:
    """REDIS_URL: AsyncRedisCache and AsyncRedisQueue; cache ok, queue ok or a warning."""
    namespace = f"aservices-{uuid.uuid4().hex[:8]}"
    settings = load_settings({"REDIS_URL": redis_url, "PORTSIDE_NAMESPACE": namespace})
    entities, _item = kit_entities("aservices_redis")
    services = build_async_services(settings, database=MemoryDatabase(entities))

    async def scenario() -> None:
        async with services:
            assert isinstance(services.cache, AsyncRedisCache)
            assert isinstance(services.queue, AsyncRedisQueue)
            assert services.adapters["cache"].startswith("redis (")
            assert await services.cache.set("k", b"v", ttl=5) == Success(None)
            rows = {row.service: row for row in await acheck_services(services, max_age=0)}
            assert rows["cache"].status == "ok"
            queue_status = rows["queue"].status
            assert queue_status == "ok" or queue_status.startswith("warning ("), queue_status
            assert "in-memory" not in queue_status
            await services.cache.clear()

    asyncio.run(scenario())
    entities.dispose()


def test_the_async_worker_drains_a_redis_queue_with_concurrent_handlers(redis_url: str) -> None:
    """Forty messages on AsyncRedisQueue, eight handlers at a time: each acked once."""
    namespace = f"aworker-{uuid.uuid4().hex[:8]}"
    queue = AsyncRedisQueue.from_url(redis_url, namespace=namespace)
    seen: list[bytes] = []

    async def handler(delivery: Delivery) -> None:
        await asyncio.sleep(0.005)
        seen.append(delivery.message.body)

    async def scenario() -> object:
        assert isinstance(await queue.receive("t", "g", "probe"), Success)
        for i in range(40):
            (await queue.publish("t", f"m{i}".encode())).unwrap()
        report = await run_async_worker(
            queue, "t", "g", handler, concurrency=8, wait=0, drain=True, handle_signals=False
        )
        left = (await queue.receive("t", "g", "after", max_messages=50)).unwrap()
        assert left == []
        await queue.aclose()
        return report

    report = asyncio.run(scenario())
    assert sorted(seen) == sorted(f"m{i}".encode() for i in range(40))
    assert (report.handled, report.acked) == (40, 40)  # type: ignore[attr-defined]
