"""RedisQueue's lease bookkeeping on a real Redis: batch leases, records, and deletion.

The contract kit proves the behaviour equal to the model; these tests look at what is
left in Redis, so that storage stays bounded and acked entries are deleted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from returns.result import Success

from portside.adapters.memory import ManualClock
from portside.adapters.redis import RedisQueue, connect
from portside.domain import InvalidRequest
from portside.ports.queue_rules import QueueOptions


@pytest.fixture(name="client")
def _client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture(name="namespace")
def _namespace(client: redis.Redis) -> Iterator[str]:
    namespace = f"pstest:qlease:{uuid.uuid4().hex}"
    yield namespace
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(key)


def _queue(client: redis.Redis, namespace: str, clock: ManualClock, lease: float) -> RedisQueue:
    return RedisQueue(client, clock, QueueOptions(lease_timeout=lease), namespace)


def _lease_keys(queue: RedisQueue, topic: str, group: str) -> tuple[bytes, bytes]:
    keys = queue._topic_keys(topic).group(group)
    return keys[2], keys[3]


def _bookkeeping(client: redis.Redis, queue: RedisQueue, group: str) -> tuple[int, int]:
    leases, records = _lease_keys(queue, "t", group)
    return int(client.zcard(leases)), int(client.hlen(records))


@pytest.mark.services
def test_acks_leave_no_lease_behind(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """After single and batch acks no lease, record or stream entry is left."""
    queue = _queue(client, namespace, manual_clock, 30.0)
    queue.publish("t", b"one").unwrap()
    [one] = queue.receive("t", "g", "c").unwrap()
    assert _bookkeeping(client, queue, "g") == (1, 0)
    assert queue.ack(one) == Success(None)
    queue.publish_many("t", [b"a", b"b", b"c"]).unwrap()
    batch = queue.receive("t", "g", "c", max_messages=3).unwrap()
    assert _bookkeeping(client, queue, "g") == (1, 0)  # one lease for the whole read
    assert len({d.receipt for d in batch}) == 3  # yet a receipt of its own per message
    assert queue.ack(batch[1]) == Success(None)
    assert _bookkeeping(client, queue, "g") == (1, 0)  # the others still hold it
    assert queue.ack_many([batch[0], batch[2]]) == Success(2)
    assert _bookkeeping(client, queue, "g") == (0, 0)
    assert queue.stored("t") == Success(0)


@pytest.mark.services
def test_an_extended_message_outlives_its_batch_lease(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """Extending one message of a batch keeps it leased when the rest fall due."""
    queue = _queue(client, namespace, manual_clock, 10.0)
    queue.publish_many("t", [b"a", b"b"]).unwrap()
    first, second = queue.receive("t", "g", "c", max_messages=2).unwrap()
    longer = queue.extend(second, by=60.0).unwrap()
    manual_clock.advance(11.0)
    [again] = queue.receive("t", "g", "other", max_messages=2).unwrap()
    assert (again.message.body, again.attempt) == (b"a", 2)
    assert isinstance(queue.ack(first).failure(), InvalidRequest)
    assert queue.ack_many([again, longer]) == Success(2)
    assert _bookkeeping(client, queue, "g") == (0, 0)
    assert queue.stored("t") == Success(0)


@pytest.mark.services
def test_a_due_batch_not_taken_at_once_stays_due_and_ackable(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """When a batch falls due and only part is redelivered, the rest keep their receipt."""
    queue = _queue(client, namespace, manual_clock, 10.0)
    queue.publish_many("t", [b"a", b"b", b"c"]).unwrap()
    batch = queue.receive("t", "g", "c", max_messages=3).unwrap()
    manual_clock.advance(10.0)
    [again] = queue.receive("t", "g", "c").unwrap()
    assert (again.message.body, again.attempt) == (b"a", 2)
    # b and c were not taken: their first delivery may still be acked.
    assert queue.ack_many(batch) == Success(2)
    assert queue.ack(again) == Success(None)
    assert _bookkeeping(client, queue, "g") == (0, 0)
    assert queue.stored("t") == Success(0)


@pytest.mark.services
def test_a_later_group_does_not_keep_entries_it_never_needed(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """An entry published before a second group existed is deleted on the first's ack."""
    queue = _queue(client, namespace, manual_clock, 30.0)
    queue.publish("t", b"early").unwrap()
    [early] = queue.receive("t", "first", "c").unwrap()
    assert queue.receive("t", "second", "c") == Success([])
    queue.publish("t", b"both").unwrap()
    assert queue.ack(early) == Success(None)
    assert queue.stored("t") == Success(1)
    [both] = queue.receive("t", "first", "c").unwrap()
    assert queue.ack(both) == Success(None)
    assert queue.stored("t") == Success(1)  # the second group has not read it yet
    [late] = queue.receive("t", "second", "c").unwrap()
    assert queue.ack(late) == Success(None)
    assert queue.stored("t") == Success(0)


@pytest.mark.services
def test_entries_under_a_live_batch_lease_are_not_adopted(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """A new process does not take over a batch whose lease (on the queue's clock) runs."""
    queue = _queue(client, namespace, manual_clock, 0.05)
    queue.publish_many("t", [b"a", b"b"]).unwrap()
    batch = queue.receive("t", "g", "c", max_messages=2).unwrap()
    # Idle longer than a lease on the server's clock, but not on the queue's clock.
    time.sleep(0.1)
    restarted = _queue(client, namespace, manual_clock, 0.05)
    assert restarted.receive("t", "g", "c2", max_messages=2) == Success([])
    assert restarted.ack_many(batch) == Success(2)
    assert restarted.stored("t") == Success(0)


@pytest.mark.services
def test_a_group_that_read_but_did_not_ack_keeps_the_entry(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """An entry another group has pending survives this group's ack until that one acks."""
    queue = _queue(client, namespace, manual_clock, 30.0)
    for group in ("a", "b"):
        assert queue.receive("t", group, "c") == Success([])
    queue.publish("t", b"x").unwrap()
    [in_b] = queue.receive("t", "b", "c").unwrap()
    [in_a] = queue.receive("t", "a", "c").unwrap()
    assert queue.ack(in_a) == Success(None)
    assert queue.stored("t") == Success(1)
    assert queue.ack(in_b) == Success(None)
    assert queue.stored("t") == Success(0)


@pytest.mark.services
def test_a_group_whose_keys_vanished_is_created_again(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """After the queue's keys are deleted under a running adapter, receive recreates the group."""
    queue = _queue(client, namespace, manual_clock, 30.0)
    assert queue.receive("t", "g", "c") == Success([])
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(key)
    queue.publish("t", b"again").unwrap()
    [got] = queue.receive("t", "g", "c").unwrap()
    assert got.message.body == b"again"
    assert queue.ack(got) == Success(None)
