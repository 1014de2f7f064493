"""The OpenAI adapter's fault matrix: every way the server can fail, through every call."""

from __future__ import annotations

import socket

import pytest
from returns.result import Failure, Result, Success

from portside.adapters.testing import (
    Delay,
    HttpError,
    OpenAITestServer,
    RawBody,
    Reply,
    StreamFault,
)
from portside.domain import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    Conflict,
    ContentFiltered,
    InvalidRequest,
    NotFound,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    ServiceError,
    TimedOut,
    Unauthorized,
    Unavailable,
)
from tests.integration.conftest import MakeLLM

pytestmark = [pytest.mark.faults, pytest.mark.timeout(20)]

REQUEST = ChatRequest((ChatMessage.user("tell me three words"),))

# (id, behaviour, expected error class): statuses and bodies that fail any call.
ANSWER_FAULTS = [
    ("429", HttpError(429, "slow down", "rate_limit_exceeded"), RateLimited),
    ("429-quota", HttpError(429, "no credit", "insufficient_quota"), QuotaExceeded),
    ("500", HttpError(500, "boom", type="server_error"), Unavailable),
    ("502", HttpError(502, "bad gateway"), Unavailable),
    ("503", HttpError(503, "overloaded"), Unavailable),
    ("504", HttpError(504, "gateway timeout"), TimedOut),
    ("401", HttpError(401, "bad key", "invalid_api_key"), Unauthorized),
    ("403", HttpError(403, "not allowed"), Unauthorized),
    ("400", HttpError(400, "messages[0] is wrong", "invalid_value"), InvalidRequest),
    ("400-filter", HttpError(400, "flagged", "content_filter"), ContentFiltered),
    ("400-policy", HttpError(400, "flagged", "content_policy_violation"), ContentFiltered),
    ("402", HttpError(402, "pay up"), QuotaExceeded),
    ("404", HttpError(404, "no such model", "model_not_found"), NotFound),
    ("409", HttpError(409, "busy"), Conflict),
    ("422", HttpError(422, "unprocessable"), InvalidRequest),
    ("malformed-json", RawBody(b'{"choices": [{"message": '), ProtocolError),
    ("html", RawBody(b"<html><body>Bad gateway</body></html>", 200, "text/html"), ProtocolError),
    ("not-utf8", RawBody(b"\xff\xfe\x00garbage", 200, "application/json"), ProtocolError),
]

# Answers that are JSON but not a chat completion: fine for the SDK, not for us.
WRONG_SHAPES = [
    ("no-choices", b'{"object": "chat.completion"}'),
    ("choices-null", b'{"choices": null}'),
    ("empty-choices", b'{"choices": []}'),
    ("a-list", b"[]"),
    ("a-string", b'"hello"'),
    ("no-message", b'{"choices": [{"finish_reason": "stop"}]}'),
    ("finish-not-text", b'{"choices": [{"message": {"content": "x"}, "finish_reason": 5}]}'),
    ("content-number", b'{"choices": [{"message": {"content": 5}, "finish_reason": "stop"}]}'),
    (
        "tool-call-no-name",
        b'{"choices": [{"message": {"tool_calls": [{"id": "c", "function": {}}]},'
        b' "finish_reason": "tool_calls"}]}',
    ),
    (
        "usage-text",
        b'{"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],'
        b' "usage": {"prompt_tokens": "many"}}',
    ),
]


def _failure(result: Result[object, ServiceError]) -> ServiceError:
    assert isinstance(result, Failure), f"expected a Failure, got {result!r}"
    error = result.failure()
    assert isinstance(error, ServiceError)
    return error


def _stream_failure(events: list[Result[ChatDelta, ServiceError]]) -> ServiceError:
    assert events, "a stream must yield something"
    assert all(isinstance(e, Success) for e in events[:-1]), "only the last event may fail"
    return _failure(events[-1])


@pytest.mark.parametrize(
    ("behaviour", "expected"), [c[1:] for c in ANSWER_FAULTS], ids=[c[0] for c in ANSWER_FAULTS]
)
def test_complete_maps_fault(
    make_llm: MakeLLM, openai_server: OpenAITestServer, behaviour: object, expected: type
) -> None:
    """Each error status or unreadable body is its taxonomy class from complete."""
    openai_server.script(behaviour)  # type: ignore[arg-type]
    error = _failure(make_llm().complete(REQUEST))
    assert type(error) is expected
    assert error.service == "openai"
    assert error.operation == "complete"
    assert error.__cause__ is not None, "the vendor exception is kept as the cause"


