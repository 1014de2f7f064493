"""The LLM contract kit on AsyncOpenAILLM over the local server, and async against sync."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx2
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from portside.adapters.memory import ManualClock
from portside.adapters.openai import AsyncOpenAILLM, OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import (
    EventLoopThread,
    LLMKitOptions,
    LLMScript,
    OpenAITestServer,
    ScriptedReply,
    chat_requests,
    collect_stream,
    replies,
    run_llm_contract,
)
from portside.domain import ChatRequest
from portside.ports import LLMPort

pytestmark = pytest.mark.timeout(180)

MAX_TEXT_CHARS = 200
READ_TIMEOUT = 0.5  # as the sync kit test: cuts the kit's timed_out answers
_TLS = ssl.create_default_context()


@pytest.fixture(name="kit_server", scope="module")
def _kit_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(api_key="sk-kit", stall_seconds=10.0) as server:
        yield server


@pytest.fixture(name="runner", scope="module")
def _runner() -> Iterator[EventLoopThread]:
    runner = EventLoopThread()
    yield runner
    runner.close()


def _async_llm(server: OpenAITestServer, attempts: int = 1) -> AsyncOpenAILLM:
    return AsyncOpenAILLM(
        api_key="sk-kit",
        base_url=server.base_url,
        timeout=READ_TIMEOUT,
        # The kit counts requests: the adapter's own retries must be off.
        retry=RetryPolicy(attempts=attempts, base=0.0, jitter=0.0),
        clock=ManualClock(),
        max_embed_text_chars=MAX_TEXT_CHARS,
        http_client=httpx2.AsyncClient(verify=_TLS),
    )


def test_async_openai_adapter_meets_the_contract(
    kit_server: OpenAITestServer, runner: EventLoopThread
) -> None:
    """AsyncOpenAILLM over real HTTP and SSE, awaited on a loop, passes every rule."""

    def subject() -> tuple[LLMPort, LLMScript]:
        kit_server.clear()
        return runner.blocking_llm(_async_llm(kit_server)), kit_server

    run_llm_contract(
        subject, LLMKitOptions(max_text_chars=MAX_TEXT_CHARS), max_examples=20, steps=8
    )


@pytest.fixture(name="twins", scope="module")
def _twins(
    kit_server: OpenAITestServer, runner: EventLoopThread
) -> Iterator[tuple[LLMPort, LLMPort]]:
    sync = OpenAILLM(
        api_key="sk-kit",
        base_url=kit_server.base_url,
        timeout=READ_TIMEOUT,
        retry=RetryPolicy(attempts=1),
        clock=ManualClock(),
        max_embed_text_chars=MAX_TEXT_CHARS,
        http_client=httpx2.Client(verify=_TLS),
    )
    bridged = runner.blocking_llm(_async_llm(kit_server))
    yield sync, bridged
    sync.close()
    bridged.close()


@settings(max_examples=30, deadline=None)
@given(reply=replies(), request=chat_requests(), via=st.sampled_from(["complete", "stream"]))
def test_async_and_sync_adapters_answer_alike(
    kit_server: OpenAITestServer,
    twins: tuple[LLMPort, LLMPort],
    reply: ScriptedReply,
    request: ChatRequest,
    via: str,
) -> None:
    """The same scripted answer reads the same through AsyncOpenAILLM and OpenAILLM."""
    answers: list[object] = []
    for llm in twins:
        kit_server.reply(
            reply.text,
            finish_reason=reply.finish_reason,
            tool_calls=reply.tool_calls,
            usage=reply.usage,
        )
        if via == "complete":
            answers.append(llm.complete(request))
        else:
            answers.append(list(llm.stream(request)))
    sync_answer, async_answer = answers
    assert async_answer == sync_answer
    if via == "stream":
        assert not collect_stream(async_answer).problems  # type: ignore[arg-type]


@settings(max_examples=10, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=5),
    dimensions=st.none() | st.integers(1, 16),
)
def test_async_and_sync_embeddings_agree(
    twins: tuple[LLMPort, LLMPort], texts: list[str], dimensions: int | None
) -> None:
    """Embeddings of the same texts are equal through both adapters."""
    sync, bridged = twins
    assert bridged.embed(texts, dimensions=dimensions) == sync.embed(texts, dimensions=dimensions)


def test_kit_catches_async_adapter_retrying_behind_the_kits_back(
    kit_server: OpenAITestServer, runner: EventLoopThread
) -> None:
    """Negative control: AsyncOpenAILLM with its own retries on sends a call twice."""

    def subject() -> tuple[LLMPort, LLMScript]:
        kit_server.clear()
        retrying = _async_llm(kit_server, attempts=2)
        return runner.blocking_llm(retrying), kit_server

    control = settings(
        max_examples=40,
        stateful_step_count=6,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
    )
    with pytest.raises(AssertionError):
        run_llm_contract(subject, LLMKitOptions(max_text_chars=MAX_TEXT_CHARS), settings=control)
