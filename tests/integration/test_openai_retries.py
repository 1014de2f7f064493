"""The OpenAI adapter is the one retry owner: counted from the server's request log."""

from __future__ import annotations

import pytest
from returns.result import Failure, Success

from portside.adapters.memory import ManualClock
from portside.adapters.resilience import RetryPolicy, retries_disabled
from portside.adapters.testing import (
    Delay,
    HttpError,
    OpenAITestServer,
    RawBody,
    Reply,
    StreamFault,
)
from portside.domain import (
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    ProtocolError,
    RateLimited,
    Unavailable,
)
from tests.integration.conftest import MakeLLM

pytestmark = pytest.mark.timeout(20)

REQUEST = ChatRequest((ChatMessage.user("hello there"),))
# No jitter, so the backoff each test expects is exact.
POLICY = RetryPolicy(attempts=3, base=0.5, cap=8.0, jitter=0.0, max_retry_after=30.0)


def test_retryable_errors_are_retried_with_backoff(
    make_llm: MakeLLM, openai_server: OpenAITestServer, manual_clock: ManualClock
) -> None:
    """Two 503s then an answer: three requests, backing off 0.5 s then 1 s on the clock."""
    openai_server.script(HttpError(503), HttpError(503))
    result = make_llm(retry=POLICY).complete(REQUEST)
    assert result.unwrap().text == "hello there"
    assert len(openai_server.requests) == 3
    assert manual_clock.monotonic() == 1.5


def test_retry_after_is_honoured(
    make_llm: MakeLLM, openai_server: OpenAITestServer, manual_clock: ManualClock
) -> None:
    """A 429 with Retry-After waits exactly that long before the next attempt."""
    openai_server.script(HttpError(429, headers=(("Retry-After", "7"),)))
    assert isinstance(make_llm(retry=POLICY).complete(REQUEST), Success)
    assert len(openai_server.requests) == 2
    assert manual_clock.monotonic() == 7.0


def test_long_retry_after_is_returned_not_waited(
    make_llm: MakeLLM, openai_server: OpenAITestServer, manual_clock: ManualClock
) -> None:
    """A Retry-After above max_retry_after is handed to the caller at once."""
    openai_server.script(HttpError(429, headers=(("Retry-After", "300"),)))
    result = make_llm(retry=POLICY).complete(REQUEST)
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, RateLimited)
    assert error.retry_after == 300.0
    assert len(openai_server.requests) == 1
    assert manual_clock.monotonic() == 0.0


def test_attempts_are_bounded(
    make_llm: MakeLLM, openai_server: OpenAITestServer, manual_clock: ManualClock
) -> None:
    """When every attempt fails, the last error comes back after exactly ``attempts``."""
    openai_server.script(*[HttpError(500)] * 5)
    result = make_llm(retry=POLICY).complete(REQUEST)
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), Unavailable)
    assert len(openai_server.requests) == 3
    assert openai_server.pending() == 2


def test_malformed_answer_is_retried(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """A ProtocolError (an HTML page from a proxy) is retryable."""
    openai_server.script(RawBody(b"<html>oops</html>", 200, "text/html"))
    assert isinstance(make_llm(retry=POLICY).complete(REQUEST), Success)
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize(
    "error",
    [HttpError(400, "bad"), HttpError(401), HttpError(429, code="insufficient_quota")],
    ids=["400", "401", "quota"],
)
def test_non_retryable_errors_are_sent_once(
    make_llm: MakeLLM,
    openai_server: OpenAITestServer,
    manual_clock: ManualClock,
    error: HttpError,
) -> None:
    """Errors that cannot succeed on repeat are returned after one request."""
    openai_server.script(error)
    assert isinstance(make_llm(retry=POLICY).complete(REQUEST), Failure)
    assert len(openai_server.requests) == 1
    assert manual_clock.monotonic() == 0.0


def test_invalid_request_sends_nothing(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """A request the rules refuse never reaches the server, retries or not."""
    llm = make_llm(retry=POLICY)
    result = llm.complete(ChatRequest(()))
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), InvalidRequest)
    events = list(llm.stream(ChatRequest((ChatMessage.user("x"),), max_tokens=-1)))
    assert len(events) == 1
    assert isinstance(events[0].failure(), InvalidRequest)
    assert isinstance(llm.embed([]).failure(), InvalidRequest)
    assert openai_server.requests == []


def test_retries_can_be_switched_off_in_tests(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """Inside ``retries_disabled()`` every call makes exactly one attempt."""
    openai_server.script(HttpError(503), HttpError(503))
    with retries_disabled():
        assert isinstance(make_llm(retry=POLICY).complete(REQUEST), Failure)
    assert len(openai_server.requests) == 1


def test_stream_retries_before_the_first_delta(
    make_llm: MakeLLM, openai_server: OpenAITestServer, manual_clock: ManualClock
) -> None:
    """A stream refused before any delta is retried and then streams normally."""
    openai_server.script(HttpError(503), StreamFault("drop", after=0))
    events = list(make_llm(retry=POLICY).stream(REQUEST))
    assert "".join(e.unwrap().text for e in events) == "hello there"
    assert events[-1].unwrap().finish_reason == "stop"
    assert len(openai_server.requests) == 3
    assert manual_clock.monotonic() == 1.5


def test_stream_is_never_retried_after_a_delta(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """Once a delta was yielded, a failure ends the stream: repeating would duplicate text."""
    openai_server.script(StreamFault("drop", after=1, reply=Reply("one two three")))
    events = list(make_llm(retry=POLICY).stream(REQUEST))
    assert events[0].unwrap().text == "one "
    assert isinstance(events[-1].failure(), Unavailable)
    assert len(openai_server.requests) == 1


def test_embed_retries_each_batch(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """A failed embeddings batch is retried on its own; earlier batches are not re-sent."""
    # Batch one answers (a zero delay passes through), batch two fails once.
    openai_server.script(Delay(0.0), HttpError(503))
    result = make_llm(retry=POLICY, embed_batch_size=2).embed(["a", "b", "c"])
    assert len(result.unwrap().vectors) == 3
    assert [r.body["input"] for r in openai_server.requests] == [["a", "b"], ["c"], ["c"]]


def test_embed_failure_after_retries_fails_the_call(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """When a batch keeps failing, the whole call fails and no later batch is sent."""
    openai_server.script(*[RawBody(b"not json")] * 3)
    result = make_llm(retry=POLICY, embed_batch_size=2).embed(["a", "b", "c"])
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), ProtocolError)
    assert [r.body["input"] for r in openai_server.requests] == [["a", "b"]] * 3


def test_sdk_does_not_retry_on_its_own(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """With the adapter's retries off, a 503 is exactly one request: the SDK adds none."""
    openai_server.script(HttpError(503), HttpError(503), HttpError(503))
    assert isinstance(make_llm(retry=RetryPolicy(attempts=1)).complete(REQUEST), Failure)
    assert len(openai_server.requests) == 1
