"""AsyncCachingLLM cancelled after 0, 1, 2... loop iterations: no lock, flight or task left."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

import attrs
import pytest
from returns.result import Result, Success

from portside.adapters.llm_cache import AsyncCachingLLM
from portside.adapters.memory import AsyncFakeLLM, AsyncMemoryCache
from portside.adapters.observability import Metrics
from portside.domain import ChatDelta, ChatMessage, ChatRequest, Completion, FillClaim, ServiceError

ASK = ChatRequest((ChatMessage.user("name three rivers"),), temperature=0.0)


@attrs.define
class SuspendingCache(AsyncMemoryCache):
    """Every call the LLM cache makes yields to the loop first, as a network cache would."""

    async def get(self, key: str) -> Result[bytes | None, ServiceError]:
        await asyncio.sleep(0)
        return await super().get(key)

    async def get_many(self, keys: Any) -> Result[dict[str, bytes], ServiceError]:
        await asyncio.sleep(0)
        return await super().get_many(keys)

    async def set_many(self, items: Any, ttl: float | None = None) -> Result[None, ServiceError]:
        await asyncio.sleep(0)
        return await super().set_many(items, ttl)

    async def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        await asyncio.sleep(0)
        return await super().get_or_lock(key, lock, token, ttl)

    async def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        await asyncio.sleep(0)
        return await super().set_and_unlock(key, value, ttl, lock, token)

    async def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        await asyncio.sleep(0)
        return await super().delete_if_equal(key, expected)


@attrs.define
class SuspendingFake(AsyncFakeLLM):
    """An async fake that yields to the loop before answering and between deltas."""

    async def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        await asyncio.sleep(0)
        return await super().complete(request)

    async def stream(  # type: ignore[override]
        self, request: ChatRequest
    ) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
        await asyncio.sleep(0)
        async with contextlib.aclosing(super().stream(request)) as events:
            async for event in events:
                await asyncio.sleep(0)
                yield event

    async def embed(self, texts: Any, **options: Any) -> Any:
        await asyncio.sleep(0)
        return await super().embed(texts, **options)


async def _drain(llm: AsyncCachingLLM) -> list[Any]:
    async with contextlib.aclosing(llm.stream(ASK)) as events:
        return [event async for event in events]


CALLS: dict[str, Callable[[AsyncCachingLLM], Coroutine[Any, Any, Any]]] = {
    "complete": lambda llm: llm.complete(ASK),
    "stream": _drain,
    "embed": lambda llm: llm.embed(["a river", "a sea"]),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_cancelled_at_every_await_point_leaves_nothing_behind(call: str) -> None:
    """After each cancellation: no fill lock, no flight, no task; the next call answers."""

    async def scenario() -> int:
        for ticks in range(500):
            cache = SuspendingCache("llm")
            llm = AsyncCachingLLM(SuspendingFake(), cache, metrics=Metrics())
            task = asyncio.create_task(CALLS[call](llm))
            for _ in range(ticks):
                await asyncio.sleep(0)
            if task.done():
                return ticks
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            key = llm.key_for(ASK)
            assert (await cache.get(key + ":fill")) == Success(None), f"lock left at {ticks}"
            assert not llm._single.in_flight(f"{key}|True"), f"flight left at {ticks}"
            assert not llm._streams.in_flight(f"{key}|True"), f"stream flight left at {ticks}"
            assert asyncio.all_tasks() == {asyncio.current_task()}, f"task left at {ticks}"
            outcome = await CALLS[call](llm)
            if call == "stream":
                assert all(isinstance(event, Success) for event in outcome)
            else:
                assert isinstance(outcome, Success), outcome
        raise AssertionError("the call never completed")

    reached = asyncio.run(scenario())
    assert reached > 3, "the sweep reached too few await points to mean anything"
