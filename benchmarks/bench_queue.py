"""Rows ``queue_single``, ``queue_batch`` and ``queue_durable_publish``: RedisQueue vs raw redis-py.

Both sides move the same 200-byte messages through one consumer group: publish, read
as a consumer, acknowledge, one at a time or 100 at a time. The raw loop uses XADD /
XREADGROUP / XACK directly (no leases, no attempt counts, no receipt check, no deletion
of acked entries); ours does all of that. docs/reference/queue.md splits the difference
by guarantee. ``queue_durable_publish`` runs on a throwaway server with the append-only
file synced on every write (``appendfsync always``, how Redis 7.0 confirms a write is on
disk): ``RedisQueue(durable_publish=True).publish`` against a raw ``XADD`` on the same
server, whose reply comes after the same fsync.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.redis import RedisQueue, connect
from portside.adapters.testing import DEFAULT_REDIS_URL, throwaway_redis, unreachable_reason

NAMES = ("queue_single", "queue_batch", "queue_durable_publish")
BATCH = 100


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    problem = unreachable_reason(url)
    if problem is not None:
        raise SkipBenchmark(f"queue: Redis not available ({problem})")
    namespace = f"bench:queue:{uuid.uuid4().hex}"
    client = connect(url)
    queue = RedisQueue(client, namespace=namespace)
    raw = connect(url)
    raw_stream = f"{namespace}:raw"
    raw.xgroup_create(raw_stream, "g", id="$", mkstream=True)
    queue.receive("t", "g", "c").unwrap()
    body = b"x" * 200
    bodies = [body] * BATCH

    def ours_single() -> object:
        queue.publish("t", body).unwrap()
        [delivery] = queue.receive("t", "g", "c").unwrap()
        return queue.ack(delivery).unwrap()

    def raw_single() -> object:
        raw.xadd(raw_stream, {"b": body})
        reply = raw.xreadgroup("g", "c", {raw_stream: ">"}, count=1)
        return raw.xack(raw_stream, "g", reply[0][1][0][0])

    def ours_batch() -> object:
        queue.publish_many("t", bodies).unwrap()
        got = queue.receive("t", "g", "c", max_messages=BATCH).unwrap()
        return queue.ack_many(got).unwrap()

    def raw_batch() -> object:
        with raw.pipeline(transaction=False) as pipe:
            for item in bodies:
                pipe.xadd(raw_stream, {"b": item})
            pipe.execute()
        reply = raw.xreadgroup("g", "c", {raw_stream: ">"}, count=BATCH)
        return raw.xack(raw_stream, "g", *[entry[0] for entry in reply[0][1]])

    stack = ExitStack()
    disk = stack.enter_context(throwaway_redis(durable=True))
    durable = stack.enter_context(
        _closing(RedisQueue.from_url(disk.url, require_durable=True, durable_publish=True))
    )
    raw_disk = connect(disk.url)
    stack.callback(raw_disk.close)

    def ours_durable() -> object:
        return durable.publish("d", body).unwrap()

    def raw_durable() -> object:
        return raw_disk.xadd("raw", {"b": body})

    try:
        yield [
            Case(
                "queue_durable_publish",
                ours_durable,
                raw_durable,
                goal=0.85,
                unit="messages/s",
                note="publish confirmed on disk (appendfsync always) vs raw XADD there",
            ),
            Case(
                "queue_single",
                ours_single,
                raw_single,
                goal=0.85,
                unit="messages/s",
                note="publish + receive + ack, one message",
            ),
            Case(
                "queue_batch",
                ours_batch,
                raw_batch,
                goal=0.85,
                unit="messages/s",
                ops=BATCH,
                note=f"pipelined publish of {BATCH}, receive {BATCH}, ack {BATCH}",
            ),
        ]
    finally:
        for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            client.delete(key)
        queue.close()
        client.close()
        raw.close()
        stack.close()


@contextmanager
def _closing(queue: RedisQueue) -> Iterator[RedisQueue]:
    try:
        yield queue
    finally:
        queue.close()
