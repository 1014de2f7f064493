"""The LLM contract kit on the async fake through the sync bridge, and broken async fakes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator

import attrs
import pytest
from hypothesis import Phase, settings
from returns.result import Failure, Result, Success

from portside.adapters.memory import AsyncFakeLLM, FakeLLM
from portside.adapters.testing import EventLoopThread, LLMScript, run_llm_contract
from portside.domain import (
    ChatDelta,
    ChatRequest,
    Completion,
    ProtocolError,
    ServiceError,
    TimedOut,
    Unavailable,
)
from portside.ports import AsyncLLMPort, LLMPort

# Negative controls only need the kit to fail; derandomized so each fails every run.
CONTROL = settings(
    max_examples=200,
    stateful_step_count=10,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    database=None,
    deadline=None,
)


@pytest.fixture(name="runner", scope="module")
def _runner() -> Iterator[EventLoopThread]:
    runner = EventLoopThread()
    yield runner
    runner.close()


def _subject(
    runner: EventLoopThread, build: Callable[[], AsyncFakeLLM]
) -> Callable[[], tuple[LLMPort, LLMScript]]:
    def factory() -> tuple[LLMPort, LLMScript]:
        fake = build()
        return runner.blocking_llm(fake), fake

    return factory


def test_async_fake_meets_the_contract(runner: EventLoopThread) -> None:
    """AsyncFakeLLM, awaited on an event loop, passes every rule FakeLLM passes."""
    run_llm_contract(_subject(runner, AsyncFakeLLM), max_examples=40, steps=10)


def test_async_fake_follows_its_sync_fakes_settings(runner: EventLoopThread) -> None:
    """The async fake's limits are its FakeLLM's: a small text limit is what the kit sees."""
    from portside.adapters.testing import LLMKitOptions

    run_llm_contract(
        _subject(runner, lambda: AsyncFakeLLM(FakeLLM(max_text_chars=50))),
        LLMKitOptions(max_text_chars=50),
        max_examples=15,
    )


# -- negative controls: each broken async fake must fail the kit ------------------------


@attrs.define
class StreamLosesFinalUsage(AsyncFakeLLM):
    """Drops the usage from the final stream delta."""

    async def stream(
        self, request: ChatRequest
    ) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
        async for event in super().stream(request):
            match event:
                case Success(delta) if delta.finish_reason is not None:
                    yield Success(attrs.evolve(delta, usage=None))
                case _:
                    yield event


@attrs.define
class StreamEndsQuietly(AsyncFakeLLM):
    """Ends a dropped stream without its ProtocolError."""

    async def stream(
        self, request: ChatRequest
    ) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
        async for event in super().stream(request):
            if isinstance(event, Failure) and isinstance(event.failure(), ProtocolError):
                return
            yield event


@attrs.define
class TimeoutAsUnavailable(AsyncFakeLLM):
    """Maps a timeout to Unavailable."""

    async def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        result = await super().complete(request)
        match result:
            case Failure(TimedOut() as error):
                return Failure(Unavailable(service="x", operation="complete").caused_by(error))
        return result


@attrs.define
class RetriesBehindTheBack(AsyncFakeLLM):
    """Repeats a failed call once on its own, sending the request twice."""

    async def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        result = await super().complete(request)
        if isinstance(result, Failure):
            return await super().complete(request)
        return result


@pytest.mark.parametrize(
    "broken", [StreamLosesFinalUsage, StreamEndsQuietly, TimeoutAsUnavailable, RetriesBehindTheBack]
)
def test_kit_catches_a_broken_async_fake(
    runner: EventLoopThread, broken: type[AsyncFakeLLM]
) -> None:
    """Each deliberately broken async fake fails the kit through the bridge."""
    with pytest.raises(AssertionError):
        run_llm_contract(_subject(runner, broken), settings=CONTROL)


def test_the_async_fake_is_an_async_llm_port() -> None:
    """AsyncFakeLLM satisfies the AsyncLLMPort protocol (checked by mypy too)."""
    port: AsyncLLMPort = AsyncFakeLLM()
    assert port.identity.provider == "fake"
