"""Rows ``llm_limiter_memory`` and ``llm_limiter_redis``: what a rate-limit check costs.

``llm_limiter_memory`` is the in-memory limiter's admit and settle of one call, in
calls per second (goal: at least 200 000/s, i.e. at most 5 µs a call).
``llm_limiter_redis`` is one admission through Redis (one ``EVALSHA`` on the server's
clock) against one raw redis-py ``GET`` round trip (goal 0.80).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.llm_gateway import MemoryRateLimiter, RateLimit, RedisRateLimiter
from portside.adapters.testing import DEFAULT_REDIS_URL

NAMES = ("llm_limiter_memory", "llm_limiter_redis")


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    client = redis.Redis.from_url(url)
    raw = redis.Redis.from_url(url)
    try:
        raw.ping()
    except redis.RedisError as exc:
        raise SkipBenchmark(
            f"limiter: Redis not available at {url} ({type(exc).__name__})"
        ) from exc
    prefix = f"bench-limiter-{uuid.uuid4().hex[:8]}:"
    # Never refused (the row measures the check), with a short window so the log of
    # admissions the server keeps stays small.
    limits = {"*": RateLimit(requests=10**9, tokens=10**12)}
    shared = RedisRateLimiter(client, limits, prefix=prefix, window=1.0)
    memory = MemoryRateLimiter(limits, window=1.0)
    raw.set(f"{prefix}plain", b"1")

    def ours_memory() -> object:
        memory.admit("m", 100)
        memory.settle("m", 120)
        return None

    def ours_redis() -> object:
        return shared.admit("m", 100)

    def raw_get() -> object:
        return raw.get(f"{prefix}plain")

    try:
        yield [
            Case("llm_limiter_memory", ours_memory, None, goal=200_000, unit="calls/s"),
            Case("llm_limiter_redis", ours_redis, raw_get, goal=0.80, unit="checks/s"),
        ]
    finally:
        for key in raw.scan_iter(match=f"{prefix}*"):
            raw.delete(key)
        client.close()
        raw.close()
