"""MemoryQueue: the reference model's semantics, on a manual clock."""

from __future__ import annotations

import threading

import pytest
from returns.result import Failure, Success

from portside.adapters.clock import SystemClock
from portside.adapters.memory import ManualClock, MemoryQueue
from portside.domain import InvalidRequest
from portside.ports.queue_rules import REASON_LEASE_EXPIRED, REASON_NACKED, QueueOptions


@pytest.fixture(name="queue")
def _queue(manual_clock: ManualClock) -> MemoryQueue:
    queue = MemoryQueue(manual_clock, QueueOptions(lease_timeout=10.0, max_deliveries=3))
    # Groups exist from their first receive; create two before publishing.
    assert queue.receive("t", "g", "c").unwrap() == []
    assert queue.receive("t", "h", "c").unwrap() == []
    return queue


def test_publish_then_receive_returns_the_message(queue: MemoryQueue) -> None:
    """A published message is delivered once with its body, headers and attempt 1."""
    mid = queue.publish("t", b"hello", headers={"k": "v"}).unwrap()
    [got] = queue.receive("t", "g", "c").unwrap()
    assert (got.message.id, got.message.body, got.message.headers) == (mid, b"hello", {"k": "v"})
    assert (got.attempt, got.consumer, got.group) == (1, "c", "g")
    assert got.lease_expires_at == queue.clock.now() + 10.0
    assert queue.receive("t", "g", "c2").unwrap() == []


def test_each_group_gets_every_message(queue: MemoryQueue) -> None:
    """Fan-out: two groups each receive the same message."""
    queue.publish("t", b"x").unwrap()
    assert [d.message.body for d in queue.receive("t", "g", "c").unwrap()] == [b"x"]
    assert [d.message.body for d in queue.receive("t", "h", "c").unwrap()] == [b"x"]


def test_a_later_group_starts_after_the_messages_already_published(queue: MemoryQueue) -> None:
    """A group created when the topic already has groups gets only newer messages."""
    queue.publish("t", b"old").unwrap()
    assert queue.receive("t", "late", "c").unwrap() == []
    queue.publish("t", b"new").unwrap()
    assert [d.message.body for d in queue.receive("t", "late", "c").unwrap()] == [b"new"]


def test_the_first_group_gets_what_was_published_before_it(manual_clock: ManualClock) -> None:
    """Messages published before any receive are kept and go to the topic's first group."""
    queue = MemoryQueue(manual_clock)
    queue.publish("t", b"a", dedupe_key="k").unwrap()
    queue.publish_many("t", [b"b", b"c"]).unwrap()
    assert queue.stored("t") == 3
    got = queue.receive("t", "first", "c", max_messages=5).unwrap()
    assert [d.message.body for d in got] == [b"a", b"b", b"c"]
    assert queue.receive("t", "second", "c", max_messages=5).unwrap() == []
    assert queue.ack_many(got) == Success(3)
    assert queue.stored("t") == 0


def test_a_dedupe_key_used_before_any_group_still_names_a_kept_message(
    manual_clock: ManualClock,
) -> None:
    """A publish deduplicated against a backlog message returns the message that is kept."""
    queue = MemoryQueue(manual_clock)
    first = queue.publish("t", b"once", dedupe_key="k").unwrap()
    assert queue.publish("t", b"again", dedupe_key="k") == Success(first)
    [got] = queue.receive("t", "g", "c", max_messages=5).unwrap()
    assert (got.message.id, got.message.body) == (first, b"once")


