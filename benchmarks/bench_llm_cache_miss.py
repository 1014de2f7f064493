"""Row ``llm_cache_miss_redis``: an LLM-cache miss on Redis against the least any cache pays.

Every call is a request never seen before (a new seed), so each is a real miss: the
first read, the read-and-lock step and the store-and-unlock step. The baseline is the
bare model call plus a raw GET and SET of the same bytes (two round trips, no
coalescing). Round trips per miss are counted before timing, with a redis-py connection
class that counts the requests it sends; the note gives them and the microseconds a
miss adds over the bare model call. The ratio has no floor; the goal is the round trips.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import redis

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.llm_cache import CachingLLM
from portside.adapters.memory import FakeLLM
from portside.adapters.observability import Metrics
from portside.adapters.redis import RedisCache, connect
from portside.adapters.testing import DEFAULT_REDIS_URL, unreachable_reason
from portside.domain import ChatMessage, ChatRequest

NAMES = ("llm_cache_miss_redis",)

ASK = ChatRequest((ChatMessage.user("What is the capital of France?"),), temperature=0.0)


class _Counted(redis.Connection):
    """Counts the requests sent: one per round trip (a pipeline or script is one)."""

    sent = 0

    def send_packed_command(self, command: object, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[arg-type]


def _per_call_us(fn: object, calls: int = 300) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - start) / calls * 1e6


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if unreachable_reason(url) is not None:
        raise SkipBenchmark(f"llm_cache_miss_redis: Redis not reachable at {url}")
    namespace = f"bench-miss-{uuid.uuid4().hex[:8]}"
    pool = redis.ConnectionPool.from_url(url, connection_class=_Counted, health_check_interval=0)
    cache = RedisCache(redis.Redis(connection_pool=pool), namespace=namespace)
    raw = connect(url)
    llm = FakeLLM()
    caching = CachingLLM(llm, cache, metrics=Metrics())
    seeds = itertools.count()
    caching.complete(attrs.evolve(ASK, seed=next(seeds))).unwrap()  # loads the scripts
    stored = raw.get(f"{namespace}|{caching.key_for(attrs.evolve(ASK, seed=0))}")
    assert stored is not None

    def ours() -> object:
        return caching.complete(attrs.evolve(ASK, seed=next(seeds)))

    def bare() -> object:
        return llm.complete(attrs.evolve(ASK, seed=next(seeds)))

    def baseline() -> object:
        name = f"{namespace}|raw-{next(seeds)}"
        raw.get(name)
        done = llm.complete(attrs.evolve(ASK, seed=next(seeds)))
        raw.set(name, stored, px=60_000)
        return done

    before = _Counted.sent
    ours()
    trips = _Counted.sent - before
    added = _per_call_us(ours) - _per_call_us(bare)
    try:
        yield [
            Case(
                "llm_cache_miss_redis",
                ours,
                baseline,
                goal=0.0,
                unit="misses/s",
                note=(
                    f"{trips} round trips per miss (goal <= 3; raw GET+SET: 2); "
                    f"+{added:.0f} us over the bare model call"
                ),
            )
        ]
    finally:
        cache.clear()
        pool.disconnect()
        raw.close()
