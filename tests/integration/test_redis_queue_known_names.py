"""RedisQueue on names it has already used still checks every argument.

The queue caches encoded keys and script calls per name; these tests warm those
caches first and then send bad input on the same names, so a cache that stood in for
a check would answer something else.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from returns.result import Failure, Result, Success

from portside.adapters.memory import ManualClock
from portside.adapters.redis import RedisQueue, connect
from portside.domain import Delivery, ServiceError
from portside.ports.queue_rules import QueueOptions

MAX_BODY = 64


@pytest.fixture(name="queue")
def _queue(redis_url: str, manual_clock: ManualClock) -> Iterator[RedisQueue]:
    client = connect(redis_url)
    namespace = f"pstest:qfast:{uuid.uuid4().hex}"
    queue = RedisQueue(client, manual_clock, QueueOptions(max_body_bytes=MAX_BODY), namespace)
    # Warm every cache: the names below are now known to be valid.
    queue.publish("t", b"warm").unwrap()
    [delivery] = queue.receive("t", "g", "c").unwrap()
    queue.ack(delivery).unwrap()
    yield queue
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(key)
    client.close()


def _invalid(result: Result[Any, ServiceError], words: str) -> None:
    assert isinstance(result, Failure), result
    assert result.failure().kind == "InvalidRequest"
    assert words in result.failure().message, result.failure().message


@pytest.mark.services
@pytest.mark.parametrize(
    ("body", "options", "words"),
    [
        (b"x" * (MAX_BODY + 1), {}, "over the maximum"),
        ("text", {}, "body must be bytes"),
        (None, {}, "body must be bytes"),
        (b"ok", {"headers": {"": "v"}}, "header name is empty"),
        (b"ok", {"headers": {"h": 1}}, "value must be a str"),
        (b"ok", {"dedupe_key": ""}, "dedupe key name is empty"),
    ],
)
def test_a_bad_publish_on_a_known_topic_is_refused_and_stores_nothing(
    queue: RedisQueue, body: object, options: dict[str, Any], words: str
) -> None:
    """A bad body, header or dedupe key on a cached topic is InvalidRequest; nothing stored."""
    _invalid(queue.publish("t", body, **options), words)  # type: ignore[arg-type]
    assert queue.stored("t") == Success(0)


@pytest.mark.services
def test_a_bytearray_body_on_a_known_topic_is_published_as_bytes(queue: RedisQueue) -> None:
    """A bytearray body on a known topic is published and comes back as bytes."""
    queue.publish("t", bytearray(b"buf")).unwrap()  # type: ignore[arg-type]
    [delivery] = queue.receive("t", "g", "c").unwrap()
    assert delivery.message.body == b"buf"


@pytest.mark.services
def test_an_invalid_topic_looked_up_elsewhere_is_not_taken_as_valid(queue: RedisQueue) -> None:
    """stored() of a bad topic name does not let a later publish to it skip the check."""
    for topic in ("", "a\nb", "x" * 201):
        queue.stored(topic)
        _invalid(queue.publish(topic, b"body"), "topic name")


@pytest.mark.services
@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"max_messages": 0}, "max_messages"),
        ({"max_messages": 1001}, "max_messages"),
        ({"max_messages": True}, "max_messages"),
        ({"max_messages": 1.0}, "max_messages"),
        ({"wait": -1}, "wait must be zero or more"),
        ({"wait": math.nan}, "wait must be finite"),
        ({"wait": math.inf}, "wait must be finite"),
        ({"wait": True}, "wait must be a number"),
        ({"wait": "1"}, "wait must be a number"),
    ],
)
def test_a_bad_receive_on_known_names_is_refused_and_leases_nothing(
    queue: RedisQueue, options: dict[str, Any], words: str
) -> None:
    """A bad count or wait on cached names is InvalidRequest and the message stays ready."""
    queue.publish("t", b"ready").unwrap()
    _invalid(queue.receive("t", "g", "c", **options), words)
    [delivery] = queue.receive("t", "g", "c").unwrap()
    assert (delivery.message.body, delivery.attempt) == (b"ready", 1)


@pytest.mark.services
def test_forged_deliveries_with_bad_names_are_refused_by_ack_and_ack_many(
    queue: RedisQueue,
) -> None:
    """A delivery whose consumer or group is invalid is InvalidRequest, and nothing is acked."""
    queue.publish_many("t", [b"1", b"2"]).unwrap()
    first, second = queue.receive("t", "g", "c", max_messages=2).unwrap()
    for bad in (attrs.evolve(first, consumer=""), attrs.evolve(first, group="g\x00")):
        _invalid(queue.ack(bad), "name")
        _invalid(queue.ack_many([second, bad]), "name")
    _invalid(queue.ack("not a delivery"), "expected a Delivery")  # type: ignore[arg-type]
    for junk in ([None], [object()], None, [second, None]):
        _invalid(queue.ack_many(junk), "Delivery")  # type: ignore[arg-type]
    assert queue.ack_many([first, second]) == Success(2)


@pytest.mark.services
def test_ack_many_groups_mixed_batches_by_topic_and_group(queue: RedisQueue) -> None:
    """A batch mixing topics, groups and consumers acks each delivery in its own group."""
    for group in ("g", "h"):
        queue.receive("u", group, "c").unwrap()
    queue.publish("t", b"t1").unwrap()
    queue.publish_many("u", [b"u1", b"u2"]).unwrap()
    batch: list[Delivery] = [
        *queue.receive("t", "g", "c").unwrap(),
        *queue.receive("u", "g", "c").unwrap(),
        *queue.receive("u", "h", "d", max_messages=2).unwrap(),
        *queue.receive("u", "g", "e").unwrap(),
    ]
    assert [d.message.body for d in batch] == [b"t1", b"u1", b"u1", b"u2", b"u2"]
    assert queue.ack_many(batch) == Success(5)
    assert (queue.stored("t"), queue.stored("u")) == (Success(0), Success(0))