def test_deliveries_do_not_share_headers_with_the_stored_message(queue: MemoryQueue) -> None:
    """Mutating a delivery's headers changes neither a redelivery nor a dead letter."""
    queue.publish("t", b"x", headers={"k": "v"}).unwrap()
    [first] = queue.receive("t", "g", "c").unwrap()
    first.message.headers["k"] = "changed"  # type: ignore[index]
    queue.nack(first).unwrap()
    [again] = queue.receive("t", "g", "c").unwrap()
    assert again.message.headers == {"k": "v"}
    again.message.headers["k"] = "changed"  # type: ignore[index]
    queue.clock.sleep(11.0)
    [last] = queue.receive("t", "g", "c").unwrap()
    queue.nack(last).unwrap()
    [letter] = queue.dead_letters("t", "g").unwrap()
    letter.message.headers["k"] = "changed"  # type: ignore[index]
    assert queue.dead_letters("t", "g").unwrap()[0].message.headers == {"k": "v"}


def test_first_deliveries_follow_publish_order(queue: MemoryQueue) -> None:
    """New messages are delivered in the order they were published."""
    bodies = [bytes([i]) for i in range(5)]
    queue.publish_many("t", bodies).unwrap()
    got = queue.receive("t", "g", "c", max_messages=3).unwrap()
    got += queue.receive("t", "g", "c", max_messages=3).unwrap()
    assert [d.message.body for d in got] == bodies


def test_expired_lease_is_redelivered_with_a_higher_attempt(queue: MemoryQueue) -> None:
    """Past its lease, a message goes to the next receiver with attempt 2."""
    queue.publish("t", b"x").unwrap()
    first = queue.receive("t", "g", "c1").unwrap()[0]
    queue.clock.sleep(9.0)
    assert queue.receive("t", "g", "c2").unwrap() == []
    queue.clock.sleep(1.0)
    [again] = queue.receive("t", "g", "c2").unwrap()
    assert (again.message.id, again.attempt, again.consumer) == (first.message.id, 2, "c2")
    assert isinstance(queue.ack(first), Failure)
    assert queue.ack(again) == Success(None)


def test_own_expired_deliveries_come_first(queue: MemoryQueue) -> None:
    """A restarted consumer gets its own unacked messages back before new ones."""
    queue.publish("t", b"a").unwrap()
    queue.receive("t", "g", "other").unwrap()
    queue.publish("t", b"b").unwrap()
    queue.receive("t", "g", "me").unwrap()
    queue.publish("t", b"c").unwrap()
    queue.clock.sleep(10.0)
    got = queue.receive("t", "g", "me", max_messages=3).unwrap()
    assert [d.message.body for d in got] == [b"b", b"a", b"c"]


def test_ack_removes_the_message_for_good(queue: MemoryQueue) -> None:
    """An acked message is never delivered again and is dropped once every group acked."""
    queue.publish("t", b"x").unwrap()
    delivery = queue.receive("t", "g", "c").unwrap()[0]
    assert queue.ack(delivery) == Success(None)
    assert queue.stored("t") == 1
    queue.clock.sleep(100.0)
    assert queue.receive("t", "g", "c").unwrap() == []
    queue.ack(queue.receive("t", "h", "c").unwrap()[0]).unwrap()
    assert queue.stored("t") == 0


def test_ack_twice_is_invalid(queue: MemoryQueue) -> None:
    """Acking an already acked delivery is InvalidRequest naming the problem."""
    queue.publish("t", b"x").unwrap()
    delivery = queue.receive("t", "g", "c").unwrap()[0]
    queue.ack(delivery).unwrap()
    error = queue.ack(delivery).failure()
    assert isinstance(error, InvalidRequest)
    assert "not pending" in error.message


def test_ack_of_a_delivery_from_another_group_is_invalid(queue: MemoryQueue) -> None:
    """A delivery relabelled with another group's name does not ack that group's copy."""
    import attrs

    queue.publish("t", b"x").unwrap()
    from_g = queue.receive("t", "g", "c").unwrap()[0]
    queue.receive("t", "h", "c").unwrap()
    forged = attrs.evolve(from_g, group="h")
    assert isinstance(queue.ack(forged).failure(), InvalidRequest)
    queue.clock.sleep(10.0)
    assert len(queue.receive("t", "h", "c").unwrap()) == 1


