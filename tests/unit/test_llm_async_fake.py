"""AsyncFakeLLM is a view of one FakeLLM's script and records, not a second model."""

from __future__ import annotations

import asyncio

from returns.result import Failure

from portside.adapters.memory import AsyncFakeLLM, FakeLLM
from portside.adapters.testing import collect_stream
from portside.domain import (
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    RateLimited,
    Unavailable,
)

REQUEST = ChatRequest((ChatMessage.user("hello there"),))


async def _collect(llm: AsyncFakeLLM, request: ChatRequest) -> list[object]:
    return [event async for event in llm.stream(request)]


def test_the_async_fake_answers_from_its_sync_fakes_script() -> None:
    """A reply scripted on the FakeLLM is what the async view completes; it is recorded there."""
    sync = FakeLLM()
    llm = AsyncFakeLLM(sync)
    sync.reply("from the sync side")
    llm.reply("from the async side")

    async def scenario() -> None:
        first = (await llm.complete(REQUEST)).unwrap()
        second = sync.complete(REQUEST).unwrap()
        assert (first.text, second.text) == ("from the sync side", "from the async side")

    asyncio.run(scenario())
    assert sync.requests == (REQUEST, REQUEST) == llm.requests
    assert llm.received() == 2


def test_the_async_stream_yields_the_sync_fakes_events() -> None:
    """The async stream's events equal FakeLLM.stream's for the same script."""
    llm = AsyncFakeLLM()
    twin = FakeLLM()
    for fake in (llm, twin):
        fake.reply("one two three")
    events = asyncio.run(_collect(llm, REQUEST))
    assert events == list(twin.stream(REQUEST))
    collected = collect_stream(events)  # type: ignore[arg-type]
    assert collected.completion is not None
    assert collected.completion.text == "one two three"


def test_the_async_stream_takes_its_entry_when_called() -> None:
    """stream() records the request and consumes the script before iteration starts."""
    llm = AsyncFakeLLM()
    llm.reply("x")
    events = llm.stream(REQUEST)
    assert (llm.pending, len(llm.requests)) == (0, 1)
    asyncio.run(events.aclose())


def test_scripted_failures_and_bad_input_come_back_as_values() -> None:
    """A scripted rate limit reaches embed; a bad request is InvalidRequest and records nothing."""
    llm = AsyncFakeLLM()
    llm.fail("rate_limited", retry_after=3)

    async def scenario() -> None:
        limited = await llm.embed(["a"])
        assert isinstance(limited, Failure)
        assert isinstance(limited.failure(), RateLimited)
        assert limited.failure().retry_after == 3
        bad = await llm.complete(ChatRequest(()))
        assert isinstance(bad.failure(), InvalidRequest)
        streamed = await _collect(llm, ChatRequest(()))
        assert len(streamed) == 1
        assert isinstance(streamed[0], Failure)
        assert await llm.embed(["a b"]) == llm.sync.embed(["a b"])

    asyncio.run(scenario())
    assert llm.requests == ()
    assert len(llm.embed_calls) == 3


def test_moderation_follows_the_sync_fakes_flags() -> None:
    """Words flagged on the async view are flagged by its moderate."""
    llm = AsyncFakeLLM()
    llm.flag("spam", "spam")
    verdicts = asyncio.run(llm.moderate(["buy spam now", "hello"])).unwrap()
    assert [v.flagged for v in verdicts.results] == [True, False]


def test_aclose_closes_the_shared_fake() -> None:
    """After aclose, both views refuse calls with Unavailable."""
    llm = AsyncFakeLLM()

    async def scenario() -> None:
        await llm.aclose()
        assert isinstance((await llm.complete(REQUEST)).failure(), Unavailable)

    asyncio.run(scenario())
    assert isinstance(llm.sync.embed(["a"]).failure(), Unavailable)
