"""Arguments of every Python type to every public LLM method, on the fake and the real adapter.

Each draw replaces one argument (or one field of a request or of a message) with a
value of any type: ``None``, bools, huge ints, NaN, bytes, bytearrays, sets, dicts,
objects, classes, other port values. Both adapters answer, never raise; a refusal is
``InvalidRequest`` naming what was wrong and sends nothing; the fake and the OpenAI
adapter over the local server reach the same verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from portside.adapters.memory import FakeLLM, ManualClock
from portside.adapters.openai import OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import OpenAITestServer
from portside.domain import (
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    ResponseFormat,
    ServiceError,
    ToolCall,
    ToolSpec,
)

pytestmark = pytest.mark.faults

KEY = "sk-types-0123456789abcdef"
HELLO = ChatMessage.user("hello there")

#: Values of every kind of Python type, valid ones among them.
ANY: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**30, -(10**30), 10**400, 2**63, 0, 1, -1]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1.5, 0.0]),
    st.complex_numbers(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.binary(max_size=8).map(bytearray),
    st.lists(st.integers() | st.text(max_size=3), max_size=3),
    st.lists(st.text(max_size=3), max_size=3).map(tuple),
    st.sets(st.integers(), max_size=3),
    st.frozensets(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=3),
    st.just({"role": "user", "content": "hi"}),
    st.sampled_from([object(), Ellipsis, type, int, print, range(3), memoryview(b"x")]),
    st.sampled_from([HELLO, ChatRequest((HELLO,)), ToolSpec("f"), ResponseFormat("text")]),
    st.sampled_from([ToolCall("c", "f"), "xml", "json_object", (HELLO,), ("a", 5)]),
)

REQUEST_FIELDS = [f.name for f in attrs.fields(ChatRequest)]
MESSAGE_FIELDS = [f.name for f in attrs.fields(ChatMessage)]


@pytest.fixture(name="pair", scope="module")
def _pair() -> Iterator[tuple[FakeLLM, OpenAILLM, OpenAITestServer]]:
    with OpenAITestServer(api_key=KEY, stall_seconds=5.0) as server:
        real = OpenAILLM(
            api_key=KEY,
            base_url=server.base_url,
            timeout=5.0,
            retry=RetryPolicy(attempts=1),
            clock=ManualClock(),
        )
        yield FakeLLM(), real, server
        real.close()


def _verdict(result: Result[Any, ServiceError]) -> str:
    if isinstance(result, Success):
        return "ok"
    error = result.failure()
    assert isinstance(error, ServiceError)
    return error.kind


def _stream_verdict(llm: Any, request: Any) -> str:
    items = list(llm.stream(request))
    assert items, "a stream ends with a final item"
    assert all(isinstance(item, Success) for item in items[:-1])
    return _verdict(items[-1])


def _both(pair: tuple[FakeLLM, OpenAILLM, OpenAITestServer], call: Any, *, what: str) -> list[str]:
    """The verdict of ``call(llm)`` on the fake and on the real adapter, checked alike."""
    fake, real, server = pair
    before = len(server.requests)
    verdicts = [call(fake), call(real)]
    assert verdicts[0] == verdicts[1], (what, verdicts)
    assert verdicts[0] in ("ok", "InvalidRequest"), (what, verdicts)
    if verdicts[0] == "InvalidRequest":
        assert len(server.requests) == before, f"{what} was refused but still sent"
    return verdicts


def _named(result: Result[Any, ServiceError], *names: str) -> None:
    if isinstance(result, Failure) and isinstance(result.failure(), InvalidRequest):
        message = result.failure().message
        assert any(name in message for name in names), (names, message)


@settings(max_examples=120)
@given(field=st.sampled_from(REQUEST_FIELDS), value=ANY, streamed=st.booleans())
def test_any_value_in_any_request_field_is_answered_alike(
    pair: tuple[FakeLLM, OpenAILLM, OpenAITestServer], field: str, value: Any, streamed: bool
) -> None:
    """A request field of any type is a result on both adapters, never an exception."""
    request = attrs.evolve(ChatRequest((HELLO,), model="m"), **{field: value})
    if streamed:
        _both(pair, lambda llm: _stream_verdict(llm, request), what=f"stream {field}={value!r}")
    else:
        _both(pair, lambda llm: _verdict(llm.complete(request)), what=f"{field}={value!r}")
        words = {"messages": ("message",), "response_format": ("response",), "tools": ("tool",)}
        _named(pair[0].complete(request), *words.get(field, (field.replace("_", " "), field)))


@settings(max_examples=120)
@given(field=st.sampled_from(MESSAGE_FIELDS), value=ANY, streamed=st.booleans())
def test_any_value_in_any_message_field_is_answered_alike(
    pair: tuple[FakeLLM, OpenAILLM, OpenAITestServer], field: str, value: Any, streamed: bool
) -> None:
    """A message field of any type is a result on both adapters, naming the message."""
    message = attrs.evolve(HELLO, **{field: value})
    request = ChatRequest((message,), model="m")
    if streamed:
        _both(pair, lambda llm: _stream_verdict(llm, request), what=f"stream {field}={value!r}")
    else:
        _both(pair, lambda llm: _verdict(llm.complete(request)), what=f"{field}={value!r}")
        _named(pair[0].complete(request), "message 0")


@settings(max_examples=80)
@given(request=ANY, streamed=st.booleans())
def test_anything_passed_as_the_request_is_answered_alike(
    pair: tuple[FakeLLM, OpenAILLM, OpenAITestServer], request: Any, streamed: bool
) -> None:
    """complete("hello"), complete(None), complete({...}) are InvalidRequest naming it."""
    if streamed:
        _both(pair, lambda llm: _stream_verdict(llm, request), what=f"stream({request!r})")
    else:
        _both(pair, lambda llm: _verdict(llm.complete(request)), what=f"complete({request!r})")
        _named(pair[0].complete(request), "request")


@settings(max_examples=120)
@given(
    argument=st.sampled_from(["texts", "model", "dimensions"]),
    value=ANY,
)
def test_any_value_for_any_embed_argument_is_answered_alike(
    pair: tuple[FakeLLM, OpenAILLM, OpenAITestServer], argument: str, value: Any
) -> None:
    """embed(None), embed(texts=b"x"), dimensions=10**400... are results, alike on both."""
    arguments: dict[str, Any] = {"texts": ["hello"], "model": None, "dimensions": None}
    arguments[argument] = value

    def call(llm: Any) -> str:
        return _verdict(
            llm.embed(
                arguments["texts"], model=arguments["model"], dimensions=arguments["dimensions"]
            )
        )

    _both(pair, call, what=f"embed {argument}={value!r}")
    _named(
        pair[0].embed(
            arguments["texts"], model=arguments["model"], dimensions=arguments["dimensions"]
        ),
        "text",
        argument,
    )


@settings(max_examples=80)
@given(argument=st.sampled_from(["texts", "model"]), value=ANY)
def test_any_value_for_any_moderate_argument_is_answered_alike(
    pair: tuple[FakeLLM, OpenAILLM, OpenAITestServer], argument: str, value: Any
) -> None:
    """moderate(None), moderate("one string"), model=5... are results, alike on both."""
    arguments: dict[str, Any] = {"texts": ["hello"], "model": None}
    arguments[argument] = value

    def call(llm: Any) -> str:
        return _verdict(llm.moderate(arguments["texts"], model=arguments["model"]))

    _both(pair, call, what=f"moderate {argument}={value!r}")
    _named(pair[0].moderate(arguments["texts"], model=arguments["model"]), "text", argument)


def test_a_fake_with_absurd_dimensions_is_refused_when_built() -> None:
    """FakeLLM(dimensions=10**7) raises ValueError at build instead of allocating gigabytes."""
    with pytest.raises(ValueError, match="dimensions"):
        FakeLLM(dimensions=10**7)
    assert FakeLLM().embed(["a"], dimensions=10**7).failure().kind == "InvalidRequest"
