"""The queue contract kit against RedisQueue on the shared Redis (unique namespaces)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from portside.adapters.redis import RedisQueue, connect
from portside.adapters.testing import RedisQueueFaults, check_queue_contract
from portside.ports import Clock, QueuePort
from portside.ports.queue_rules import QueueOptions


@pytest.fixture(name="client")
def _client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.mark.services
def test_redis_queue_meets_the_contract(client: redis.Redis) -> None:
    """RedisQueue on a manual clock behaves exactly like the in-memory model."""
    prefix = f"pstest:qkit:{uuid.uuid4().hex}"
    made = 0

    def factory(clock: Clock, options: QueueOptions) -> QueuePort:
        nonlocal made
        made += 1
        return RedisQueue(client, clock, options, f"{prefix}:{made}")

    try:
        check_queue_contract(factory, faults=RedisQueueFaults(), max_examples=25, steps=30)
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    assert made > 0
