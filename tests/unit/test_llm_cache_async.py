"""AsyncCachingLLM: the sync cache's keys, entries and policy, awaited; single-flight over tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import attrs
import pytest
from returns.result import Failure, Result, Success

from portside.adapters.llm_cache import AsyncCachingLLM, CachingLLM
from portside.adapters.memory import (
    AsyncFakeLLM,
    AsyncMemoryCache,
    FakeLLM,
    ManualClock,
    MemoryCache,
    MemoryStore,
)
from portside.adapters.observability import Metrics
from portside.domain import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    Completion,
    InvalidRequest,
    ServiceError,
)

ASK = ChatRequest((ChatMessage.user("name three rivers"),), temperature=0.0)


@attrs.define
class SlowFake(AsyncFakeLLM):
    """An async fake whose calls suspend, so concurrent tasks really overlap."""

    pause: float = 0.02

    async def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        await asyncio.sleep(self.pause)
        return await super().complete(request)

    async def stream(  # type: ignore[override]
        self, request: ChatRequest
    ) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
        events = super().stream(request)
        async for event in events:
            await asyncio.sleep(self.pause / 5)
            yield event


def _cached(llm: AsyncFakeLLM, cache: AsyncMemoryCache | None = None) -> AsyncCachingLLM:
    return AsyncCachingLLM(llm, cache or AsyncMemoryCache("llm"), metrics=Metrics())


def test_a_repeated_request_is_a_hit_and_reaches_the_model_once() -> None:
    """The second identical complete is answered from the cache with CacheInfo.hit."""
    fake = AsyncFakeLLM()
    fake.reply("Nile, Amazon, Danube.")
    llm = _cached(fake)

    async def scenario() -> tuple[Completion, Completion]:
        first = (await llm.complete(ASK)).unwrap()
        return first, (await llm.complete(ASK)).unwrap()

    first, again = asyncio.run(scenario())
    assert again.text == first.text == "Nile, Amazon, Danube."
    assert first.cache is not None
    assert not first.cache.hit
    assert again.cache is not None
    assert again.cache.hit
    assert fake.received() == 1


def test_async_and_sync_caches_share_keys_and_entries() -> None:
    """An answer the async cache stored is a hit for CachingLLM on the same store, and back."""
    store = MemoryStore()
    clock = ManualClock()
    fake = AsyncFakeLLM()
    fake.reply("stored by the async side")
    async_llm = AsyncCachingLLM(fake, AsyncMemoryCache("llm", clock=clock, store=store))
    sync_llm = CachingLLM(FakeLLM(), MemoryCache("llm", clock=clock, store=store))
    asyncio.run(async_llm.complete(ASK))
    assert sync_llm.key_for(ASK) == async_llm.key_for(ASK)
    assert sync_llm.explain_key(ASK) == async_llm.explain_key(ASK)
    hit = sync_llm.complete(ASK).unwrap()
    assert hit.text == "stored by the async side"
    assert hit.cache is not None
    assert hit.cache.hit
    other = ChatRequest((ChatMessage.user("other"),), temperature=0.0)
    sync_llm.llm.reply("stored by the sync side")  # type: ignore[attr-defined]
    sync_llm.stream(other).__next__()  # a stream stored by the sync side...
    list(sync_llm.stream(other))
    replayed = asyncio.run(_collect(async_llm, other))
    assert replayed[-1].cache is not None
    assert replayed[-1].cache.hit


async def _collect(llm: AsyncCachingLLM, request: ChatRequest) -> list[ChatDelta]:
    return [event.unwrap() async for event in llm.stream(request)]


def test_a_stream_is_recorded_then_replayed_event_for_event() -> None:
    """A missed stream is stored after its clean finish; the next replays the same deltas."""
    fake = AsyncFakeLLM()
    fake.reply("one two three")
    llm = _cached(fake)
    first = asyncio.run(_collect(llm, ASK))
    again = asyncio.run(_collect(llm, ASK))
    assert [attrs.evolve(d, cache=None) for d in again] == [
        attrs.evolve(d, cache=None) for d in first
    ]
    assert again[-1].cache is not None
    assert again[-1].cache.hit
    assert fake.received() == 1


def test_failures_truncations_and_dropped_streams_are_never_stored() -> None:
    """A failure, a length finish and a dropped stream leave nothing behind to hit."""
    fake = AsyncFakeLLM()
    llm = _cached(fake)

    async def scenario() -> None:
        fake.fail("unavailable")
        assert isinstance(await llm.complete(ASK), Failure)
        fake.reply("cut short", finish_reason="length")
        assert (await llm.complete(ASK)).unwrap().finish_reason == "length"
        fake.drop_stream_after(1)
        events = [event async for event in llm.stream(ASK)]
        assert isinstance(events[-1], Failure)
        fake.reply("finally")
        done = (await llm.complete(ASK)).unwrap()
        assert done.text == "finally"
        assert done.cache is not None
        assert not done.cache.hit

    asyncio.run(scenario())
    assert fake.received() == 4


def test_concurrent_identical_misses_share_one_upstream_call() -> None:
    """Twenty tasks asking the same thing at once cause one model call; all get the answer."""
    fake = SlowFake()
    fake.reply("shared")
    llm = _cached(fake)

    async def scenario() -> list[Result[Completion, ServiceError]]:
        return await asyncio.gather(*(llm.complete(ASK) for _ in range(20)))

    results = asyncio.run(scenario())
    assert {r.unwrap().text for r in results} == {"shared"}
    assert fake.received() == 1
    assert sum(1 for r in results if r.unwrap().cache.hit) == 19  # type: ignore[union-attr]


def test_concurrent_identical_streams_share_one_upstream_stream() -> None:
    """Ten tasks streaming the same request get the same deltas from one upstream stream."""
    fake = SlowFake()
    fake.reply("a b c d")
    llm = _cached(fake)

    async def scenario() -> list[list[ChatDelta]]:
        return await asyncio.gather(*(_collect(llm, ASK) for _ in range(10)))

    streams = asyncio.run(scenario())
    texts = {"".join(d.text for d in deltas) for deltas in streams}
    assert texts == {"a b c d"}
    assert fake.received() == 1


def test_a_cancelled_leader_releases_the_fill_and_a_follower_fills() -> None:
    """Cancelling the task that is filling frees the lock; a waiting task then fills."""
    fake = SlowFake(pause=0.2)
    fake.reply("the follower's answer")  # the leader is cancelled before the model call
    cache = AsyncMemoryCache("llm")
    llm = _cached(fake, cache)

    async def scenario() -> Result[Completion, ServiceError]:
        leader = asyncio.create_task(llm.complete(ASK))
        await asyncio.sleep(0.05)
        follower = asyncio.create_task(llm.complete(ASK))
        await asyncio.sleep(0.05)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await follower

    result = asyncio.run(scenario())
    assert result.unwrap().text == "the follower's answer"
    assert fake.received() == 1
    lock = llm.key_for(ASK) + ":fill"
    assert asyncio.run(cache.get(lock)) == Success(None), "the fill lock was left behind"


def test_a_stream_left_early_is_not_stored_and_frees_its_flight() -> None:
    """A consumer that closes a missed stream after one delta stores nothing."""
    fake = AsyncFakeLLM()
    fake.reply("one two three")
    fake.reply("again")
    llm = _cached(fake)

    async def scenario() -> list[ChatDelta]:
        events = llm.stream(ASK)
        await anext(events)
        await events.aclose()
        return await _collect(llm, ASK)

    again = asyncio.run(scenario())
    assert "".join(d.text for d in again) == "again"
    assert fake.received() == 2


def test_embeddings_are_cached_per_text_with_partial_hits_merged() -> None:
    """Only texts not cached yet go upstream; the answer keeps the input order."""
    fake = AsyncFakeLLM()
    llm = _cached(fake)

    async def scenario() -> None:
        first = (await llm.embed(["a", "b"])).unwrap()
        mixed = (await llm.embed(["b", "c", "a"])).unwrap()
        assert mixed.vectors[0] == first.vectors[1]
        assert mixed.vectors[2] == first.vectors[0]
        assert mixed.cache is not None
        assert not mixed.cache.hit
        assert (await llm.embed(["c", "a"])).unwrap().cache.hit  # type: ignore[union-attr]

    asyncio.run(scenario())
    assert [call.texts for call in fake.embed_calls] == [("a", "b"), ("c",)]


def test_bad_input_is_refused_before_any_lookup() -> None:
    """An invalid request or a bare str of texts is InvalidRequest; nothing is called."""
    fake = AsyncFakeLLM()
    llm = _cached(fake)

    async def scenario() -> None:
        assert isinstance((await llm.complete(ChatRequest(()))).failure(), InvalidRequest)
        events = [event async for event in llm.stream(ChatRequest(()))]
        assert len(events) == 1
        assert isinstance(events[0].failure(), InvalidRequest)
        bad = await llm.embed("not a list")  # type: ignore[arg-type]
        assert isinstance(bad.failure(), InvalidRequest)
        await llm.aclose()

    asyncio.run(scenario())
    assert fake.received() == 0


def test_options_skip_the_cache_within_a_task() -> None:
    """options(read=False, write=False) sends every call upstream and stores nothing."""
    fake = AsyncFakeLLM()
    llm = _cached(fake)

    async def scenario() -> None:
        with llm.options(read=False, write=False):
            await llm.complete(ASK)
            await llm.complete(ASK)
        done = (await llm.complete(ASK)).unwrap()
        assert done.cache is not None
        assert not done.cache.hit

    asyncio.run(scenario())
    assert fake.received() == 3
