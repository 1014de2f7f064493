"""The OpenAI adapter's chat completions and streams against the local server."""

from __future__ import annotations

import pytest

from portside.adapters.openai import OpenAILLM
from portside.adapters.testing import OpenAITestServer, RawBody, Reply
from portside.domain import (
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    LLMIdentity,
    ResponseFormat,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Unavailable,
    Usage,
)
from tests.integration.conftest import API_KEY, MakeLLM

pytestmark = pytest.mark.timeout(20)

REQUEST = ChatRequest((ChatMessage.system("be brief"), ChatMessage.user("name three colours")))
CALL = ToolCall("call_1", "lookup", '{"city": "Paris", "units": "metric"}')


def test_complete_returns_text_usage_and_model(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A completion carries the text, finish reason, usage and the serving model."""
    openai_server.script(Reply("red green blue", usage=Usage(12, 3, 8), model="served-model"))
    completion = make_llm().complete(REQUEST).unwrap()
    assert completion.text == "red green blue"
    assert completion.finish_reason == "stop"
    assert completion.usage == Usage(12, 3, 8)
    assert completion.model == "served-model"


def test_request_fields_reach_the_server(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """Every output-affecting field is sent in the OpenAI wire format."""
    tool = ToolSpec("lookup", "find a city", {"type": "object", "properties": {}})
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    request = ChatRequest(
        (
            ChatMessage.user("hi"),
            ChatMessage.assistant(None, (CALL,)),
            ChatMessage.tool("call_1", "sunny"),
        ),
        model="other-model",
        temperature=0.5,
        top_p=0.9,
        max_tokens=64,
        stop=("END",),
        seed=7,
        tools=(tool,),
        tool_choice="lookup",
        response_format=ResponseFormat("json_schema", "answer", schema),
    )
    make_llm().complete(request).unwrap()
    body = openai_server.requests[0].body
    assert body["model"] == "other-model"
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.5,
        0.9,
        64,
        7,
    )
    assert body["stop"] == ["END"]
    assert body["messages"][1]["tool_calls"][0]["function"] == {
        "name": "lookup",
        "arguments": CALL.arguments,
    }
    assert body["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}
    assert body["tools"][0]["function"]["name"] == "lookup"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert "stream" not in body


def test_default_model_and_max_completion_tokens(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """model=None sends the adapter's model; max_tokens can use the newer field name."""
    llm = make_llm(max_tokens_field="max_completion_tokens")
    llm.complete(ChatRequest((ChatMessage.user("hi"),), max_tokens=5)).unwrap()
    body = openai_server.requests[0].body
    assert body["model"] == "local-chat"
    assert body["max_completion_tokens"] == 5
    assert "max_tokens" not in body


def test_complete_with_tool_calls(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """Tool calls come back whole, with finish reason tool_calls."""
    openai_server.script(Reply("", tool_calls=(CALL,), finish_reason="tool_calls"))
    completion = make_llm().complete(REQUEST).unwrap()
    assert completion.tool_calls == (CALL,)
    assert completion.finish_reason == "tool_calls"
    assert completion.text == ""


def test_stream_concatenates_to_the_completion(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """Deltas join to the completed text; the last one alone carries finish and usage."""
    reply = Reply("one two  three\nfour ", usage=Usage(5, 4, 1))
    openai_server.script(reply, reply)
    llm = make_llm()
    completion = llm.complete(REQUEST).unwrap()
    deltas = [event.unwrap() for event in llm.stream(REQUEST)]
    assert "".join(d.text for d in deltas) == completion.text
    assert len(deltas) > 2
    assert all(d.finish_reason is None and d.usage is None for d in deltas[:-1])
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage == completion.usage == Usage(5, 4, 1)
    body = openai_server.requests[1].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_stream_tool_call_fragments(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """Streamed tool calls arrive as fragments that join to the whole call."""
    openai_server.script(Reply("", tool_calls=(CALL,), finish_reason="tool_calls"))
    deltas = [event.unwrap() for event in make_llm().stream(REQUEST)]
    fragments = [f for d in deltas for f in d.tool_calls]
    assert fragments[0] == ToolCallDelta(0, "call_1", "lookup", "")
    assert "".join(f.arguments for f in fragments) == CALL.arguments
    assert deltas[-1].finish_reason == "tool_calls"


def test_stream_without_usage_chunk_reports_zero_usage(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A compatible server that ignores include_usage still ends the stream properly."""
    events = (
        b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    openai_server.script(RawBody(events, 200, "text/event-stream"))
    deltas = [event.unwrap() for event in make_llm().stream(REQUEST)]
    assert [d.text for d in deltas] == ["hi", ""]
    assert deltas[-1].finish_reason == "length"
    assert deltas[-1].usage == Usage()


def test_abandoned_stream_releases_its_connection(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """Closing a stream early leaves the adapter usable for the next call."""
    openai_server.script(Reply("a b c d e f g h"))
    llm = make_llm()
    stream = llm.stream(REQUEST)
    assert next(stream).unwrap().text == "a "
    stream.close()  # type: ignore[attr-defined]
    assert llm.complete(REQUEST).unwrap().text == "name three colours"


def test_identity_names_provider_endpoint_and_model(
    openai_server: OpenAITestServer,
) -> None:
    """The identity is ("openai", base_url, default model), part of every cache key."""
    llm = OpenAILLM(api_key=API_KEY, base_url=openai_server.base_url + "/", model="m1")
    try:
        assert llm.identity == LLMIdentity("openai", openai_server.base_url, "m1")
    finally:
        llm.close()


def test_base_url_and_key_from_the_environment(
    openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPENAI_BASE_URL and OPENAI_API_KEY are used when nothing is passed."""
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    llm = OpenAILLM()
    try:
        assert llm.complete(ChatRequest((ChatMessage.user("ping"),))).unwrap().text == "ping"
    finally:
        llm.close()
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key anywhere, construction fails naming what to set."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAILLM(base_url="http://127.0.0.1:9/v1")


def test_calls_after_close_are_unavailable(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A closed adapter answers Unavailable through every call and sends nothing."""
    llm = make_llm()
    llm.close()
    assert isinstance(llm.complete(REQUEST).failure(), Unavailable)
    events = list(llm.stream(REQUEST))
    assert len(events) == 1
    assert isinstance(events[0].failure(), Unavailable)
    assert isinstance(llm.embed(["x"]).failure(), Unavailable)
    assert openai_server.requests == []


@pytest.mark.parametrize(
    "request_",
    [
        ChatRequest((ChatMessage.user("x"),), tools=(ToolSpec("t", parameters={"enum": {1, 2}}),)),
        ChatRequest(
            (ChatMessage.user("x"),),
            response_format=ResponseFormat("json_schema", "s", {1: "not a string key"}),
        ),
    ],
    ids=["set-in-tool", "int-key-in-schema"],
)
def test_schema_that_is_not_json_is_refused(
    make_llm: MakeLLM, openai_server: OpenAITestServer, request_: ChatRequest
) -> None:
    """Tool parameters or a schema JSON cannot carry are InvalidRequest, nothing sent."""
    llm = make_llm()
    assert isinstance(llm.complete(request_).failure(), InvalidRequest)
    events = list(llm.stream(request_))
    assert len(events) == 1
    assert isinstance(events[0].failure(), InvalidRequest)
    assert openai_server.requests == []
