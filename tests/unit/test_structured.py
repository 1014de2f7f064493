"""Structured output over any LLM port: schema, bounded re-ask, usage summed."""

from __future__ import annotations

import enum
from typing import Literal

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from portside.adapters.codec import default_codec
from portside.adapters.memory import FakeLLM
from portside.adapters.structured import Structured, complete_structured
from portside.domain import (
    ChatMessage,
    ChatRequest,
    ContentFiltered,
    InvalidRequest,
    ProtocolError,
    RateLimited,
    ToolCall,
    Usage,
)

ASK = ChatRequest((ChatMessage.user("Extract the invoice"),))


class Currency(enum.Enum):
    EUR = "EUR"
    USD = "USD"


@attrs.frozen
class Line:
    item: str
    quantity: int
    price: float


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError("total must not be negative")


@attrs.frozen
class Invoice:
    number: str
    currency: Currency
    lines: list[Line]
    total: float = attrs.field(validator=_positive)
    paid: bool = False
    note: str | None = None
    status: Literal["open", "closed"] = "open"
    tags: tuple[str, ...] = ()


GOOD = {
    "number": "A-1",
    "currency": "EUR",
    "lines": [{"item": "tea", "quantity": 2, "price": 1.5}],
    "total": 3.0,
    "paid": False,
    "note": None,
    "status": "open",
    "tags": ["x"],
}


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def test_a_fitting_reply_is_built_into_the_class() -> None:
    """A reply matching the schema becomes the attrs instance in one attempt."""
    llm = FakeLLM()
    llm.reply(_json(GOOD), usage=Usage(10, 5))
    result = complete_structured(llm, ASK, Invoice)
    structured = result.unwrap()
    assert structured.value == Invoice("A-1", Currency.EUR, [Line("tea", 2, 1.5)], 3.0, tags=("x",))
    assert (structured.attempts, structured.usage) == (1, Usage(10, 5))
    assert structured.completion.text == _json(GOOD)


def test_the_request_carries_the_generated_schema() -> None:
    """The call sends a strict json_schema response format named after the class."""
    llm = FakeLLM()
    llm.reply(_json(GOOD))
    complete_structured(llm, ASK, Invoice).unwrap()
    fmt = llm.requests[0].response_format
    assert fmt is not None
    assert (fmt.kind, fmt.name, fmt.strict) == ("json_schema", "Invoice", True)
    assert fmt.schema is not None
    assert fmt.schema["required"] == list(GOOD)
    assert llm.requests[0].messages == ASK.messages


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        ("not json", "not valid JSON"),
        (_json({**GOOD, "total": "3"}), "$.total: expected number, got string"),
        (_json({**GOOD, "lines": [{"item": "t", "quantity": "2", "price": 1}]}), "quantity"),
        (_json({**GOOD, "lines": "abc"}), "$.lines: expected array, got string"),
        (_json({**GOOD, "paid": 0}), "$.paid: expected boolean, got integer"),
        (_json({**GOOD, "currency": "GBP"}), "$.currency: must be one of"),
        (_json({**GOOD, "extra": 1}), "unexpected property 'extra'"),
        (_json({k: v for k, v in GOOD.items() if k != "number"}), "missing property 'number'"),
        (_json({**GOOD, "total": -1.0}), "total must not be negative"),
    ],
)
def test_a_misfit_is_asked_again_with_the_problem(reply: str, words: str) -> None:
    """A reply that does not fit is followed by a re-ask naming the problem; usage sums."""
    llm = FakeLLM()
    llm.reply(reply, usage=Usage(7, 3, 1))
    llm.reply(_json(GOOD), usage=Usage(20, 4, 2))
    structured = complete_structured(llm, ASK, Invoice).unwrap()
    assert structured.attempts == 2
    assert structured.usage == Usage(27, 7, 3)
    second = llm.requests[1].messages
    assert second[: len(ASK.messages)] == ASK.messages
    assert second[-2] == ChatMessage.assistant(reply)
    assert second[-1].role == "user"
    assert words in (second[-1].content or "")


def test_a_reply_that_never_fits_is_a_protocol_error() -> None:
    """After max_attempts misfits the result names the last problem; no more calls."""
    llm = FakeLLM(responder=lambda request: '{"number": 1}')
    result = complete_structured(llm, ASK, Invoice, max_attempts=4)
    match result:
        case Failure(ProtocolError() as error):
            assert "after 4 attempts" in error.message
            assert "$.number: expected string, got integer" in error.message
        case _:
            pytest.fail(f"expected a ProtocolError, got {result!r}")
    assert len(llm.requests) == 4


