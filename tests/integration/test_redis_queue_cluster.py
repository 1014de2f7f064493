"""RedisQueue on a throwaway Redis Cluster: one slot per topic, batches, waits, durability."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster
from returns.result import Failure, Success

from portside.adapters.memory import ManualClock
from portside.adapters.redis import (
    QueueNotDurable,
    RedisQueue,
    connect,
    queue_durability,
    redis_topology,
)
from portside.adapters.testing import ThrowawayCluster
from portside.domain import Unavailable
from portside.ports.queue_rules import QueueOptions

pytestmark = [pytest.mark.services, pytest.mark.slow]

#: Topics whose braces could move or empty the hash tag if the layout got it wrong.
AWKWARD_TOPICS = ("t", "}x", "}", "a}b", "{a}", "{}", "x{y}z", "orders:eu")


@pytest.fixture(name="cluster", scope="module")
def _cluster(redis_cluster: ThrowawayCluster) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url.replace("+cluster", ""))
    yield client
    client.close()


@pytest.fixture(name="namespace")
def _namespace(cluster: RedisCluster) -> Iterator[str]:
    namespace = f"pstest:cq:{uuid.uuid4().hex[:12]}"
    yield namespace
    for key in cluster.scan_iter(match=f"{namespace}:*", count=1000):
        cluster.delete(key)


def _keys(cluster: RedisCluster, namespace: str) -> list[bytes]:
    return list(cluster.scan_iter(match=f"{namespace}:*", count=1000))


def _node_of(cluster: RedisCluster, topic_key: bytes) -> str:
    node = cluster.get_node_from_key(topic_key)  # type: ignore[no-untyped-call]
    return str(node.name)


def test_every_key_of_a_topic_shares_one_slot(cluster: RedisCluster, namespace: str) -> None:
    """Stream, groups, leases, records, dead letters and dedupe keys of a topic hash alike."""
    clock = ManualClock()
    queue = RedisQueue(cluster, clock, QueueOptions(max_deliveries=1), namespace)
    for topic in AWKWARD_TOPICS:
        assert queue.receive(topic, "g", "c") == Success([])
        queue.publish(topic, b"plain").unwrap()
        queue.publish(topic, b"deduped", dedupe_key=f"dd-{topic}").unwrap()
        queue.publish_many(topic, [b"m1", b"m2"]).unwrap()
        first, *rest = queue.receive(topic, "g", "c", max_messages=4).unwrap()
        assert queue.nack(first) == Success(None)  # the last try: a dead letter
        assert queue.extend(rest[0], by=60.0).map(lambda d: d.receipt) == Success(rest[0].receipt)
        assert len(queue.dead_letters(topic, "g").unwrap()) == 1
    slots: dict[str, set[int]] = {}
    for key in _keys(cluster, namespace):
        stream = next(t for t in AWKWARD_TOPICS if key.startswith(_base(queue, t)))
        slots.setdefault(stream, set()).add(cluster.keyslot(key))
    assert set(slots) == set(AWKWARD_TOPICS)
    assert all(len(found) == 1 for found in slots.values()), slots
    # Six kinds of key per topic here: stream, groups, leases, records, dead, dedupe.
    assert len(_keys(cluster, namespace)) >= 6 * len(AWKWARD_TOPICS)


def _base(queue: RedisQueue, topic: str) -> bytes:
    """The prefix every key of ``topic`` starts with (its stream key without ``:s``)."""
    return queue.stream_key(topic).removesuffix(":s").encode() + b":"


def test_topics_on_different_primaries_publish_receive_and_ack_in_one_call(
    cluster: RedisCluster, namespace: str
) -> None:
    """ack_many settles deliveries of topics on three primaries; each topic keeps its order."""
    queue = RedisQueue(cluster, namespace=namespace)
    topics: dict[str, str] = {}
    for i in range(200):
        topic = f"topic-{i}"
        topics.setdefault(_node_of(cluster, queue.stream_key(topic).encode()), topic)
        if len(topics) == 3:
            break
    assert len(topics) == 3, "three topics on three primaries"
    got = []
    for topic in topics.values():
        assert queue.receive(topic, "g", "c") == Success([])
        ids = queue.publish_many(topic, [f"{topic}-{n}".encode() for n in range(5)]).unwrap()
        batch = queue.receive(topic, "g", "c", max_messages=10).unwrap()
        assert [d.message.id for d in batch] == ids
        got += batch
    assert queue.ack_many(got) == Success(15)
    assert queue.ack_many(got) == Success(0)
    assert all(queue.stored(topic) == Success(0) for topic in topics.values())


def test_ack_many_across_nodes_recovers_from_flushed_scripts(
    cluster: RedisCluster, namespace: str
) -> None:
    """After SCRIPT FLUSH on every primary a multi-topic ack_many still acks everything once."""
    queue = RedisQueue(cluster, namespace=namespace)
    topics = [f"s-{i}" for i in range(12)]
    deliveries = []
    for topic in topics:
        assert queue.receive(topic, "g", "c") == Success([])
        queue.publish(topic, b"x").unwrap()
        deliveries += queue.receive(topic, "g", "c").unwrap()
    assert len({_node_of(cluster, queue.stream_key(t).encode()) for t in topics}) > 1
    cluster.script_flush()  # redis-py sends it to every primary
    assert queue.ack_many(deliveries) == Success(len(topics))
    cluster.script_flush()  # redis-py sends it to every primary
    queue.publish(topics[0], b"again").unwrap()
    [again] = queue.receive(topics[0], "g", "c").unwrap()
    assert queue.ack(again) == Success(None)


def test_a_waiting_receive_wakes_on_a_publish(cluster: RedisCluster, namespace: str) -> None:
    """receive(wait=) blocks on the node holding the topic and returns the late message."""
    queue = RedisQueue(cluster, namespace=namespace)
    assert queue.receive("late", "g", "c") == Success([])
    started = threading.Event()

    def publish_soon() -> None:
        started.wait(5)
        time.sleep(0.2)
        queue.publish("late", b"here").unwrap()

    thread = threading.Thread(target=publish_soon)
    thread.start()
    started.set()
    got = queue.receive("late", "g", "c", wait=10.0).unwrap()
    thread.join()
    assert [d.message.body for d in got] == [b"here"]


def test_from_url_reads_a_cluster_url(redis_cluster: ThrowawayCluster) -> None:
    """A redis+cluster:// URL gives a queue on a RedisCluster client that works end to end."""
    queue = RedisQueue.from_url(redis_cluster.url, namespace=f"pstest:cq:{uuid.uuid4().hex[:8]}")
    try:
        assert isinstance(queue.client, RedisCluster)
        assert queue.receive("t", "g", "c") == Success([])
        queue.publish("t", b"x").unwrap()
        [delivery] = queue.receive("t", "g", "c").unwrap()
        assert queue.ack(delivery) == Success(None)
    finally:
        queue.close()


