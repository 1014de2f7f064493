"""moderate(texts) on the fakes and the OpenAI adapters (sync and async) over the local server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from returns.result import Failure

from portside.adapters.memory import AsyncFakeLLM, FakeLLM, ManualClock
from portside.adapters.openai import AsyncOpenAILLM, OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import EventLoopThread, OpenAITestServer, RawBody
from portside.domain import InvalidRequest, Moderations, ProtocolError, RateLimited


@pytest.fixture(name="server", scope="module")
def _server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(api_key="sk-moderation-0123456789") as server:
        yield server


@attrs.define
class _Awaited:
    """An async adapter's ``moderate`` awaited on a loop in a thread."""

    llm: Any
    runner: EventLoopThread

    def moderate(self, texts: Any, *, model: str | None = None) -> Any:
        return self.runner.run(self.llm.moderate(texts, model=model))


@pytest.fixture(name="runner", scope="module")
def _runner() -> Iterator[EventLoopThread]:
    runner = EventLoopThread()
    yield runner
    runner.close()


@pytest.fixture(name="subject", params=["fake", "openai", "async-fake", "async-openai"])
def _subject(
    request: pytest.FixtureRequest, server: OpenAITestServer, runner: EventLoopThread
) -> Iterator[Any]:
    server.clear()
    if request.param == "fake":
        fake = FakeLLM()
        yield fake, fake
        return
    if request.param == "async-fake":
        async_fake = AsyncFakeLLM()
        yield _Awaited(async_fake, runner), async_fake
        return
    if request.param == "async-openai":
        async_llm = AsyncOpenAILLM(
            api_key="sk-moderation-0123456789",
            base_url=server.base_url,
            retry=RetryPolicy(attempts=1),
            clock=ManualClock(),
        )
        yield _Awaited(async_llm, runner), server
        runner.run(async_llm.aclose())
        return
    llm = OpenAILLM(
        api_key="sk-moderation-0123456789",
        base_url=server.base_url,
        retry=RetryPolicy(attempts=1),
        clock=ManualClock(),
    )
    yield llm, server
    llm.close()


def test_scripted_flags_come_back_per_text_in_order(subject: Any) -> None:
    """A text holding a flagged word is flagged in its category; the others are not."""
    llm, script = subject
    script.flag("punch", "violence", score=0.8)
    result = llm.moderate(["hello there", "I will PUNCH you", "nice day"])
    moderations = result.unwrap()
    assert isinstance(moderations, Moderations)
    assert [m.flagged for m in moderations.results] == [False, True, False]
    assert moderations.flagged
    assert moderations.results[1].categories["violence"] is True
    assert moderations.results[1].scores["violence"] == pytest.approx(0.8)


def test_bad_texts_are_refused_before_sending(subject: Any) -> None:
    """moderate("one string"), moderate([]) and an empty text are InvalidRequest."""
    llm, _ = subject
    for texts in ("one string", [], [""], None):
        result = llm.moderate(texts)
        assert isinstance(result, Failure)
        assert isinstance(result.failure(), InvalidRequest)


def test_a_scripted_failure_surfaces_through_moderate(subject: Any) -> None:
    """A rate limit scripted on the backend is RateLimited with its retry_after."""
    llm, script = subject
    script.fail("rate_limited", retry_after=3)
    error = llm.moderate(["hello"]).failure()
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3


def test_a_wrong_count_of_results_is_a_protocol_error(server: OpenAITestServer) -> None:
    """Fewer verdicts than texts is ProtocolError, never a silently short answer."""
    llm = OpenAILLM(
        api_key="sk-moderation-0123456789", base_url=server.base_url, retry=RetryPolicy(attempts=1)
    )
    try:
        server.script(RawBody(b'{"model": "m", "results": [{"flagged": false}]}'))
        assert isinstance(llm.moderate(["a", "b"]).failure(), ProtocolError)
    finally:
        llm.close()
