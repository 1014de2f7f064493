"""Rows ``cache_*``: the cache adapters against raw redis-py with the same pool settings.

Both sides use a client from ``portside.adapters.redis._client.connect`` (same timeouts, pool
size and no hidden retries), on the same server, in the same run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import redis

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.cache_tools import TypedCache
from portside.adapters.memory import MemoryCache
from portside.adapters.redis import RedisCache, connect
from portside.adapters.testing import DEFAULT_REDIS_URL
from portside.domain import Usage

NAMES = (
    "cache_get",
    "cache_set",
    "cache_many_get",
    "cache_many_set",
    "cache_typed_get",
    "cache_memory_get",
)

BATCH = 100
VALUE = b"x" * 64


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    ours_client = connect(url)
    raw = connect(url)
    try:
        raw.ping()
    except redis.RedisError as exc:
        raise SkipBenchmark(f"cache: Redis not available at {url} ({type(exc).__name__})") from exc
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    cache = RedisCache(ours_client, namespace=namespace)
    keys = [f"k{i}" for i in range(BATCH)]
    raw_keys = [f"{namespace}|{k}" for k in keys]
    items = dict.fromkeys(keys, VALUE)
    cache.set_many(items).unwrap()
    usage = Usage(120, 48, 64)
    typed = TypedCache(cache, Usage)
    typed.set("usage", usage).unwrap()
    raw.set(
        f"{namespace}|plain-usage",
        orjson.dumps({"input_tokens": 120, "output_tokens": 48, "cached_input_tokens": 64}),
    )
    memory = MemoryCache("bench")
    memory.set("k", VALUE).unwrap()

    def raw_set_pipeline() -> None:
        pipe = raw.pipeline(transaction=False)
        for name in raw_keys:
            pipe.set(name, VALUE, px=60_000)
        pipe.execute()

    def raw_typed_get() -> Usage:
        data = orjson.loads(raw.get(f"{namespace}|plain-usage"))  # type: ignore[arg-type]
        return Usage(data["input_tokens"], data["output_tokens"], data["cached_input_tokens"])

    try:
        yield [
            Case("cache_get", lambda: cache.get("k0"), lambda: raw.get(raw_keys[0]), goal=0.9),
            Case(
                "cache_set",
                lambda: cache.set("k1", VALUE, ttl=60),
                lambda: raw.set(raw_keys[1], VALUE, px=60_000),
                goal=0.9,
            ),
            Case(
                "cache_many_get",
                lambda: cache.get_many(keys),
                lambda: raw.mget(raw_keys),
                goal=0.85,
                unit="keys/s",
                ops=BATCH,
            ),
            Case(
                "cache_many_set",
                lambda: cache.set_many(items, ttl=60),
                raw_set_pipeline,
                goal=0.85,
                unit="keys/s",
                ops=BATCH,
            ),
            Case("cache_typed_get", lambda: typed.get("usage"), raw_typed_get, goal=0.8),
            Case(
                "cache_memory_get",
                lambda: memory.get("k"),
                None,
                goal=500_000,
                unit="gets/s",
                note="in-memory fake, no baseline",
            ),
        ]
    finally:
        cache.clear()
        raw.delete(f"{namespace}|plain-usage")
        ours_client.close()
        raw.close()
