"""The queue contract kit against RedisQueue on the shared Redis and on a Redis Cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import attrs
import pytest
import redis
from redis.cluster import RedisCluster

from portside.adapters.redis import RedisQueue, connect
from portside.adapters.redis._queue._layout import TopicKeys
from portside.adapters.testing import RedisQueueFaults, ThrowawayCluster, check_queue_contract
from portside.ports import Clock, QueuePort
from portside.ports.queue_rules import QueueOptions


@pytest.fixture(name="client")
def _client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture(name="cluster")
def _cluster(redis_cluster: ThrowawayCluster) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url.replace("+cluster", ""))
    yield client
    client.close()


def _check_on(
    client: redis.Redis | RedisCluster, max_examples: int, queue: type[RedisQueue] = RedisQueue
) -> None:
    """Run the kit on queues over ``client``, each in a fresh namespace, then delete their keys."""
    prefix = f"pstest:qkit:{uuid.uuid4().hex}"
    made = 0

    def factory(clock: Clock, options: QueueOptions) -> QueuePort:
        nonlocal made
        made += 1
        return queue(client, clock, options, f"{prefix}:{made}")

    try:
        check_queue_contract(
            factory, faults=RedisQueueFaults(), max_examples=max_examples, steps=30
        )
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    assert made > 0


@pytest.mark.services
def test_redis_queue_meets_the_contract(client: redis.Redis) -> None:
    """RedisQueue on a manual clock behaves exactly like the in-memory model."""
    _check_on(client, max_examples=25)


@pytest.mark.services
@pytest.mark.slow
def test_redis_queue_on_a_cluster_meets_the_contract(cluster: RedisCluster) -> None:
    """RedisQueue on a RedisCluster client behaves exactly like the in-memory model."""
    _check_on(cluster, max_examples=20)


@attrs.define
class _UntaggedQueue(RedisQueue):
    """A negative control: the topic's keys without their hash tag, each in its own slot."""

    def _topic_keys(self, topic: str) -> TopicKeys:
        base = f"{self.namespace}:{len(topic)}:{topic}"
        return TopicKeys((base + ":s").encode(), (base + ":groups").encode(), base)


@pytest.mark.services
@pytest.mark.slow
def test_a_layout_without_the_topic_tag_fails_the_kit_on_a_cluster(cluster: RedisCluster) -> None:
    """The kit on the cluster catches scripts whose keys would live in different slots."""
    # The adapter fails (its scripts' keys span slots) where the model succeeds.
    with pytest.raises(AssertionError, match=r"<Failure: red.*> == <Success"):
        _check_on(cluster, max_examples=5, queue=_UntaggedQueue)
