"""FakeLLM: scripted and computed answers, failures, streaming, tool calls, records."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from returns.result import Failure, Result, Success

from portside.adapters.memory import (
    FAILURE_KINDS,
    FailureKind,
    FakeLLM,
    Reply,
)
from portside.adapters.testing import collect_stream
from portside.domain import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    Completion,
    InvalidRequest,
    LLMIdentity,
    ProtocolError,
    RateLimited,
    ServiceError,
    ToolCall,
    ToolCallDelta,
    Unavailable,
    Usage,
)
from portside.ports import LLMPort

ASK = ChatRequest((ChatMessage.system("be brief"), ChatMessage.user("say hello please")))


def _deltas(events: Iterator[Result[ChatDelta, ServiceError]]) -> list[ChatDelta]:
    return [event.unwrap() for event in events]


def test_the_fake_is_an_llm_port_with_a_memory_identity() -> None:
    """FakeLLM satisfies LLMPort and names itself fake at memory://."""
    fake = FakeLLM(model="m1")
    assert LLMPort in type(fake).__mro__
    assert fake.identity == LLMIdentity("fake", "memory://", "m1")


def test_scripted_replies_come_in_order() -> None:
    """Replies queue up and each chat call takes the next one."""
    fake = FakeLLM()
    fake.reply("one")
    fake.reply("two")
    assert fake.complete(ASK).unwrap().text == "one"
    assert "".join(d.text for d in _deltas(fake.stream(ASK))) == "two"
    assert fake.pending == 0


def test_without_a_script_it_echoes_or_asks_the_responder() -> None:
    """An empty script echoes the last user message, or uses the responder."""
    assert FakeLLM().complete(ASK).unwrap().text == "say hello please"
    fake = FakeLLM(responder=lambda request: f"{len(request.messages)} messages")
    assert fake.complete(ASK).unwrap().text == "2 messages"
    fake = FakeLLM(responder=lambda request: Reply("x", usage=Usage(1, 1)))
    assert fake.complete(ASK).unwrap().usage == Usage(1, 1)


def test_a_responder_may_return_an_error() -> None:
    """An error returned by the responder is the call's Failure."""
    error = Unavailable(service="fake", operation="complete", message="down")
    fake = FakeLLM(responder=lambda request: error)
    assert fake.complete(ASK).failure() is error


def test_usage_counts_whitespace_tokens() -> None:
    """Input counts every message's words, output the reply's words and tool arguments."""
    fake = FakeLLM()
    fake.reply("two words", tool_calls=(ToolCall("c", "f", '{"a": 1}'),))
    assert fake.complete(ASK).unwrap().usage == Usage(input_tokens=5, output_tokens=4)


def test_the_served_model_is_the_requested_or_the_default() -> None:
    """Completion.model is the request's model when given, else the fake's default."""
    fake = FakeLLM(model="default")
    assert fake.complete(ASK).unwrap().model == "default"
    other = ChatRequest(ASK.messages, model="other")
    assert fake.complete(other).unwrap().model == "other"


def test_stream_splits_words_and_ends_with_finish_and_usage() -> None:
    """Deltas are words with their leading space; only the last has finish and usage."""
    fake = FakeLLM()
    fake.reply(" hello  big\nworld ")
    deltas = _deltas(fake.stream(ASK))
    assert [d.text for d in deltas] == [" hello", "  big", "\nworld", " ", ""]
    assert [d.finish_reason for d in deltas] == [None, None, None, None, "stop"]
    assert deltas[-1].usage == Usage(5, 3)
    assert all(d.usage is None for d in deltas[:-1])


def test_tool_calls_complete_and_stream() -> None:
    """Tool calls come whole from complete and as joinable fragments from stream."""
    calls = (ToolCall("c1", "lookup", '{"city": "Paris"}'), ToolCall("c2", "now", "{}"))
    fake = FakeLLM()
    fake.reply(tool_calls=calls)
    fake.reply(tool_calls=calls)
    completion = fake.complete(ASK).unwrap()
    assert (completion.tool_calls, completion.finish_reason) == (calls, "tool_calls")
    deltas = _deltas(fake.stream(ASK))
    fragments = [f for d in deltas for f in d.tool_calls]
    assert fragments[0] == ToolCallDelta(0, "c1", "lookup", "")
    assert len([f for f in fragments if f.index == 0]) > 2  # arguments arrive in pieces
    folded = collect_stream(iter(Success(d) for d in deltas))
    assert folded.completion == completion


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_scripted_finish_reasons(reason: str) -> None:
    """Finish reasons length and content_filter are answers, through complete and stream alike."""
    fake = FakeLLM()
    fake.reply("partial answer", finish_reason=reason)  # type: ignore[arg-type]
    fake.reply("partial answer", finish_reason=reason)  # type: ignore[arg-type]
    assert fake.complete(ASK).unwrap().finish_reason == reason
    assert _deltas(fake.stream(ASK))[-1].finish_reason == reason


def test_max_tokens_cuts_the_answer_with_length() -> None:
    """A reply longer than max_tokens is cut there and finishes with length."""
    fake = FakeLLM()
    fake.reply("one two  three four")
    request = ChatRequest(ASK.messages, max_tokens=2)
    completion = fake.complete(request).unwrap()
    assert (completion.text, completion.finish_reason) == ("one two", "length")
    assert completion.usage.output_tokens == 2


def test_a_stop_sequence_ends_the_answer() -> None:
    """The reply ends before the first stop sequence, with finish reason stop."""
    fake = FakeLLM()
    fake.reply("a b END c")
    completion = fake.complete(ChatRequest(ASK.messages, stop=("END", "b"))).unwrap()
    assert (completion.text, completion.finish_reason) == ("a ", "stop")


