"""acomplete_structured: the sync structured output's asks and checks, awaited on any async port."""

from __future__ import annotations

import asyncio

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result

from portside.adapters.memory import AsyncFakeLLM, FakeLLM
from portside.adapters.structured import Structured, acomplete_structured, complete_structured
from portside.domain import (
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    ProtocolError,
    RateLimited,
    ServiceError,
)

ASK = ChatRequest((ChatMessage.user("Extract the city"),))


@attrs.frozen
class City:
    name: str
    population: int = attrs.field(validator=attrs.validators.ge(0))


def test_a_misfit_is_asked_again_and_the_fit_is_built() -> None:
    """A reply that breaks the schema is answered with the problem; the next one is built."""
    llm = AsyncFakeLLM()
    llm.reply('{"name": "Paris"}')
    llm.reply('{"name": "Paris", "population": 2100000}')
    result = asyncio.run(acomplete_structured(llm, ASK, City))
    built = result.unwrap()
    assert built.value == City("Paris", 2_100_000)
    assert built.attempts == 2
    assert "population" in (llm.requests[1].messages[-1].content or "")


def test_errors_are_returned_as_values_without_retries() -> None:
    """A service error comes back at once; no fit in max_attempts is a ProtocolError."""
    llm = AsyncFakeLLM()

    async def scenario() -> tuple[Result[Structured[City], ServiceError], ...]:
        llm.fail("rate_limited", retry_after=1)
        limited = await acomplete_structured(llm, ASK, City)
        for _ in range(2):
            llm.reply("not json")
        misfit = await acomplete_structured(llm, ASK, City, max_attempts=2)
        bad = await acomplete_structured(llm, ASK, City, max_attempts=0)
        return limited, misfit, bad

    limited, misfit, bad = asyncio.run(scenario())
    assert isinstance(limited.failure(), RateLimited)
    assert isinstance(misfit.failure(), ProtocolError)
    assert isinstance(bad.failure(), InvalidRequest)
    assert llm.received() == 3


@settings(max_examples=30, deadline=None)
@given(
    replies=st.lists(
        st.sampled_from(
            [
                '{"name": "Oslo", "population": 700000}',
                '{"name": "Oslo", "population": -1}',
                '{"name": 3}',
                '```json\n{"name": "Rome", "population": 1}\n```',
                "nope",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
    attempts=st.integers(1, 3),
)
def test_async_and_sync_structured_output_agree(replies: list[str], attempts: int) -> None:
    """For the same replies, the async and sync functions give equal results and requests."""
    sync, async_fake = FakeLLM(), AsyncFakeLLM()
    for text in replies:
        sync.reply(text)
        async_fake.reply(text)
    expected = complete_structured(sync, ASK, City, max_attempts=attempts)
    got = asyncio.run(acomplete_structured(async_fake, ASK, City, max_attempts=attempts))
    if isinstance(expected, Failure):  # errors compare by class and message
        error, wanted = got.failure(), expected.failure()
        assert (type(error), error.message) == (type(wanted), wanted.message)
    else:
        assert got == expected
    assert async_fake.requests == sync.requests


def test_a_cancelled_ask_propagates_cancellation() -> None:
    """Cancelling the task mid-ask raises CancelledError, not a Failure."""

    @attrs.define
    class Slow(AsyncFakeLLM):
        async def complete(self, request: ChatRequest) -> Result[object, ServiceError]:  # type: ignore[override]
            await asyncio.sleep(10)
            return await super().complete(request)

    async def scenario() -> None:
        task = asyncio.create_task(acomplete_structured(Slow(), ASK, City))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
