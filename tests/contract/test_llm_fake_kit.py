"""The LLM contract kit against FakeLLM, and broken fakes the kit must catch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs
import pytest
from hypothesis import Phase, settings
from returns.result import Failure, Result, Success

from portside.adapters.memory import FakeLLM
from portside.adapters.testing import (
    LLMKitOptions,
    LLMScript,
    collect_stream,
    fake_llm_subject,
    run_llm_contract,
)
from portside.domain import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    Completion,
    Embeddings,
    ProtocolError,
    ServiceError,
    TimedOut,
    Unavailable,
    Usage,
)
from portside.ports import LLMPort

# Negative controls only need the kit to fail: shrinking the counterexample would cost
# most of the time and prove nothing more.
FIND_ONLY = settings(
    max_examples=200,
    stateful_step_count=10,
    phases=[Phase.explicit, Phase.generate],
    database=None,
)


def test_fake_meets_the_contract() -> None:
    """FakeLLM passes every rule of the LLM contract kit."""
    run_llm_contract(fake_llm_subject, max_examples=60, steps=10)


def test_fake_meets_the_contract_with_a_small_text_limit() -> None:
    """The kit's over-limit embeddings case follows the adapter's configured limit."""

    def factory() -> tuple[LLMPort, LLMScript]:
        fake = FakeLLM(max_text_chars=50)
        return fake, fake

    run_llm_contract(factory, LLMKitOptions(max_text_chars=50), max_examples=20)


# -- negative controls: each broken fake must fail the kit ------------------------------


@attrs.define
class LosesFinalUsage(FakeLLM):
    """Drops the usage from the final stream delta."""

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        for event in super().stream(request):
            match event:
                case Success(delta) if delta.finish_reason is not None:
                    yield Success(attrs.evolve(delta, usage=None))
                case _:
                    yield event


@attrs.define
class EndsWithoutFinishSilently(FakeLLM):
    """Ends a dropped stream quietly instead of with a ProtocolError."""

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        for event in super().stream(request):
            if isinstance(event, Failure) and isinstance(event.failure(), ProtocolError):
                return
            yield event


@attrs.define
class TimeoutAsUnavailable(FakeLLM):
    """Maps a timeout to Unavailable, the classic wrong-class bug."""

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        result = super().complete(request)
        match result:
            case Failure(TimedOut() as error):
                return Failure(Unavailable(service="x", operation="complete").caused_by(error))
        return result


@attrs.define
class RetriesBehindTheBack(FakeLLM):
    """Retries a rate-limited call once on its own, sending the request twice."""

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        result = super().complete(request)
        if isinstance(result, Failure):
            return super().complete(request)
        return result


@attrs.define
class ConsumesScriptOnBadInput(FakeLLM):
    """Takes the next scripted answer even for a request it then refuses."""

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        if not request.messages:
            ok = ChatRequest((ChatMessage.user("x"),))
            super().complete(ok)
            self._requests.pop()
        return super().complete(request)


@attrs.define
class RoundedUsage(FakeLLM):
    """Reports scripted usage with the cached input lost."""

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        result = super().complete(request)
        match result:
            case Success(done):
                usage = Usage(done.usage.input_tokens, done.usage.output_tokens)
                return Success(attrs.evolve(done, usage=usage))
        return result


@attrs.define
class IgnoresDimensions(FakeLLM):
    """Answers embeddings at its default size whatever was asked."""

    def embed(
        self, texts: Sequence[str], *, model: str | None = None, dimensions: int | None = None
    ) -> Result[Embeddings, ServiceError]:
        return super().embed(texts, model=model)


@attrs.define
class LosesAMiddleDelta(FakeLLM):
    """Skips the second text delta of every stream."""

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        for position, event in enumerate(super().stream(request)):
            match event:
                case Success(delta) if position == 1 and delta.text:
                    continue
            yield event


@pytest.mark.parametrize(
    "broken",
    [
        LosesFinalUsage,
        EndsWithoutFinishSilently,
        TimeoutAsUnavailable,
        RetriesBehindTheBack,
        ConsumesScriptOnBadInput,
        RoundedUsage,
        IgnoresDimensions,
        LosesAMiddleDelta,
    ],
)
def test_kit_catches_a_broken_fake(broken: type[FakeLLM]) -> None:
    """Each deliberately broken fake fails the kit."""

    def factory() -> tuple[LLMPort, LLMScript]:
        fake = broken()
        return fake, fake

    with pytest.raises(AssertionError):
        run_llm_contract(factory, settings=FIND_ONLY)


def test_collect_stream_names_each_broken_rule() -> None:
    """The stream checker reports usage too early, a late delta and a missing finish."""
    early = collect_stream([Success(ChatDelta("a", usage=Usage(1, 1)))])
    assert early.problems == (
        "usage on a delta without a finish reason",
        "the stream ended without a finish reason",
    )
    late = collect_stream(
        [Success(ChatDelta(finish_reason="stop", usage=Usage())), Success(ChatDelta("x"))]
    )
    assert "a delta followed the one carrying the finish reason" in late.problems
    after = collect_stream(
        [Failure(ProtocolError(service="s", operation="o")), Success(ChatDelta("x"))]
    )
    assert after.problems == ("an event followed a Failure",)
