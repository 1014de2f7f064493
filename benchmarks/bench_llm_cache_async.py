"""Row ``async_llm_cache_hit_redis``: an ``AsyncCachingLLM`` hit against a raw GET.

Both sides run on one event loop against the same Redis: ours is a whole hit (the
request validated and keyed afresh, one GET through ``AsyncRedisCache``, the entry
decoded), the baseline a raw ``redis.asyncio`` GET of the same stored bytes from a
client built the same way (``connect_async``). Each timed call awaits ``CALLS`` of
them one after another, so the loop's own cost is on both sides.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.llm_cache import AsyncCachingLLM
from portside.adapters.memory import AsyncFakeLLM
from portside.adapters.observability import Metrics
from portside.adapters.redis import AsyncRedisCache, connect_async
from portside.adapters.testing import DEFAULT_REDIS_URL, unreachable_reason
from portside.domain import ChatMessage, ChatRequest, Usage

NAMES = ("async_llm_cache_hit_redis",)

CALLS = 50
ASK = ChatRequest(
    (ChatMessage.system("Answer briefly."), ChatMessage.user("What is the capital of France?")),
    temperature=0.0,
)


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if unreachable_reason(url) is not None:
        raise SkipBenchmark(f"async_llm_cache_hit_redis: Redis not reachable at {url}")
    loop = asyncio.new_event_loop()
    cache = AsyncRedisCache(
        connect_async(url), namespace=f"bench-allm-{uuid.uuid4().hex[:8]}", owns_client=True
    )
    raw = connect_async(url)
    fake = AsyncFakeLLM()
    fake.reply("The capital of France is Paris." * 4, usage=Usage(120, 48))
    ours = AsyncCachingLLM(fake, cache, metrics=Metrics())
    loop.run_until_complete(ours.complete(ASK))
    hit = loop.run_until_complete(ours.complete(ASK)).unwrap()
    assert hit.cache is not None
    assert hit.cache.hit
    name = f"{cache.namespace}|{ours.key_for(ASK)}"
    assert loop.run_until_complete(raw.get(name)) is not None

    def repeated(op: Callable[[], Awaitable[Any]]) -> Callable[[], None]:
        async def many() -> None:
            for _ in range(CALLS):
                await op()

        return lambda: loop.run_until_complete(many())

    try:
        yield [
            Case(
                "async_llm_cache_hit_redis",
                repeated(lambda: ours.complete(ASK)),
                repeated(lambda: raw.get(name)),
                goal=0.8,
                unit="hits/s",
                ops=CALLS,
                note="raw = redis.asyncio GET of the same bytes",
            )
        ]
    finally:
        loop.run_until_complete(cache.clear())
        loop.run_until_complete(cache.aclose())
        loop.run_until_complete(raw.aclose())
        loop.close()
