"""Rows ``cluster_queue_single`` and ``cluster_queue_batch``: RedisQueue on a Redis Cluster.

Starts its own throwaway cluster (three primaries, three replicas). Both sides move the
same 200-byte messages through one consumer group on that cluster, each on its own
``RedisCluster`` client with the settings ``RedisQueue.from_url`` gives a
``redis+cluster://`` URL: publish, read as a consumer, acknowledge, one at a time or
100 at a time. The raw loop uses XADD / XREADGROUP / XACK directly (no leases, no
attempt counts, no receipt check, no deletion of acked entries), as ``bench_queue``
does on one server; its stream lives on the same primary as the queue's topic. The raw
XREADGROUP names that primary itself (``target_nodes``): redis-py's cluster client
cannot find the key of a command with movable keys without asking the server
(``COMMAND GETKEYS``, one more round trip per read), so the plain ``xreadgroup`` would be
a slower baseline than a careful raw loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.redis import RedisQueue
from portside.adapters.testing import FaultToolError, throwaway_cluster

NAMES = ("cluster_queue_single", "cluster_queue_batch")
BATCH = 100
#: The connection settings ``RedisQueue.from_url`` uses (a queue waits longer than a cache).
SOCKET_TIMEOUT, CONNECT_TIMEOUT = 5.0, 1.0


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    try:
        started = throwaway_cluster()
        cluster = started.__enter__()
    except FaultToolError as exc:
        raise SkipBenchmark(f"cluster: cannot start a throwaway Redis Cluster ({exc})") from exc
    try:
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        queue = RedisQueue(_client(cluster.ports[0]), namespace=namespace, owns_client=True)
        raw = _client(cluster.ports[0])
        topic = "t"
        stream = queue.stream_key(topic)
        # A name tagged like the topic, so both sides talk to the same primary.
        raw_stream = stream.removesuffix(":s") + ":raw"
        raw.xgroup_create(raw_stream, "g", id="$", mkstream=True)
        node = raw.get_node_from_key(raw_stream)  # type: ignore[no-untyped-call]

        def read(count: int) -> list[Any]:
            reply: list[Any] = raw.execute_command(  # type: ignore[no-untyped-call]
                "XREADGROUP", "GROUP", "g", "c", "COUNT", count, "STREAMS", raw_stream, ">",
                target_nodes=node,
            )  # fmt: skip
            return reply

        queue.receive(topic, "g", "c").unwrap()
        body = b"x" * 200
        bodies = [body] * BATCH

        def ours_single() -> object:
            queue.publish(topic, body).unwrap()
            [delivery] = queue.receive(topic, "g", "c").unwrap()
            return queue.ack(delivery).unwrap()

        def raw_single() -> object:
            raw.xadd(raw_stream, {"b": body})
            return raw.xack(raw_stream, "g", read(1)[0][1][0][0])

        def ours_batch() -> object:
            queue.publish_many(topic, bodies).unwrap()
            got = queue.receive(topic, "g", "c", max_messages=BATCH).unwrap()
            return queue.ack_many(got).unwrap()

        def raw_batch() -> object:
            with raw.pipeline(transaction=False) as pipe:
                for item in bodies:
                    pipe.xadd(raw_stream, {"b": item})
                pipe.execute()
            return raw.xack(raw_stream, "g", *[entry[0] for entry in read(BATCH)[0][1]])

        try:
            yield [
                Case(
                    "cluster_queue_single",
                    ours_single,
                    raw_single,
                    goal=0.85,
                    unit="messages/s",
                    note="publish + receive + ack, one message, on a 3-primary cluster",
                ),
                Case(
                    "cluster_queue_batch",
                    ours_batch,
                    raw_batch,
                    goal=0.85,
                    unit="messages/s",
                    ops=BATCH,
                    note=f"publish_many {BATCH}, receive {BATCH}, ack_many {BATCH}, on a cluster",
                ),
            ]
        finally:
            queue.close()
            raw.close()
    finally:
        started.__exit__(None, None, None)


def _client(port: int) -> RedisCluster:
    """A ``RedisCluster`` with the settings a ``redis+cluster://`` URL gives the queue."""
    return RedisCluster(
        host="127.0.0.1",
        port=port,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        max_connections=50,
        retry=Retry(NoBackoff(), 0),
    )
