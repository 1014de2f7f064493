"""The cache and queue contract kits (sync and async) through Sentinel, as on one server.

Every client here is built from the set's ``redis+sentinel://`` URL: it asks the
sentinels where the primary is and talks to that server, so the kits prove the adapters
behave the same when the primary is found through Sentinel.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from portside.adapters.redis import (
    AsyncRedisCache,
    AsyncRedisQueue,
    RedisCache,
    RedisOptions,
    RedisQueue,
    connect,
    connect_async,
)
from portside.adapters.testing import (
    CacheTarget,
    EventLoopThread,
    RedisQueueFaults,
    ThrowawaySentinel,
    check_queue_contract,
    run_cache_contract,
)
from portside.ports import Clock, QueuePort
from portside.ports.queue_rules import QueueOptions

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(name="client")
def _client(redis_sentinel: ThrowawaySentinel) -> Iterator[redis.Redis]:
    client = connect(redis_sentinel.url)
    yield client
    client.close()


def test_the_client_reaches_the_primary_the_sentinels_name(
    client: redis.Redis, redis_sentinel: ThrowawaySentinel
) -> None:
    """A Sentinel URL's client talks to the current primary, not to the replica."""
    assert client.info("replication")["role"] == "master"
    assert client.connection_pool.get_master_address()[1] == redis_sentinel.primary_port()  # type: ignore[attr-defined]


def test_redis_cache_passes_the_kit_through_sentinel(client: redis.Redis) -> None:
    """RedisCache on the Sentinel-found primary agrees with the model, real TTLs included."""
    run_cache_contract(
        CacheTarget(lambda ns: RedisCache(client, namespace=ns)), max_examples=10, steps=25
    )
    assert list(client.scan_iter(match="kit-*", count=1000)) == [], "the kit left keys"


@pytest.fixture(name="runner", scope="module")
def _runner() -> Iterator[EventLoopThread]:
    runner = EventLoopThread()
    yield runner
    runner.close()


@pytest.fixture(name="aio")
def _aio(redis_sentinel: ThrowawaySentinel, runner: EventLoopThread) -> Iterator[aioredis.Redis]:
    # Built and used on the runner's loop only: a redis.asyncio pool belongs to one loop.
    aio: aioredis.Redis = runner.run(_connect_async(redis_sentinel.url))
    yield aio
    runner.run(aio.aclose())


async def _connect_async(url: str, options: RedisOptions | None = None) -> aioredis.Redis:
    return connect_async(url, options)


@pytest.fixture(name="aio_queue")
def _aio_queue(
    redis_sentinel: ThrowawaySentinel, runner: EventLoopThread
) -> Iterator[aioredis.Redis]:
    # The queue's own settings (from_url's): a loaded machine took longer than the
    # cache's half second to answer a script (TimedOut in the kit).
    options = RedisOptions(socket_timeout=5.0, connect_timeout=1.0)
    aio: aioredis.Redis = runner.run(_connect_async(redis_sentinel.url, options))
    yield aio
    runner.run(aio.aclose())


def test_async_redis_cache_passes_the_kit_through_sentinel(
    client: redis.Redis, aio: aioredis.Redis, runner: EventLoopThread
) -> None:
    """AsyncRedisCache on a redis.asyncio Sentinel client agrees with the model."""
    target = CacheTarget(lambda ns: runner.blocking(AsyncRedisCache(aio, namespace=ns)))
    run_cache_contract(target, max_examples=8, steps=25)
    assert list(client.scan_iter(match="kit-*", count=1000)) == [], "the kit left keys"


def test_async_redis_queue_meets_the_contract_through_sentinel(
    client: redis.Redis, aio_queue: aioredis.Redis, runner: EventLoopThread
) -> None:
    """AsyncRedisQueue on a redis.asyncio Sentinel client behaves like the in-memory model."""
    prefix = f"pstest:aqkit:{uuid.uuid4().hex}"
    made = 0

    def factory(clock: Clock, options: QueueOptions) -> QueuePort:
        nonlocal made
        made += 1
        queue = AsyncRedisQueue(aio_queue, clock, options, f"{prefix}:{made}")
        return runner.blocking_queue(queue)

    try:
        check_queue_contract(factory, faults=RedisQueueFaults(), max_examples=12, steps=30)
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    assert made > 0


def test_redis_queue_meets_the_contract_through_sentinel(client: redis.Redis) -> None:
    """RedisQueue on the Sentinel-found primary behaves exactly like the in-memory model."""
    prefix = f"pstest:qkit:{uuid.uuid4().hex}"
    made = 0

    def factory(clock: Clock, options: QueueOptions) -> QueuePort:
        nonlocal made
        made += 1
        return RedisQueue(client, clock, options, f"{prefix}:{made}")

    try:
        check_queue_contract(factory, faults=RedisQueueFaults(), max_examples=20, steps=30)
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    assert made > 0