@pytest.mark.parametrize("kind", list(FAILURE_KINDS))
def test_each_failure_kind_through_every_call(kind: FailureKind) -> None:
    """A scripted kind is its error class through complete, stream and embed."""
    fake = FakeLLM()
    expected = FAILURE_KINDS[kind]
    for _ in range(3):
        fake.fail(kind)
    complete = fake.complete(ASK).failure()
    streamed = list(fake.stream(ASK))
    embed = fake.embed(["x"]).failure()
    assert len(streamed) == 1
    errors = [complete, streamed[0].failure(), embed]
    assert all(type(e) is expected for e in errors)
    assert [e.operation for e in errors] == ["complete", "stream", "embed"]
    assert all(e.service == "fake" for e in errors)


def test_rate_limited_carries_retry_after() -> None:
    """A scripted rate limit carries the retry-after it was given."""
    fake = FakeLLM()
    fake.fail("rate_limited", retry_after=7.5)
    match fake.complete(ASK):
        case Failure(RateLimited(retry_after=7.5)):
            pass
        case other:
            pytest.fail(f"expected RateLimited(7.5), got {other!r}")


def test_a_scripted_error_instance_is_returned_as_is() -> None:
    """fail() with an error value returns exactly that error."""
    error = Unavailable(service="upstream", operation="x", message="maintenance")
    fake = FakeLLM()
    fake.fail(error)
    assert fake.complete(ASK).failure() is error


def test_an_unknown_failure_kind_is_a_programming_error() -> None:
    """fail() with a kind it does not know raises at once."""
    with pytest.raises(ValueError, match="unknown failure kind"):
        FakeLLM().fail("exploded")  # type: ignore[arg-type]


def test_embed_leaves_scripted_replies_for_chat() -> None:
    """An embeddings call skips a scripted reply at the head; chat still gets it."""
    fake = FakeLLM()
    fake.reply("kept")
    assert fake.embed(["x"]).unwrap().dimensions == 64
    assert fake.complete(ASK).unwrap().text == "kept"


def test_a_dropped_stream_ends_with_protocol_error() -> None:
    """drop_stream_after(n) yields n deltas then one ProtocolError."""
    fake = FakeLLM()
    fake.drop_stream_after(2, text="a b c d")
    events = list(fake.stream(ASK))
    assert [e.unwrap().text for e in events[:-1]] == ["a", " b"]
    assert all(e.unwrap().finish_reason is None for e in events[:-1])
    error = events[-1].failure()
    assert isinstance(error, ProtocolError)
    assert "after 2 deltas" in error.message


def test_a_dropped_answer_is_a_protocol_error_for_complete() -> None:
    """A drop met by complete() is a truncated body: ProtocolError."""
    fake = FakeLLM()
    fake.drop_stream_after(1)
    assert isinstance(fake.complete(ASK).failure(), ProtocolError)
    with pytest.raises(ValueError, match="negative"):
        fake.drop_stream_after(-1)


def test_requests_are_recorded_as_typed_values() -> None:
    """Accepted chat and embeddings calls are recorded in order; refused ones are not."""
    fake = FakeLLM()
    fake.complete(ASK)
    list(fake.stream(ChatRequest(ASK.messages, seed=3)))
    fake.complete(ChatRequest(()))
    fake.embed(["a", "b"], dimensions=4)
    fake.embed([])
    assert fake.requests == (ASK, ChatRequest(ASK.messages, seed=3))
    assert [(c.texts, c.dimensions) for c in fake.embed_calls] == [(("a", "b"), 4)]
    assert fake.received() == 3


def test_stream_checks_and_takes_its_answer_when_called() -> None:
    """stream() validates, records and takes its script entry before iteration."""
    fake = FakeLLM()
    fake.reply("first")
    fake.reply("second")
    bad = fake.stream(ChatRequest(()))
    pending = fake.stream(ASK)
    assert fake.complete(ASK).unwrap().text == "second"
    assert isinstance(next(bad).failure(), InvalidRequest)
    assert "".join(d.text for d in _deltas(pending)) == "first"


@pytest.mark.parametrize(
    "request_",
    [ChatRequest(()), ChatRequest(ASK.messages, model=""), ChatRequest(ASK.messages, n=3)],
)
def test_invalid_requests_fail_everywhere_and_take_nothing(request_: ChatRequest) -> None:
    """A refused request is InvalidRequest via complete and stream, script untouched."""
    fake = FakeLLM()
    fake.reply("kept")
    assert isinstance(fake.complete(request_).failure(), InvalidRequest)
    assert [type(e.failure()) for e in fake.stream(request_)] == [InvalidRequest]
    assert fake.pending == 1
    assert fake.received() == 0


def test_closed_fake_is_unavailable() -> None:
    """After close() every call is Unavailable; records stay readable."""
    fake = FakeLLM()
    fake.complete(ASK)
    fake.close()
    assert isinstance(fake.complete(ASK).failure(), Unavailable)
    assert isinstance(next(fake.stream(ASK)).failure(), Unavailable)
    assert isinstance(fake.embed(["x"]).failure(), Unavailable)
    assert len(fake.requests) == 1


def test_concurrent_calls_take_each_scripted_reply_once() -> None:
    """Threads sharing a fake get every scripted reply exactly once."""
    fake = FakeLLM()
    texts = [f"reply {i}" for i in range(200)]
    for text in texts:
        fake.reply(text)
    answers: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            result: Result[Completion, ServiceError] = fake.complete(ASK)
            with lock:
                answers.append(result.unwrap().text)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == sorted(texts)
    assert len(fake.requests) == 200
