"""Tool calls get a typed, checked view of their arguments, the same on the fake and OpenAI.

The model's answer passes through the port as it came; ``parse_tool_calls`` checks each
call against the tools the request offered: a tool never offered, arguments that are
not JSON or not an object, or that break the tool's schema, are each a ProtocolError
that says where.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from returns.result import Failure, Success

from portside.adapters.memory import FakeLLM, ManualClock
from portside.adapters.openai import OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.structured import parse_tool_call, parse_tool_calls
from portside.adapters.testing import OpenAITestServer, collect_stream
from portside.domain import (
    ChatMessage,
    ChatRequest,
    ParsedToolCall,
    ProtocolError,
    ToolCall,
    ToolSpec,
)

WEATHER = ToolSpec(
    "get_weather",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "units": {"type": ["string", "null"], "enum": ["c", "f", None]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
)
REQUEST = ChatRequest((ChatMessage.user("weather in Oslo?"),), model="m", tools=(WEATHER,))

CASES: list[tuple[str, ToolCall, str | None]] = [
    ("fits", ToolCall("c1", "get_weather", '{"city": "Oslo", "days": 3}'), None),
    ("nullable enum", ToolCall("c1", "get_weather", '{"city": "Oslo", "units": null}'), None),
    ("not offered", ToolCall("c1", "get_time", "{}"), "names a tool that was not offered"),
    ("not JSON", ToolCall("c1", "get_weather", '{"city": "Oslo"'), "arguments are not JSON"),
    ("an array", ToolCall("c1", "get_weather", '["Oslo"]'), "are not a JSON object"),
    ("missing", ToolCall("c1", "get_weather", '{"days": 3}'), "$: missing property 'city'"),
    ("wrong type", ToolCall("c1", "get_weather", '{"city": 5}'), "$.city: expected string"),
    ("extra", ToolCall("c1", "get_weather", '{"city": "a", "x": 1}'), "unexpected property"),
]  # fmt: skip


@pytest.fixture(name="server", scope="module")
def _server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(api_key="sk-tools-0123456789") as server:
        yield server


@pytest.fixture(name="subject", params=["fake", "openai"])
def _subject(request: pytest.FixtureRequest, server: OpenAITestServer) -> Iterator[Any]:
    if request.param == "fake":
        fake = FakeLLM()
        yield fake, fake
        return
    llm = OpenAILLM(
        api_key="sk-tools-0123456789",
        base_url=server.base_url,
        retry=RetryPolicy(attempts=1),
        clock=ManualClock(),
    )
    server.clear()
    yield llm, server
    llm.close()


@pytest.mark.parametrize(("case", "call", "problem"), CASES, ids=[c[0] for c in CASES])
def test_each_tool_call_is_parsed_or_refused_alike_on_fake_and_openai(
    subject: Any, case: str, call: ToolCall, problem: str | None
) -> None:
    """The checked view of a completed and of a streamed tool call is the same everywhere."""
    llm, script = subject
    script.reply(tool_calls=[call])
    script.reply(tool_calls=[call])
    completed = llm.complete(REQUEST).unwrap()
    streamed = collect_stream(llm.stream(REQUEST)).completion
    assert streamed is not None
    for answer in (completed, streamed):
        result = parse_tool_calls(answer, REQUEST.tools)
        if problem is None:
            assert isinstance(result, Success), result
            (parsed,) = result.unwrap()
            assert isinstance(parsed, ParsedToolCall)
            assert (parsed.id, parsed.name, parsed.tool) == ("c1", "get_weather", WEATHER)
            assert parsed.arguments["city"] == "Oslo"
        else:
            assert isinstance(result, Failure), result
            assert isinstance(result.failure(), ProtocolError)
            assert problem in result.failure().message, result.failure().message
            assert "Oslo" not in result.failure().message, "messages name paths, not values"


def test_empty_arguments_read_as_an_empty_object() -> None:
    """A call of a tool without parameters may send no arguments at all."""
    parsed = parse_tool_call(ToolCall("c", "ping", ""), (ToolSpec("ping"),)).unwrap()
    assert parsed.arguments == {}


def test_a_schema_reference_the_checker_cannot_follow_is_not_a_crash() -> None:
    """A hand-written $ref to elsewhere is not checked, rather than raising."""
    tool = ToolSpec("t", parameters={"$ref": "https://example.com/schema.json"})
    assert isinstance(parse_tool_call(ToolCall("c", "t", '{"a": 1}'), (tool,)), Success)