@pytest.mark.parametrize(
    ("behaviour", "expected"), [c[1:] for c in ANSWER_FAULTS], ids=[c[0] for c in ANSWER_FAULTS]
)
def test_stream_maps_fault(
    make_llm: MakeLLM, openai_server: OpenAITestServer, behaviour: object, expected: type
) -> None:
    """Each error status or unreadable body ends a stream with one Failure of its class."""
    openai_server.script(behaviour)  # type: ignore[arg-type]
    events = list(make_llm().stream(REQUEST))
    error = _stream_failure(events)
    assert type(error) is expected
    assert error.operation == "stream"


@pytest.mark.parametrize(
    ("behaviour", "expected"), [c[1:] for c in ANSWER_FAULTS], ids=[c[0] for c in ANSWER_FAULTS]
)
def test_embed_maps_fault(
    make_llm: MakeLLM, openai_server: OpenAITestServer, behaviour: object, expected: type
) -> None:
    """Each error status or unreadable body is its taxonomy class from embed."""
    openai_server.script(behaviour)  # type: ignore[arg-type]
    error = _failure(make_llm().embed(["one text"]))
    assert type(error) is expected
    assert error.operation == "embed"


@pytest.mark.parametrize("body", [c[1] for c in WRONG_SHAPES], ids=[c[0] for c in WRONG_SHAPES])
def test_wrong_shaped_200_is_protocol_error(
    make_llm: MakeLLM, openai_server: OpenAITestServer, body: bytes
) -> None:
    """A 200 that parses but is not a chat completion is ProtocolError, not a crash."""
    openai_server.script(RawBody(body))
    assert type(_failure(make_llm().complete(REQUEST))) is ProtocolError


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"index": 0, "embedding": "AAAAAA=="}]}',
        b'{"data": []}',
        b'{"data": [{"index": 3, "embedding": [0.1]}]}',
        b'{"data": [{"index": 0, "embedding": ["x"]}]}',
        b'{"object": "list"}',
    ],
    ids=["base64", "too-few", "bad-index", "not-floats", "no-data"],
)
def test_wrong_shaped_embeddings_are_protocol_error(
    make_llm: MakeLLM, openai_server: OpenAITestServer, body: bytes
) -> None:
    """Embeddings that are missing, misnumbered or not floats are ProtocolError."""
    openai_server.script(RawBody(body))
    assert type(_failure(make_llm().embed(["one text"]))) is ProtocolError


