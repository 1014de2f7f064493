"""Rows ``async_cache_*``: ``AsyncRedisCache`` against raw ``redis.asyncio`` on one pool setup.

Both sides use a client from ``connect_async`` (same timeouts, blocking pool of the same
size, no hidden retries), on the same server, in the same run. The harness times sync
callables, so each call of a row runs ``CALLS`` awaited operations one after another on
one event loop; the loop's own cost is on both sides.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks._async_rows import close, loop_and_clients, repeated
from benchmarks._harness import Case
from portside.adapters.redis import AsyncRedisCache

NAMES = ("async_cache_get", "async_cache_set")

#: Awaited operations per timed call.
CALLS = 50
VALUE = b"x" * 64


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    loop, ours_client, raw = loop_and_clients("async cache")
    namespace = f"bench-async-{uuid.uuid4().hex[:8]}"
    cache = AsyncRedisCache(ours_client, namespace=namespace)
    loop.run_until_complete(cache.set("k0", VALUE))

    def repeated_(op: Callable[[], Awaitable[Any]]) -> Callable[[], None]:
        return repeated(loop, op, CALLS)

    try:
        yield [
            Case(
                "async_cache_get",
                repeated_(lambda: cache.get("k0")),
                repeated_(lambda: raw.get(f"{namespace}|k0")),
                goal=0.9,
                unit="gets/s",
                ops=CALLS,
            ),
            Case(
                "async_cache_set",
                repeated_(lambda: cache.set("k1", VALUE, ttl=60)),
                repeated_(lambda: raw.set(f"{namespace}|k1", VALUE, px=60_000)),
                goal=0.9,
                unit="sets/s",
                ops=CALLS,
            ),
        ]
    finally:
        loop.run_until_complete(cache.clear())
        close(loop, ours_client, raw)