def test_nack_with_delay_redelivers_when_due(queue: MemoryQueue) -> None:
    """A nacked message comes back only after its delay, with the attempt counted."""
    queue.publish("t", b"x").unwrap()
    delivery = queue.receive("t", "g", "c").unwrap()[0]
    assert queue.nack(delivery, delay=5.0) == Success(None)
    assert queue.receive("t", "g", "c").unwrap() == []
    queue.clock.sleep(5.0)
    assert [d.attempt for d in queue.receive("t", "g", "c").unwrap()] == [2]


def test_negative_delay_is_invalid_and_changes_nothing(queue: MemoryQueue) -> None:
    """A nack with a negative delay is InvalidRequest and the lease stays live."""
    queue.publish("t", b"x").unwrap()
    delivery = queue.receive("t", "g", "c").unwrap()[0]
    error = queue.nack(delivery, delay=-1.0).failure()
    assert isinstance(error, InvalidRequest)
    assert "delay" in error.message
    assert queue.ack(delivery) == Success(None)


def test_extend_pushes_the_lease(queue: MemoryQueue) -> None:
    """An extended lease is not redelivered at the original expiry."""
    queue.publish("t", b"x").unwrap()
    delivery = queue.receive("t", "g", "c").unwrap()[0]
    queue.clock.sleep(8.0)
    longer = queue.extend(delivery, by=20.0).unwrap()
    assert longer.lease_expires_at == queue.clock.now() + 20.0
    queue.clock.sleep(15.0)
    assert queue.receive("t", "g", "c2").unwrap() == []
    assert queue.ack(longer) == Success(None)


def test_dead_lettered_exactly_once_after_max_deliveries(queue: MemoryQueue) -> None:
    """After the last allowed lease runs out the message is a dead letter, once."""
    queue.publish("t", b"x").unwrap()
    for attempt in (1, 2, 3):
        [delivery] = queue.receive("t", "g", "c").unwrap()
        assert delivery.attempt == attempt
        queue.clock.sleep(10.0)
    assert queue.receive("t", "g", "c").unwrap() == []
    assert queue.receive("t", "g", "c").unwrap() == []
    [letter] = queue.dead_letters("t", "g").unwrap()
    assert (letter.message.body, letter.reason, letter.attempts) == (b"x", REASON_LEASE_EXPIRED, 3)
    assert queue.dead_letters("t", "h").unwrap() == []


def test_nack_of_the_last_delivery_dead_letters_it(queue: MemoryQueue) -> None:
    """Nacking the max_deliveries-th delivery dead-letters it immediately."""
    queue.publish("t", b"x").unwrap()
    for _ in range(3):
        queue.nack(queue.receive("t", "g", "c").unwrap()[0]).unwrap()
    assert [dl.reason for dl in queue.dead_letters("t", "g").unwrap()] == [REASON_NACKED]
    assert queue.receive("t", "g", "c").unwrap() == []


def test_dedupe_key_stores_once_within_the_window(queue: MemoryQueue) -> None:
    """Publishing with a seen dedupe key returns the first id and stores nothing."""
    first = queue.publish("t", b"x", dedupe_key="k").unwrap()
    assert queue.publish("t", b"y", dedupe_key="k").unwrap() == first
    assert len(queue.receive("t", "g", "c", max_messages=5).unwrap()) == 1
    queue.clock.sleep(queue.options.dedupe_window)
    assert queue.publish("t", b"z", dedupe_key="k").unwrap() != first


@pytest.mark.parametrize(
    ("topic", "body", "word"),
    [("", b"x", "empty"), ("t" * 201, b"x", "longer"), ("a\nb", b"x", "non-printable")],
)
def test_bad_topic_names_are_invalid(
    queue: MemoryQueue, topic: str, body: bytes, word: str
) -> None:
    """Empty, over-long or non-printable names are InvalidRequest naming the problem."""
    error = queue.publish(topic, body).failure()
    assert isinstance(error, InvalidRequest)
    assert word in error.message


