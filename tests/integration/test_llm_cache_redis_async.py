"""AsyncCachingLLM over AsyncRedisCache: hits, replays and one fill across instances."""

from __future__ import annotations

import asyncio
import uuid

import attrs
import pytest
from returns.result import Result

from portside.adapters.llm_cache import AsyncCachingLLM
from portside.adapters.memory import AsyncFakeLLM
from portside.adapters.observability import Metrics
from portside.adapters.redis import AsyncRedisCache, connect_async
from portside.domain import ChatMessage, ChatRequest, Completion, ServiceError

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]

ASK = ChatRequest((ChatMessage.user("name three rivers"),), temperature=0.0)


@attrs.define
class SlowFake(AsyncFakeLLM):
    """An async fake whose complete suspends, so the instances' fills overlap."""

    async def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        await asyncio.sleep(0.1)
        return await super().complete(request)


def _instance(redis_url: str, namespace: str, fake: AsyncFakeLLM) -> AsyncCachingLLM:
    # Its own client and its own single-flight table: what another process would have.
    cache = AsyncRedisCache(connect_async(redis_url), namespace=namespace, owns_client=True)
    return AsyncCachingLLM(fake, cache, metrics=Metrics(), lock_ttl=5.0)


def test_instances_share_answers_and_one_fill_through_redis(redis_url: str) -> None:
    """Concurrent misses in two instances cost one model call; a stream replays across them."""
    namespace = f"test-llm-async-{uuid.uuid4().hex[:12]}"
    fakes = [SlowFake(), SlowFake()]
    for fake in fakes:
        fake.reply("Nile, Amazon, Danube.")
        fake.reply("one two three")

    async def scenario() -> None:
        one, two = (_instance(redis_url, namespace, fake) for fake in fakes)
        try:
            answers = await asyncio.gather(
                *(llm.complete(ASK) for llm in (one, two) for _ in range(5))
            )
            assert {a.unwrap().text for a in answers} == {"Nile, Amazon, Danube."}
            assert sum(fake.received() for fake in fakes) == 1, "both instances filled"
            lock = one.key_for(ASK) + ":fill"
            assert (await one.cache.get(lock)).unwrap() is None, "the fill lock was left"
            other = ChatRequest((ChatMessage.user("count"),), temperature=0.0)
            streamed = [e.unwrap() async for e in one.stream(other)]
            replayed = [e.unwrap() async for e in two.stream(other)]
            assert [d.text for d in replayed] == [d.text for d in streamed]
            assert replayed[-1].cache is not None
            assert replayed[-1].cache.hit
        finally:
            await one.cache.clear()
            for llm in (one, two):
                await llm.aclose()
                await llm.cache.aclose()

    asyncio.run(scenario())
