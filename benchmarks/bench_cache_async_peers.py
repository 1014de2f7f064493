"""Rows ``async_cache_vs_*``: ``AsyncRedisCache`` beside cashews and aiocache, same run.

The baseline of each row is the peer library doing the same get or set of 64 bytes
on the same server, with a blocking pool of the same size and the same socket timeout
as ours (each library builds its own client from those settings; neither takes a
client from outside in its public API). ``ratio = ours / peer``: above 1, portside is
the faster. Nothing is pickled: cashews stores bytes behind a short type prefix, and
aiocache is given its ``NullSerializer``. Skipped when a peer is not installed
(``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks._async_rows import close, loop_and_clients, repeated
from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.redis import AsyncRedisCache, RedisOptions
from portside.adapters.testing import DEFAULT_REDIS_URL

NAMES = (
    "async_cache_vs_cashews_get",
    "async_cache_vs_cashews_set",
    "async_cache_vs_aiocache_get",
    "async_cache_vs_aiocache_set",
)

CALLS = 50
VALUE = b"x" * 64


def _cashews(url: str, options: RedisOptions) -> Any:
    from cashews import Cache

    cache = Cache()
    cache.setup(
        url,
        max_connections=options.max_connections,
        socket_timeout=options.socket_timeout,
        socket_connect_timeout=options.connect_timeout,
    )
    return cache


def _aiocache(url: str, options: RedisOptions) -> Any:
    from urllib.parse import urlsplit

    from aiocache import RedisCache
    from aiocache.serializers import NullSerializer

    where = urlsplit(url)
    return RedisCache(
        endpoint=where.hostname or "127.0.0.1",
        port=where.port or 6379,
        db=int((where.path or "/0").lstrip("/") or 0),
        pool_max_size=options.max_connections,
        serializer=NullSerializer(),
    )


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    missing = [m for m in ("cashews", "aiocache") if importlib.util.find_spec(m) is None]
    if missing:
        raise SkipBenchmark(f"async cache peers: {', '.join(missing)} not installed")
    options = RedisOptions()
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    loop, ours_client, raw = loop_and_clients("async cache peers", options)
    namespace = f"bench-peers-{uuid.uuid4().hex[:8]}"
    cache = AsyncRedisCache(ours_client, namespace=namespace)
    cashews, aiocache = _cashews(url, options), _aiocache(url, options)
    loop.run_until_complete(cache.set("k0", VALUE))
    loop.run_until_complete(cashews.set(f"{namespace}:c0", VALUE, expire=600))
    loop.run_until_complete(aiocache.set(f"{namespace}:a0", VALUE, ttl=600))

    def repeated_(op: Callable[[], Awaitable[Any]]) -> Callable[[], None]:
        return repeated(loop, op, CALLS)

    try:
        yield [
            Case(
                "async_cache_vs_cashews_get",
                repeated_(lambda: cache.get("k0")),
                repeated_(lambda: cashews.get(f"{namespace}:c0")),
                goal=1.0,
                unit="gets/s",
                ops=CALLS,
            ),
            Case(
                "async_cache_vs_cashews_set",
                repeated_(lambda: cache.set("k1", VALUE, ttl=60)),
                repeated_(lambda: cashews.set(f"{namespace}:c1", VALUE, expire=60)),
                goal=1.0,
                unit="sets/s",
                ops=CALLS,
            ),
            Case(
                "async_cache_vs_aiocache_get",
                repeated_(lambda: cache.get("k0")),
                repeated_(lambda: aiocache.get(f"{namespace}:a0")),
                goal=1.0,
                unit="gets/s",
                ops=CALLS,
            ),
            Case(
                "async_cache_vs_aiocache_set",
                repeated_(lambda: cache.set("k1", VALUE, ttl=60)),
                repeated_(lambda: aiocache.set(f"{namespace}:a1", VALUE, ttl=60)),
                goal=1.0,
                unit="sets/s",
                ops=CALLS,
            ),
        ]
    finally:
        loop.run_until_complete(cache.clear())
        for key in ("c0", "c1", "a0", "a1"):
            loop.run_until_complete(raw.delete(f"{namespace}:{key}"))
        loop.run_until_complete(aiocache.close())
        loop.run_until_complete(cashews.close())
        close(loop, ours_client, raw)
