"""RedisQueue against a real Redis: storage stays bounded, restarts, recovery, waiting."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from returns.result import Success

from portside.adapters.memory import ManualClock, MemoryQueue
from portside.adapters.redis import (
    QueueNotDurable,
    RedisCache,
    RedisQueue,
    connect,
    queue_durability,
)
from portside.adapters.testing import RedisQueueFaults, TcpFaultProxy, throwaway_redis
from portside.domain import InvalidRequest, TimedOut, Unavailable
from portside.ports.queue_rules import QueueOptions


@pytest.fixture(name="client")
def _client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture(name="namespace")
def _namespace(client: redis.Redis) -> Iterator[str]:
    namespace = f"pstest:queue:{uuid.uuid4().hex}"
    yield namespace
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(key)


def _queue(client: redis.Redis, namespace: str, clock: ManualClock, **options: float) -> RedisQueue:
    return RedisQueue(client, clock, QueueOptions(**options), namespace)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "durable", "words"),
    [
        ({"appendonly": "yes", "appendfsync": "always"}, True, "everything acknowledged"),
        ({"appendonly": "yes", "appendfsync": "everysec"}, False, "set appendfsync always"),
        ({"appendonly": "no", "save": "3600 1"}, False, "since the last snapshot"),
        ({"appendonly": "no", "save": ""}, False, "every message is lost"),
        ({"maxmemory-policy": "allkeys-lru"}, False, "is allkeys-lru: set noeviction"),
        ({"maxmemory-policy": "volatile-ttl"}, False, "dedupe keys"),
    ],
)
def test_the_durability_report_says_what_survives_a_restart(
    settings: dict[str, str], durable: bool, words: str
) -> None:
    """Each persistence and eviction setting is named with what it can lose."""
    with throwaway_redis(durable=True) as server:
        client = connect(server.url)
        for name, value in settings.items():
            client.config_set(name, value)
        report = queue_durability(client).unwrap()
        client.close()
    assert report.durable is durable
    assert words in " ".join((report.summary, *report.problems))


@pytest.mark.services
def test_acked_messages_are_deleted_once_every_group_acked(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """The stream entry stays while one group still needs it and goes after the last ack."""
    queue = _queue(client, namespace, manual_clock)
    for group in ("a", "b"):
        assert queue.receive("t", group, "c") == Success([])
    queue.publish_many("t", [b"1", b"2"]).unwrap()
    got_a = queue.receive("t", "a", "c", max_messages=2).unwrap()
    assert queue.ack_many(got_a) == Success(2)
    assert queue.stored("t") == Success(2)
    got_b = queue.receive("t", "b", "c", max_messages=2).unwrap()
    assert queue.ack_many(got_b) == Success(2)
    assert queue.stored("t") == Success(0)


@pytest.mark.services
def test_publish_before_any_group_is_kept_for_the_first_group(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """Messages published before any receive go to the first group; acking deletes them."""
    queue = _queue(client, namespace, manual_clock)
    queue.publish("early", b"a", dedupe_key="k").unwrap()
    queue.publish_many("early", [b"b", b"c"]).unwrap()
    assert queue.stored("early") == Success(3)
    got = queue.receive("early", "first", "c", max_messages=5).unwrap()
    assert [d.message.body for d in got] == [b"a", b"b", b"c"]
    assert queue.receive("early", "second", "c", max_messages=5) == Success([])
    assert queue.ack_many(got) == Success(3)
    assert queue.stored("early") == Success(0)


@pytest.mark.services
def test_restarted_consumer_gets_its_own_messages_first(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """A new adapter instance for the same consumer gets its unacked messages back first."""
    first = _queue(client, namespace, manual_clock, lease_timeout=10.0)
    first.receive("t", "g", "me").unwrap()
    first.publish_many("t", [b"mine", b"new"]).unwrap()
    [mine] = first.receive("t", "g", "me").unwrap()
    first.close()
    manual_clock.advance(10.0)
    restarted = _queue(client, namespace, manual_clock, lease_timeout=10.0)
    got = restarted.receive("t", "g", "me", max_messages=2).unwrap()
    assert [(d.message.body, d.attempt) for d in got] == [(b"mine", 2), (b"new", 1)]
    assert isinstance(restarted.ack(mine).failure(), InvalidRequest)
    assert restarted.ack_many(got) == Success(2)


@pytest.mark.services
def test_pending_entries_without_a_lease_are_adopted(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """Entries read outside the adapter (no lease record) are reclaimed via XAUTOCLAIM."""
    queue = _queue(client, namespace, manual_clock, lease_timeout=0.05)
    queue.receive("t", "g", "c").unwrap()
    queue.publish("t", b"orphan").unwrap()
    stream = queue.stream_key("t")
    client.xreadgroup("g", "outsider", {stream: ">"}, count=1)
    # XAUTOCLAIM measures idleness on the server's own clock: let a lease pass there.
    time.sleep(0.1)
    fresh = _queue(client, namespace, manual_clock, lease_timeout=0.05)
    got = fresh.receive("t", "g", "c").unwrap()
    assert [(d.message.body, d.attempt) for d in got] == [(b"orphan", 2)]
    assert fresh.ack(got[0]) == Success(None)
    assert fresh.stored("t") == Success(0)


@pytest.mark.services
def test_receive_wait_wakes_when_a_message_arrives(client: redis.Redis, namespace: str) -> None:
    """A waiting receive returns the message another thread publishes meanwhile."""
    queue = RedisQueue(client, namespace=namespace)
    queue.receive("t", "g", "c").unwrap()
    blocked = threading.Event()

    def publish_soon() -> None:
        blocked.wait(5)
        queue.publish("t", b"late").unwrap()

    thread = threading.Thread(target=publish_soon)
    thread.start()
    blocked.set()
    got = queue.receive("t", "g", "c", wait=10.0).unwrap()
    thread.join()
    assert [d.message.body for d in got] == [b"late"]
    queue.ack(got[0]).unwrap()


@pytest.mark.services
def test_bad_input_writes_nothing(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """An oversized body or a bad name is InvalidRequest and the stream is unchanged."""
    queue = _queue(client, namespace, manual_clock, max_body_bytes=8)
    queue.receive("t", "g", "c").unwrap()
    assert "over the maximum" in queue.publish("t", b"123456789").failure().message
    assert "empty" in queue.publish("", b"1").failure().message
    assert isinstance(queue.publish_many("t", [b"ok", b"x" * 9]).failure(), InvalidRequest)
    assert queue.stored("t") == Success(0)


@pytest.mark.services
def test_dedupe_key_is_stored_once(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """Two publishes with one dedupe key store one message and return one id."""
    queue = _queue(client, namespace, manual_clock)
    queue.receive("t", "g", "c").unwrap()
    first = queue.publish("t", b"a", dedupe_key="order-1").unwrap()
    assert queue.publish("t", b"b", dedupe_key="order-1") == Success(first)
    assert queue.stored("t") == Success(1)
    ttl = client.pttl(queue.stream_key("t")[: -len(":s")] + ":dd:order-1")
    assert 0 < ttl <= queue.options.dedupe_window * 1000


@pytest.mark.services
def test_eviction_policy_warning_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """On a server that may evict keys, start-up logs a warning naming maxmemory-policy."""
    with throwaway_redis() as server:
        client = connect(server.url)
        client.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level(logging.WARNING, logger="portside.queue.redis"):
            RedisQueue(client).close()
        client.close()
    assert any("maxmemory-policy is allkeys-lru" in r.getMessage() for r in caplog.records)


def test_a_server_without_persistence_is_named_at_start_up_or_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Start-up warns that a restart loses every message; require_durable refuses instead."""
    with throwaway_redis() as server:
        with caplog.at_level(logging.WARNING, logger="portside.queue.redis"):
            RedisQueue.from_url(server.url).close()
        with pytest.raises(QueueNotDurable, match="every message is lost"):
            RedisQueue.from_url(server.url, require_durable=True)
    assert any("every message is lost" in r.getMessage() for r in caplog.records)