def test_a_service_error_is_returned_at_once() -> None:
    """An error from the port comes back as it was, after one call, not retried here."""
    llm = FakeLLM()
    llm.fail("rate_limited", retry_after=3)
    result = complete_structured(llm, ASK, Invoice)
    match result:
        case Failure(RateLimited(retry_after=3)):
            pass
        case _:
            pytest.fail(f"expected RateLimited, got {result!r}")
    assert len(llm.requests) == 1


def test_a_filtered_reply_is_content_filtered() -> None:
    """A reply cut by the content filter is ContentFiltered, not re-asked."""
    llm = FakeLLM()
    llm.reply('{"num', finish_reason="content_filter")
    result = complete_structured(llm, ASK, Invoice)
    assert isinstance(result.failure(), ContentFiltered)
    assert len(llm.requests) == 1


def test_a_cut_reply_and_tool_calls_are_misfits() -> None:
    """A reply cut at max_tokens, or tool calls instead of JSON, are asked again."""
    llm = FakeLLM()
    llm.reply(_json(GOOD), finish_reason="length")
    llm.reply("", tool_calls=(ToolCall("c1", "lookup", "{}"),))
    llm.reply(_json(GOOD))
    structured = complete_structured(llm, ASK, Invoice).unwrap()
    assert structured.attempts == 3
    assert "cut at max_tokens" in (llm.requests[1].messages[-1].content or "")
    assert "tool calls" in (llm.requests[2].messages[-1].content or "")
    assert all(not m.tool_calls for m in llm.requests[2].messages)


def test_a_fenced_reply_is_accepted() -> None:
    """JSON wrapped in a Markdown code fence is read as the JSON inside."""
    llm = FakeLLM()
    llm.reply(f"```json\n{_json(GOOD)}\n```")
    assert complete_structured(llm, ASK, Invoice).unwrap().value.number == "A-1"


@pytest.mark.parametrize(
    ("into", "attempts", "words"),
    [(int, 3, "not an attrs class"), (Invoice, 0, "max_attempts")],
)
def test_bad_arguments_are_invalid_and_send_nothing(
    into: type[object], attempts: int, words: str
) -> None:
    """A class with no schema or no attempts allowed is InvalidRequest, nothing sent."""
    llm = FakeLLM()
    result = complete_structured(llm, ASK, into, max_attempts=attempts)
    error = result.failure()
    assert isinstance(error, InvalidRequest)
    assert words in error.message
    assert llm.received() == 0


def test_an_invalid_request_fails_like_the_port() -> None:
    """The port's own InvalidRequest (no messages) comes back after no call."""
    llm = FakeLLM()
    result = complete_structured(llm, ChatRequest(()), Invoice)
    assert isinstance(result.failure(), InvalidRequest)
    assert llm.received() == 0


invoices = st.builds(
    Invoice,
    number=st.text(max_size=5),
    currency=st.sampled_from(Currency),
    lines=st.lists(
        st.builds(Line, st.text(max_size=5), st.integers(-5, 5), st.floats(-1e6, 1e6)),
        max_size=3,
    ),
    total=st.floats(0, 1e6),
    paid=st.booleans(),
    note=st.none() | st.text(max_size=5),
    status=st.sampled_from(["open", "closed"]),
    tags=st.lists(st.text(max_size=3), max_size=2).map(tuple),
)


@given(invoices)
def test_any_instance_round_trips(invoice: Invoice) -> None:
    """Any instance, sent back as JSON, fits the schema and rebuilds equal."""
    llm = FakeLLM()
    llm.reply(_json(default_codec.converter.unstructure(invoice)))
    result: Structured[Invoice] = complete_structured(llm, ASK, Invoice).unwrap()
    assert result.value == invoice
    assert result.attempts == 1


def test_works_through_any_port() -> None:
    """Only the LLMPort protocol is used: a wrapping port works the same."""

    class Wrapper:
        def __init__(self, inner: FakeLLM) -> None:
            self.inner = inner
            self.identity = inner.identity
            self.calls = 0

        def complete(self, request: ChatRequest) -> object:
            self.calls += 1
            return self.inner.complete(request)

    inner = FakeLLM()
    inner.reply(_json(GOOD))
    wrapper = Wrapper(inner)
    result = complete_structured(wrapper, ASK, Invoice)  # type: ignore[arg-type]
    assert isinstance(result, Success)
    assert wrapper.calls == 1
