"""Rows ``queue_single`` and ``queue_batch``: RedisQueue vs a raw redis-py Streams loop.

Both sides move the same 200-byte messages through one consumer group: publish, read
as a consumer, acknowledge, one at a time or 100 at a time. The raw loop uses XADD /
XREADGROUP / XACK directly (no leases, no attempt counts, no receipt check, no deletion
of acked entries); ours does all of that. docs/reference/queue.md splits the difference
by guarantee.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.redis import RedisQueue, connect
from portside.adapters.testing import DEFAULT_REDIS_URL, unreachable_reason

NAMES = ("queue_single", "queue_batch")
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

    try:
        yield [
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
