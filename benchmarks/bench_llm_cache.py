"""Rows ``llm_cache_hit_redis`` (vs a raw redis-py GET of the same bytes) and
``llm_cache_hit_memory`` (vs a ``MemoryCache.get`` of the same key: reported, no floor).

Nothing remembers request objects between calls, so re-sending one object costs what
sending a new equal one does: every hit is validated, keyed and decoded afresh."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.llm_cache import CachingLLM
from portside.adapters.memory import FakeLLM, MemoryCache
from portside.adapters.observability import Metrics
from portside.adapters.redis import RedisCache, connect
from portside.adapters.testing import DEFAULT_REDIS_URL, unreachable_reason
from portside.domain import ChatMessage, ChatRequest, Usage

NAMES = ("llm_cache_hit_redis", "llm_cache_hit_memory")

ASK = ChatRequest(
    (ChatMessage.system("Answer briefly."), ChatMessage.user("What is the capital of France?")),
    temperature=0.0,
)


def _primed(cache: object) -> CachingLLM:
    llm = FakeLLM()
    llm.reply("The capital of France is Paris." * 4, usage=Usage(120, 48))
    caching = CachingLLM(llm, cache, metrics=Metrics())  # type: ignore[arg-type]
    caching.complete(ASK).unwrap()
    assert caching.complete(ASK).unwrap().cache.hit  # type: ignore[union-attr]
    return caching


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    store = MemoryCache()
    memory = _primed(store)
    memory_key = memory.key_for(ASK)
    rows = [
        Case(
            "llm_cache_hit_memory",
            lambda: memory.complete(ASK),
            lambda: store.get(memory_key),
            goal=0.0,
            unit="hits/s",
            note="no floor; raw = MemoryCache.get of the same key",
        ),
    ]
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if unreachable_reason(url) is not None:
        # The memory row still runs; the Redis row is reported as skipped.
        yield rows
        raise SkipBenchmark(f"llm_cache_hit_redis: Redis not reachable at {url}")
    cache = RedisCache.from_url(url, namespace=f"bench-llm-{uuid.uuid4().hex[:8]}")
    raw = connect(url)
    try:
        ours = _primed(cache)
        name = f"{cache.namespace}|{ours.key_for(ASK)}"
        assert raw.get(name) is not None
        rows.append(
            Case(
                "llm_cache_hit_redis",
                lambda: ours.complete(ASK),
                lambda: raw.get(name),
                goal=0.8,
                unit="hits/s",
                note="raw = redis-py GET of the same bytes",
            )
        )
        yield rows
    finally:
        cache.clear()
        cache.close()
        raw.close()