def _replicas_online(cluster: RedisCluster) -> bool:
    for node in cluster.get_primaries():  # type: ignore[no-untyped-call]
        info = cluster.get_redis_connection(node).info("replication")
        if not any(
            isinstance(value, dict) and value.get("state") == "online"
            for name, value in info.items()
            if str(name).startswith("slave")
        ):
            return False
    return True


def test_durable_publish_is_confirmed_by_the_topic_primary_s_replica(
    cluster: RedisCluster, namespace: str
) -> None:
    """With a replica per primary, durable publishes to topics on every primary are confirmed."""
    deadline = time.monotonic() + 20
    while not _replicas_online(cluster) and time.monotonic() < deadline:
        time.sleep(0.1)
    queue = RedisQueue(cluster, namespace=namespace, durable_publish=True, confirm_timeout=5.0)
    topics = [f"d-{i}" for i in range(12)]
    assert len({_node_of(cluster, queue.stream_key(t).encode()) for t in topics}) == 3
    for topic in topics:
        assert type(queue.publish(topic, b"kept")) is Success
        assert type(queue.publish(topic, b"once", dedupe_key="k")) is Success
        assert type(queue.publish_many(topic, [b"a", b"b"])) is Success
        assert queue.stored(topic) == Success(4)


def test_start_up_checks_read_every_primary_and_report_the_weakest(
    cluster: RedisCluster, namespace: str
) -> None:
    """One primary without an fsynced append-only file makes the report name it, and only it."""
    nodes = sorted(cluster.get_primaries(), key=lambda n: n.name)  # type: ignore[no-untyped-call]
    clients = [cluster.get_redis_connection(node) for node in nodes]
    try:
        for client in clients:
            client.config_set("appendonly", "yes")
            client.config_set("appendfsync", "always")
        report = queue_durability(cluster).unwrap()
        assert report.durable, report.problems
        assert report.summary.startswith("Redis queue on 3 primaries:")
        clients[1].config_set("appendfsync", "everysec")
        clients[2].config_set("maxmemory-policy", "allkeys-lru")
        report = queue_durability(cluster).unwrap()
        assert not report.durable
        assert report.problems == (
            f"{nodes[1].name}: appendfsync is everysec: set appendfsync always",
            f"{nodes[2].name}: maxmemory-policy is allkeys-lru: set noeviction",
        )
        assert f"the weakest ({nodes[1].name}, {nodes[2].name})" in report.summary
        assert "the last second or so of writes can be lost" in report.summary
        assert "allkeys-lru can evict streams" in report.summary
        with pytest.raises(QueueNotDurable, match=nodes[1].name):
            RedisQueue(cluster, namespace=namespace, require_durable=True)
    finally:
        for client in clients:
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("appendonly", "no")


