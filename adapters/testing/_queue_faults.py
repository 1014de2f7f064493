"""Simulated server losses for the queue contract kit: one per adapter.

The kit's ``lose_topic`` and ``lose_leases`` rules make the adapter under test lose
state the way a server can (a restart without persistence, eviction, deleted keys) and
the in-memory model lose the same, then check that both recover alike.
"""

from __future__ import annotations

from typing import Any, Protocol

from portside.adapters.memory._async_queue import AsyncMemoryQueue
from portside.adapters.memory._queue import MemoryQueue
from portside.adapters.testing._async_bridge import BlockingQueue
from portside.ports._queue import QueuePort

__all__ = ["MemoryQueueFaults", "QueueFaults", "RedisQueueFaults"]


class QueueFaults(Protocol):
    """How the kit makes one kind of queue adapter lose state."""

    def lose_topic(self, queue: QueuePort, topic: str) -> None:
        """Delete everything the adapter stores for ``topic``."""
        ...

    def lose_leases(self, queue: QueuePort, topic: str, group: str) -> None:
        """Delete the group's lease bookkeeping, keeping its messages and pending list."""
        ...


def _memory(queue: QueuePort) -> MemoryQueue:
    """The ``MemoryQueue`` behind ``queue`` (itself, or an ``AsyncMemoryQueue`` bridged)."""
    inner = queue.inner if isinstance(queue, BlockingQueue) else queue
    found = inner.sync if isinstance(inner, AsyncMemoryQueue) else inner
    assert isinstance(found, MemoryQueue), f"not a memory queue: {queue!r}"
    return found


class MemoryQueueFaults:
    """``QueueFaults`` of ``MemoryQueue`` (its subclasses, and ``AsyncMemoryQueue`` bridged)."""

    def lose_topic(self, queue: QueuePort, topic: str) -> None:
        """``MemoryQueue.simulate_lost_topic``."""
        _memory(queue).simulate_lost_topic(topic)

    def lose_leases(self, queue: QueuePort, topic: str, group: str) -> None:
        """``MemoryQueue.simulate_lost_leases``."""
        _memory(queue).simulate_lost_leases(topic, group)


class RedisQueueFaults:
    """``QueueFaults`` of ``RedisQueue`` (and ``AsyncRedisQueue`` bridged): deletes its keys."""

    def lose_topic(self, queue: QueuePort, topic: str) -> None:
        """Delete every key of the topic (stream, groups, leases, dead letters, dedupe)."""
        found = _redis(queue)
        base = found._topic_keys(topic).base
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in base) + ":*"
        if isinstance(queue, BlockingQueue):
            queue.runner.run(_unlink_matching(found.client, pattern))
            return
        for key in found.client.scan_iter(match=pattern, count=1000):
            found.client.delete(key)

    def lose_leases(self, queue: QueuePort, topic: str, group: str) -> None:
        """Delete the group's lease set, records and last-delivery set."""
        found = _redis(queue)
        keys = found._topic_keys(topic).group(group)
        deleted = found.client.delete(keys.leases, keys.records, keys.final)
        if isinstance(queue, BlockingQueue):
            queue.runner.run(deleted)


def _redis(queue: QueuePort) -> Any:
    """The ``RedisQueue`` or ``AsyncRedisQueue`` behind ``queue`` (bridged or not)."""
    from portside.adapters.redis._queue._adapter import RedisQueue  # needs the extra
    from portside.adapters.redis._queue._async_adapter import AsyncRedisQueue

    inner = queue.inner if isinstance(queue, BlockingQueue) else queue
    assert isinstance(inner, RedisQueue | AsyncRedisQueue), f"not a Redis queue: {queue!r}"
    return inner


async def _unlink_matching(client: Any, pattern: str) -> None:
    async for key in client.scan_iter(match=pattern, count=1000):
        await client.delete(key)