def test_durable_publish_is_confirmed_by_fsync_always_and_timed_out_without_it() -> None:
    """With appendfsync always a durable publish succeeds; on a server without it, TimedOut."""
    with throwaway_redis(durable=True) as server:
        queue = RedisQueue.from_url(server.url, require_durable=True, durable_publish=True)
        first = queue.publish("t", b"kept", dedupe_key="k").unwrap()
        assert queue.publish("t", b"again", dedupe_key="k") == Success(first)
        assert len(queue.publish_many("t", [b"a", b"b"]).unwrap()) == 2
        assert isinstance(queue.publish("t", b"plain"), Success)
        queue.close()
    with throwaway_redis() as server:
        queue = RedisQueue.from_url(server.url, durable_publish=True)
        result = queue.publish("t", b"unconfirmed")
        assert isinstance(result.failure(), TimedOut)
        assert "cannot confirm" in result.failure().message
        assert isinstance(queue.publish_many("t", [b"a"]).failure(), TimedOut)
        assert queue.stored("t") == Success(2)  # stored all the same, as TimedOut says
        queue.close()


def test_durable_publish_waits_for_a_replica() -> None:
    """With a replica and no fsync-always, a durable publish is confirmed by WAIT."""
    with throwaway_redis() as primary, throwaway_redis() as replica:
        replica_client = connect(replica.url)
        replica_client.replicaof("127.0.0.1", primary.port)
        queue = RedisQueue.from_url(primary.url, durable_publish=True)
        deadline = time.monotonic() + 10
        while replica_client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not connect"
            time.sleep(0.05)
        queue.check_durability().unwrap()
        assert isinstance(queue.publish("t", b"replicated"), Success)
        replica_client.close()
        queue.close()