def test_the_topology_names_every_primary_replica_and_slot(cluster: RedisCluster) -> None:
    """redis_topology reads 3 primaries, 3 replicas and all 16384 slots off the cluster."""
    topology = redis_topology(cluster).unwrap()
    assert topology.kind == "cluster"
    primaries = cluster.get_primaries()  # type: ignore[no-untyped-call]
    assert topology.primaries == tuple(sorted(node.name for node in primaries))
    assert len(topology.replicas) == 3
    assert topology.complete
    assert topology.summary == "cluster: 3 primaries, 3 replicas, 16384/16384 slots"


def test_the_topology_of_one_server(redis_url: str) -> None:
    """redis_topology of a plain client is that one server, a primary, with no slot count."""
    client = connect(redis_url)
    try:
        topology = redis_topology(client).unwrap()
    finally:
        client.close()
    assert topology.kind == "server"
    assert len(topology.primaries) == 1
    assert topology.slots_covered is None
    assert topology.complete


def test_a_stale_slot_map_fails_once_then_follows_the_move(
    redis_cluster: ThrowawayCluster, namespace: str
) -> None:
    """A node-routed step answered MOVED is Unavailable once; the next goes to the new node."""
    client = RedisCluster.from_url(redis_cluster.url.replace("+cluster", ""))
    try:
        deadline = time.monotonic() + 20
        while not _replicas_online(client) and time.monotonic() < deadline:
            time.sleep(0.1)
        queue = RedisQueue(client, namespace=namespace, durable_publish=True, confirm_timeout=5.0)
        key = queue.stream_key("moved").encode()
        slot = client.keyslot(key)  # type: ignore[no-untyped-call]
        owner = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        # The map a client holds after a failover it has not heard of: another primary.
        stale = next(n for n in client.get_primaries() if n.name != owner.name)  # type: ignore[no-untyped-call]
        client.nodes_manager.slots_cache[slot] = [stale]
        failed = queue.publish("moved", b"first")
        assert isinstance(failed, Failure)
        assert type(failed.failure()) is Unavailable, failed
        # MOVED: the old node did not apply it; the map now names the slot's primary.
        assert type(queue.publish("moved", b"second")) is Success
        assert queue.stored("moved") == Success(1)
    finally:
        client.close()