def test_rate_limit_surfaces_retry_after_seconds(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A 429's Retry-After header becomes RateLimited.retry_after."""
    openai_server.script(HttpError(429, "slow", headers=(("Retry-After", "12"),)))
    error = _failure(make_llm().complete(REQUEST))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 12.0


def test_rate_limit_prefers_retry_after_ms(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """``retry-after-ms`` is more precise than ``Retry-After`` and wins."""
    headers = (("Retry-After", "2"), ("retry-after-ms", "1500"))
    openai_server.script(HttpError(429, "slow", headers=headers))
    error = _failure(make_llm().complete(REQUEST))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 1.5


def test_rate_limit_with_http_date(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """A Retry-After HTTP date is measured from the injected clock's now."""
    # ManualClock starts at 1_700_000_000 = Tue, 14 Nov 2023 22:13:20 GMT.
    openai_server.script(
        HttpError(429, "slow", headers=(("Retry-After", "Tue, 14 Nov 2023 22:13:50 GMT"),))
    )
    error = _failure(make_llm().complete(REQUEST))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 30.0


def test_rate_limit_without_header_has_no_retry_after(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A 429 with no (or an unreadable) Retry-After leaves retry_after unset."""
    openai_server.script(HttpError(429, "slow", headers=(("Retry-After", "soon"),)))
    error = _failure(make_llm().complete(REQUEST))
    assert isinstance(error, RateLimited)
    assert error.retry_after is None


def test_bad_request_names_the_server_reason(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """InvalidRequest from a 400 carries the server's explanation."""
    openai_server.script(HttpError(400, "max_tokens is too large", "invalid_value"))
    error = _failure(make_llm().complete(REQUEST))
    assert isinstance(error, InvalidRequest)
    assert "max_tokens is too large" in error.message


def test_complete_read_timeout_is_timed_out(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A server slower than the read timeout is TimedOut, not a hang."""
    openai_server.script(Delay(10.0))
    error = _failure(make_llm(timeout=0.3).complete(REQUEST))
    assert isinstance(error, TimedOut)


def test_per_request_timeout_overrides_the_default(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """ChatRequest.timeout bounds that call even when the adapter's timeout is long."""
    openai_server.script(Delay(10.0))
    request = ChatRequest((ChatMessage.user("hi"),), timeout=0.3)
    error = _failure(make_llm(timeout=30.0).complete(request))
    assert isinstance(error, TimedOut)


def test_stalled_stream_is_cut_by_the_read_timeout(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A stream that stops sending after some deltas ends with TimedOut."""
    openai_server.script(StreamFault("stall", after=2, reply=Reply("one two three four")))
    events = list(make_llm(timeout=0.3).stream(REQUEST))
    assert [e.unwrap().text for e in events[:-1]] == ["one ", "two "]
    assert isinstance(_stream_failure(events), TimedOut)


def test_dropped_stream_is_unavailable(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """A connection closed mid-stream ends the stream with Unavailable after its deltas."""
    openai_server.script(StreamFault("drop", after=2, reply=Reply("one two three four")))
    events = list(make_llm().stream(REQUEST))
    assert len(events) == 3
    assert isinstance(_stream_failure(events), Unavailable)


def test_malformed_chunk_is_protocol_error(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """An SSE event that is not JSON ends the stream with ProtocolError."""
    openai_server.script(StreamFault("malformed", after=1, reply=Reply("one two three")))
    events = list(make_llm().stream(REQUEST))
    assert len(events) == 2
    assert isinstance(_stream_failure(events), ProtocolError)


def test_truncated_stream_is_protocol_error(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A stream that ends cleanly but without a finish reason is ProtocolError."""
    openai_server.script(StreamFault("truncated", after=3, reply=Reply("one two three four")))
    events = list(make_llm().stream(REQUEST))
    assert "".join(e.unwrap().text for e in events[:-1]) == "one two three "
    error = _stream_failure(events)
    assert isinstance(error, ProtocolError)
    assert "finish reason" in error.message


@pytest.mark.parametrize("kind", ["stall", "drop", "malformed", "truncated"])
def test_broken_complete_body(
    make_llm: MakeLLM, openai_server: OpenAITestServer, kind: str
) -> None:
    """A non-streamed body that stalls, drops or is cut fails with a taxonomy error."""
    openai_server.script(StreamFault(kind, after=1))  # type: ignore[arg-type]
    error = _failure(make_llm(timeout=0.3).complete(REQUEST))
    expected = {
        "stall": TimedOut,
        "drop": Unavailable,
        "malformed": ProtocolError,
        "truncated": ProtocolError,
    }
    assert type(error) is expected[kind]


def test_error_event_inside_a_stream(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """An ``error`` object sent as an SSE event maps by its code, here to Unavailable."""
    event = (
        b'data: {"error": {"message": "overloaded", "type": "server_error",'
        b' "code": "server_error"}}\n\n'
    )
    openai_server.script(RawBody(event + b"data: [DONE]\n\n", 200, "text/event-stream"))
    events = list(make_llm().stream(REQUEST))
    assert isinstance(_stream_failure(events), Unavailable)


def test_unreachable_server_is_unavailable(make_llm: MakeLLM) -> None:
    """Nothing listening on the port is Unavailable through every call."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llm = make_llm(base_url=f"http://127.0.0.1:{port}/v1", connect_timeout=0.5)
    assert isinstance(_failure(llm.complete(REQUEST)), Unavailable)
    assert isinstance(_stream_failure(list(llm.stream(REQUEST))), Unavailable)
    assert isinstance(_failure(llm.embed(["x"])), Unavailable)


def test_model_refusal_is_content_filtered(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A structured-output refusal with no content is ContentFiltered."""
    openai_server.script(
        RawBody(
            b'{"choices": [{"message": {"content": null, "refusal": "I cannot help"},'
            b' "finish_reason": "stop"}]}'
        )
    )
    error = _failure(make_llm().complete(REQUEST))
    assert isinstance(error, ContentFiltered)
    assert "I cannot help" in error.message


def test_content_filter_finish_is_a_value(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """An answer cut by the content filter is a Completion saying so, through both calls."""
    openai_server.script(Reply("partial", finish_reason="content_filter"))
    openai_server.script(Reply("partial", finish_reason="content_filter"))
    llm = make_llm()
    assert llm.complete(REQUEST).unwrap().finish_reason == "content_filter"
    assert list(llm.stream(REQUEST))[-1].unwrap().finish_reason == "content_filter"