@pytest.mark.parametrize("dedupe", [None, "key-1"])
@pytest.mark.services
def test_publish_after_an_ambiguous_failure(
    client: redis.Redis, namespace: str, dedupe: str | None
) -> None:
    """A reply lost after the write: retried only with a dedupe key; stored once either way."""
    port = client.connection_pool.connection_kwargs["port"]
    db = client.connection_pool.connection_kwargs.get("db", 0)
    with TcpFaultProxy("127.0.0.1", port) as proxy:
        through = connect(f"redis://127.0.0.1:{proxy.port}/{db}")
        queue = RedisQueue(through, namespace=namespace)
        queue.receive("t", "g", "c").unwrap()
        # The script runs on the server; the connection dies on the first reply byte.
        proxy.close_after(1, "downstream")
        result = queue.publish("t", b"once", dedupe_key=dedupe)
        through.close()
    if dedupe is None:
        assert isinstance(result.failure(), Unavailable)
    else:
        assert isinstance(result, Success)
    assert client.xlen(RedisQueue(client, namespace=namespace).stream_key("t")) == 1


@pytest.mark.services
def test_crafted_names_never_share_keys(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """Topic 'a' group 'b}:g:c' and topic 'a}:g:b' group 'c' keep separate dead letters."""
    queue = _queue(client, namespace, manual_clock, max_deliveries=1)
    assert queue.receive("a}:g:b", "c", "x") == Success([])
    assert queue.receive("a", "b}:g:c", "y") == Success([])
    queue.publish("a", b"private to topic a").unwrap()
    [delivery] = queue.receive("a", "b}:g:c", "y").unwrap()
    assert queue.nack(delivery) == Success(None)
    assert len(queue.dead_letters("a", "b}:g:c").unwrap()) == 1
    assert queue.dead_letters("a}:g:b", "c") == Success([])


@pytest.mark.services
def test_a_topic_opening_with_a_brace_is_tagged_apart_from_its_lookalike(
    client: redis.Redis, namespace: str
) -> None:
    """Topic '}x' is stored under the tag '{=}x}' and never meets topic '=}x'."""
    queue = RedisQueue(client, namespace=namespace)
    assert queue.stream_key("}x") == f"{namespace}:2:{{=}}x}}:s"
    for topic in ("}x", "=}x"):
        assert queue.receive(topic, "g", "c") == Success([])
        queue.publish(topic, topic.encode()).unwrap()
    for topic in ("}x", "=}x"):
        [delivery] = queue.receive(topic, "g", "c").unwrap()
        assert delivery.message.body == topic.encode()


@pytest.mark.services
def test_repr_shows_no_password(redis_url: str) -> None:
    """A queue built from a URL with a password never shows it in its repr."""
    url = redis_url.replace("redis://", "redis://user:s3cret-pw@", 1)
    queue = RedisQueue.from_url(url, namespace="pstest:repr")
    try:
        assert "s3cret-pw" not in repr(queue)
    finally:
        queue.close()


@pytest.mark.parametrize("namespace", ["x|q", "", "a*", "q{t}", "n\n", "x" * 201])
def test_a_namespace_a_cache_clear_or_a_pattern_could_reach_is_refused(
    client: redis.Redis, namespace: str
) -> None:
    """A queue namespace holding the cache separator, glob syntax or braces raises."""
    with pytest.raises(ValueError, match="namespace"):
        RedisQueue(client, namespace=namespace)


@pytest.mark.services
def test_a_cache_clear_never_reaches_a_queue(client: redis.Redis, namespace: str) -> None:
    """RedisCache(namespace=<the queue's namespace>).clear() leaves the queue's keys alone."""
    queue = RedisQueue(client, namespace=namespace)
    queue.publish("t", b"kept").unwrap()
    RedisCache(client, namespace=namespace).clear().unwrap()
    assert queue.stored("t") == Success(1)


@pytest.mark.services
@pytest.mark.parametrize("lost", ["everything", "the stream", "the group"])
def test_a_group_that_vanished_is_logged_once_recreated_and_keeps_working(
    client: redis.Redis, namespace: str, caplog: pytest.LogCaptureFixture, lost: str
) -> None:
    """After the server lost the group, settling is InvalidRequest, one ERROR, work resumes."""
    queue = RedisQueue(client, namespace=namespace)
    queue.publish("t", b"before").unwrap()
    [delivery] = queue.receive("t", "g", "c").unwrap()
    if lost == "everything":
        RedisQueueFaults().lose_topic(queue, "t")
    elif lost == "the stream":
        client.delete(queue.stream_key("t"))
    else:
        client.xgroup_destroy(queue.stream_key("t"), "g")
    with caplog.at_level(logging.ERROR, logger="portside.queue.redis"):
        for settle in (queue.ack, queue.nack, lambda d: queue.extend(d, by=5.0)):
            assert isinstance(settle(delivery).failure(), InvalidRequest)
        assert queue.ack_many([delivery]) == Success(0)
        assert queue.dead_letters("t", "g") == Success([])
        # With only the group gone, the stream still holds the unacked message: the
        # group is created again at its start and gets it back.
        kept = [b"before"] if lost == "the group" else []
        assert [d.message.body for d in queue.receive("t", "g", "c").unwrap()] == kept
        queue.publish("t", b"after").unwrap()
        [again] = queue.receive("t", "g", "c").unwrap()
    assert again.message.body == b"after"
    assert queue.ack(again) == Success(None)
    vanished = [r for r in caplog.records if "vanished" in r.getMessage()]
    assert len(vanished) == 1, [r.getMessage() for r in vanished]


@pytest.mark.services
def test_a_running_consumer_recovers_a_lost_lease_set(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """50 leased messages whose lease set was deleted come back to the running consumer."""
    queue = _queue(client, namespace, manual_clock)
    queue.publish_many("t", [str(n).encode() for n in range(50)]).unwrap()
    assert len(queue.receive("t", "g", "c", max_messages=50).unwrap()) == 50
    RedisQueueFaults().lose_leases(queue, "t", "g")
    manual_clock.advance(queue.options.lease_timeout + 1.0)
    back = queue.receive("t", "g", "c", max_messages=50).unwrap()
    assert sorted(int(d.message.body) for d in back) == list(range(50))
    assert {d.attempt for d in back} == {2}
    assert queue.ack_many(back) == Success(50)


@pytest.mark.services
def test_a_delayed_message_waits_for_its_time_on_redis(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """publish(delay=60) reaches no group before 60 s, then comes as attempt 1 and acks."""
    queue = _queue(client, namespace, manual_clock, lease_timeout=120.0)
    queue.receive("t", "g", "c").unwrap()
    queue.publish("t", b"later", delay=60.0).unwrap()
    queue.publish("t", b"now").unwrap()
    got = queue.receive("t", "g", "c", max_messages=5).unwrap()
    assert [d.message.body for d in got] == [b"now"]
    manual_clock.advance(59.0)
    assert queue.receive("t", "g", "c").unwrap() == []
    manual_clock.advance(1.0)
    [later] = queue.receive("t", "g", "c").unwrap()
    assert (later.message.body, later.attempt) == (b"later", 1)
    assert queue.ack_many([*got, later]) == Success(2)
    assert queue.stored("t") == Success(0)


@pytest.mark.services
def test_with_one_delivery_allowed_an_expired_batch_is_dead_lettered_like_the_fake(
    client: redis.Redis, namespace: str, manual_clock: ManualClock
) -> None:
    """max_deliveries=1: an acked message is gone, the other's expired lease buries it once."""
    options = QueueOptions(lease_timeout=30.0, max_deliveries=1)
    results = []
    for queue in (
        RedisQueue(client, manual_clock, options, namespace),
        MemoryQueue(manual_clock, options),
    ):
        queue.receive("t", "g", "c").unwrap()
        queue.publish_many("t", [b"a", b"b"]).unwrap()
        first, _ = queue.receive("t", "g", "c", max_messages=2).unwrap()
        assert queue.ack(first) == Success(None)
        manual_clock.advance(31.0)
        letters = queue.dead_letters("t", "g").unwrap()
        results.append(
            (
                [(d.message.body, d.attempts, d.reason) for d in letters],
                queue.receive("t", "g", "c").unwrap(),
            )
        )
    assert results[0] == results[1] == ([(b"b", 1, "lease expired")], [])
