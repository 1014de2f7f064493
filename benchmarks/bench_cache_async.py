"""Rows ``async_cache_*``: ``AsyncRedisCache`` against raw ``redis.asyncio`` on one pool setup.

Both sides use a client from ``connect_async`` (same timeouts, blocking pool of the same
size, no hidden retries), on the same server, in the same run. The harness times sync
callables, so each call of a row runs ``CALLS`` awaited operations one after another on
one event loop; the loop's own cost is on both sides.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.redis import AsyncRedisCache, connect_async
from portside.adapters.testing import DEFAULT_REDIS_URL

NAMES = ("async_cache_get", "async_cache_set")

#: Awaited operations per timed call.
CALLS = 50
VALUE = b"x" * 64


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    loop = asyncio.new_event_loop()
    ours_client = connect_async(url)
    raw = connect_async(url)
    try:
        loop.run_until_complete(raw.ping())
    except redis.RedisError as exc:
        loop.run_until_complete(raw.aclose())
        loop.run_until_complete(ours_client.aclose())
        loop.close()
        raise SkipBenchmark(f"async cache: Redis not at {url} ({type(exc).__name__})") from exc
    namespace = f"bench-async-{uuid.uuid4().hex[:8]}"
    cache = AsyncRedisCache(ours_client, namespace=namespace)
    loop.run_until_complete(cache.set("k0", VALUE))

    def repeated(op: Callable[[], Awaitable[Any]]) -> Callable[[], None]:
        async def many() -> None:
            for _ in range(CALLS):
                await op()

        return lambda: loop.run_until_complete(many())

    try:
        yield [
            Case(
                "async_cache_get",
                repeated(lambda: cache.get("k0")),
                repeated(lambda: raw.get(f"{namespace}|k0")),
                goal=0.9,
                unit="gets/s",
                ops=CALLS,
            ),
            Case(
                "async_cache_set",
                repeated(lambda: cache.set("k1", VALUE, ttl=60)),
                repeated(lambda: raw.set(f"{namespace}|k1", VALUE, px=60_000)),
                goal=0.9,
                unit="sets/s",
                ops=CALLS,
            ),
        ]
    finally:
        loop.run_until_complete(cache.clear())
        loop.run_until_complete(ours_client.aclose())
        loop.run_until_complete(raw.aclose())
        loop.close()
