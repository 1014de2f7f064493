"""Rows ``async_queue_single`` and ``async_queue_batch``: ``AsyncRedisQueue`` against raw Streams.

Both sides use a client from ``connect_async`` (same timeouts, blocking pool of the same
size, no hidden retries) on the same server, in the same run, and move the same
200-byte messages through one consumer group. The raw loop is ``redis.asyncio`` with
XADD, XREADGROUP and XACK + XDEL (pipelined, one round trip: acked entries are deleted
as the queue deletes them), so both sides make three round trips per cycle; it has no
leases, attempt counts or receipt checks, which the queue's scripts add. The harness
times sync callables, so each timed call runs ``CALLS`` cycles one after another on one
event loop (``_async_rows``); the loop's own cost is on both sides.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks._async_rows import close, loop_and_clients, repeated
from benchmarks._harness import Case
from portside.adapters.redis import AsyncRedisQueue, RedisOptions

NAMES = ("async_queue_single", "async_queue_batch")

#: Cycles per timed call.
CALLS = 20
BATCH = 100
BODY = b"x" * 200


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    # The queue's own connection settings (``from_url``'s), on both sides.
    options = RedisOptions(socket_timeout=5.0, connect_timeout=1.0)
    loop, ours_client, raw = loop_and_clients("async queue", options)
    namespace = f"bench:aqueue:{uuid.uuid4().hex[:8]}"
    queue = AsyncRedisQueue(ours_client, namespace=namespace)
    stream = f"{namespace}:raw"
    loop.run_until_complete(queue.receive("t", "g", "c"))
    loop.run_until_complete(raw.xgroup_create(stream, "g", id="$", mkstream=True))
    bodies = [BODY] * BATCH

    async def ours_single() -> None:
        (await queue.publish("t", BODY)).unwrap()
        [delivery] = (await queue.receive("t", "g", "c")).unwrap()
        (await queue.ack(delivery)).unwrap()

    async def raw_single() -> None:
        await raw.xadd(stream, {"b": BODY})
        reply: Any = await raw.xreadgroup("g", "c", {stream: ">"}, count=1)
        message_id = reply[0][1][0][0]
        async with raw.pipeline(transaction=False) as pipe:
            pipe.xack(stream, "g", message_id)
            pipe.xdel(stream, message_id)
            await pipe.execute()

    async def ours_batch() -> None:
        (await queue.publish_many("t", bodies)).unwrap()
        got = (await queue.receive("t", "g", "c", max_messages=BATCH)).unwrap()
        (await queue.ack_many(got)).unwrap()

    async def raw_batch() -> None:
        async with raw.pipeline(transaction=False) as pipe:
            for body in bodies:
                pipe.xadd(stream, {"b": body})
            await pipe.execute()
        reply: Any = await raw.xreadgroup("g", "c", {stream: ">"}, count=BATCH)
        ids = [entry[0] for entry in reply[0][1]]
        async with raw.pipeline(transaction=False) as pipe:
            pipe.xack(stream, "g", *ids)
            pipe.xdel(stream, *ids)
            await pipe.execute()

    try:
        yield [
            Case(
                "async_queue_single",
                repeated(loop, ours_single, CALLS),
                repeated(loop, raw_single, CALLS),
                goal=0.85,
                unit="messages/s",
                ops=CALLS,
                note="publish + receive + ack vs XADD, XREADGROUP, XACK+XDEL",
            ),
            Case(
                "async_queue_batch",
                repeated(loop, ours_batch, 1),
                repeated(loop, raw_batch, 1),
                goal=0.85,
                unit="messages/s",
                ops=BATCH,
                note=f"publish_many {BATCH}, receive {BATCH}, ack_many vs pipelined raw",
            ),
        ]
    finally:
        keys = loop.run_until_complete(_keys(raw, namespace))
        if keys:
            loop.run_until_complete(raw.delete(*keys))
        close(loop, ours_client, raw)


async def _keys(client: Any, namespace: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