def test_body_over_the_maximum_is_invalid(manual_clock: ManualClock) -> None:
    """A body over max_body_bytes is InvalidRequest and nothing is published."""
    queue = MemoryQueue(manual_clock, QueueOptions(max_body_bytes=4))
    queue.receive("t", "g", "c").unwrap()
    assert "over the maximum" in queue.publish("t", b"12345").failure().message
    assert queue.receive("t", "g", "c").unwrap() == []


def test_bad_batch_publishes_nothing(queue: MemoryQueue) -> None:
    """One bad body in publish_many fails the batch and publishes none of it."""
    error = queue.publish_many("t", [b"ok", "text"]).failure()  # type: ignore[list-item]
    assert isinstance(error, InvalidRequest)
    assert queue.receive("t", "g", "c").unwrap() == []


def test_ack_many_counts_only_live_deliveries(queue: MemoryQueue) -> None:
    """The ack_many call acks live deliveries and skips ones already acked."""
    queue.publish_many("t", [b"a", b"b"]).unwrap()
    got = queue.receive("t", "g", "c", max_messages=2).unwrap()
    queue.ack(got[0]).unwrap()
    assert queue.ack_many(got) == Success(1)


def test_receive_wait_on_manual_clock_advances_time(queue: MemoryQueue) -> None:
    """A receive(wait=) on a manual clock advances it instead of sleeping."""
    queue.publish("t", b"x").unwrap()
    queue.receive("t", "g", "c").unwrap()
    before = queue.clock.now()
    got = queue.receive("t", "g", "c", wait=10.0).unwrap()
    assert queue.clock.now() == before + 10.0
    assert [d.attempt for d in got] == [2]


def test_receive_wait_wakes_on_publish_from_another_thread() -> None:
    """On the system clock, a waiting receive returns when another thread publishes."""
    queue = MemoryQueue(SystemClock())
    queue.receive("t", "g", "c").unwrap()
    started = threading.Event()

    def publish_later() -> None:
        started.wait()
        queue.publish("t", b"x").unwrap()

    thread = threading.Thread(target=publish_later)
    thread.start()
    started.set()
    got = queue.receive("t", "g", "c", wait=30.0).unwrap()
    thread.join()
    assert [d.message.body for d in got] == [b"x"]


def test_one_consumer_per_message_under_threads() -> None:
    """Concurrent receivers in one group never get the same message at once."""
    queue = MemoryQueue(SystemClock(), QueueOptions(lease_timeout=600.0))
    queue.receive("t", "g", "c").unwrap()
    queue.publish_many("t", [str(i).encode() for i in range(400)]).unwrap()
    seen: list[bytes] = []
    lock = threading.Lock()

    def consume(name: str) -> None:
        while got := queue.receive("t", "g", name, max_messages=3).unwrap():
            with lock:
                seen.extend(d.message.body for d in got)

    threads = [threading.Thread(target=consume, args=(f"c{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == sorted(str(i).encode() for i in range(400))


def test_a_delayed_message_waits_for_its_time_then_comes_as_attempt_one(
    manual_clock: ManualClock,
) -> None:
    """publish(delay=60) is not delivered before 60 s, then as a first delivery."""
    queue = MemoryQueue(manual_clock, QueueOptions(lease_timeout=120.0))
    queue.receive("t", "g", "c").unwrap()
    queue.publish("t", b"later", delay=60.0).unwrap()
    queue.publish("t", b"now").unwrap()
    assert [d.message.body for d in queue.receive("t", "g", "c", max_messages=5).unwrap()] == [
        b"now"
    ]
    manual_clock.advance(59.0)
    assert queue.receive("t", "g", "c").unwrap() == []
    manual_clock.advance(1.0)
    [later] = queue.receive("t", "g", "c").unwrap()
    assert (later.message.body, later.attempt) == (b"later", 1)
    assert queue.ack(later) == Success(None)
