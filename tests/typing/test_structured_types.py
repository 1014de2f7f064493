"""Type-level checks of structured output and the fake LLM (mypy --strict, and pytest)."""

from __future__ import annotations

from typing import assert_type

import attrs
from returns.result import Result

from portside.adapters.memory import FakeLLM
from portside.adapters.structured import Structured, complete_structured
from portside.domain import ChatMessage, ChatRequest, Completion, ServiceError
from portside.ports import LLMPort


@attrs.frozen
class City:
    name: str


def test_structured_output_is_typed_by_the_class() -> None:
    """complete_structured's result is typed by the class asked for, without casts."""
    llm: LLMPort = FakeLLM()
    request = ChatRequest((ChatMessage.user("a city"),))
    result = complete_structured(llm, request, City)
    assert_type(result, Result[Structured[City], ServiceError])
    assert_type(FakeLLM().complete(request), Result[Completion, ServiceError])
