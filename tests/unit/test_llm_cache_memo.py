"""Remembered LLM cache keys: found again by value, only for requests that key alike."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.adapters.llm_cache import CachingLLM
from portside.adapters.llm_cache._key import RequestKeys, chat_key
from portside.adapters.memory import FakeLLM, MemoryCache
from portside.domain import (
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    LLMIdentity,
    ResponseFormat,
    ToolCall,
)
from portside.ports.llm_rules import validate_chat
from tests.strategies import DOMAIN_VALUES

BASE = ChatRequest(
    messages=(ChatMessage.system("be brief"), ChatMessage.user("capital of France?")),
    temperature=0.0,
)


def _caching() -> CachingLLM:
    return CachingLLM(FakeLLM(), MemoryCache())


IDENTITY = LLMIdentity("fake", "memory://", "fake-chat")
# Values equal to a valid one (True == 1, 1.0 == 1) that validate or encode apart from it.
LOOKALIKES: list[tuple[str, Any, Any]] = [
    ("temperature", 1, True),
    ("temperature", 0, False),
    ("top_p", 1, True),
    ("timeout", 1, True),
    ("max_tokens", 1, 1.0),
    ("max_tokens", 1, True),
    ("seed", 1, True),
    ("seed", 1, 1.0),
    ("n", 1, True),
    ("response_format", ResponseFormat("json_object"), ResponseFormat("json_object", strict=1)),  # type: ignore[arg-type]
]


def _truth(request: ChatRequest) -> str | None:
    """The key of ``request`` computed from scratch; ``None`` when it is invalid."""
    if validate_chat(request, service="fake") is not None:
        return None
    return chat_key(IDENTITY, request)


@settings(max_examples=80)
@given(
    DOMAIN_VALUES[ChatRequest],
    DOMAIN_VALUES[ChatRequest],
    st.sets(st.sampled_from(sorted(f.name for f in attrs.fields(ChatRequest)))),
)
def test_a_remembered_key_is_only_found_for_a_request_with_that_very_key(
    one: ChatRequest, other: ChatRequest, taken: set[str]
) -> None:
    """A request found in the memo is valid and its key is the one computed from scratch."""
    keys = RequestKeys()
    for request in (one, other):
        truth = _truth(request)
        if truth is not None:
            keys.remember(IDENTITY, request, truth)
    mixed = attrs.evolve(one, **{name: getattr(other, name) for name in taken})
    for request in (one, other, mixed, attrs.evolve(mixed, metadata={"trace": "x"})):
        found = keys.known(IDENTITY, request)
        assert found is None or found == _truth(request)


@pytest.mark.parametrize(("field", "valid", "lookalike"), LOOKALIKES)
def test_an_equal_request_with_bool_or_float_numbers_is_never_served_a_remembered_key(
    field: str, valid: Any, lookalike: Any
) -> None:
    """A request equal to a remembered one only through True == 1 or 1.0 == 1 is checked anew."""
    keys = RequestKeys()
    changes: dict[str, Any] = {"seed": 3, field: valid}
    request = attrs.evolve(BASE, **changes)
    keys.remember(IDENTITY, request, chat_key(IDENTITY, request))
    twin = attrs.evolve(request, **{field: lookalike})
    assert twin == request
    assert keys.known(IDENTITY, twin) is None


def test_a_bool_temperature_is_refused_after_an_equal_valid_request_was_cached() -> None:
    """temperature=True stays InvalidRequest even when temperature=1 was just answered."""
    caching = _caching()
    valid = attrs.evolve(BASE, temperature=1, seed=3)
    caching.complete(valid).unwrap()
    assert caching.complete(valid).unwrap().cache.hit  # type: ignore[union-attr]
    twin = attrs.evolve(valid, temperature=True)
    assert isinstance(caching.complete(twin).failure(), InvalidRequest)
    assert isinstance(next(iter(caching.stream(twin))).failure(), InvalidRequest)


def test_a_new_equal_request_object_is_a_hit_whatever_its_metadata() -> None:
    """A request rebuilt from the same values, with other metadata, hits the stored answer."""
    caching = _caching()
    llm = caching.llm
    assert isinstance(llm, FakeLLM)
    caching.complete(BASE).unwrap()
    for trace in ("a", "b"):
        again = ChatRequest(
            tuple(ChatMessage(m.role, m.content) for m in BASE.messages),
            temperature=0.0,
            metadata={"trace": trace},
        )
        assert again is not BASE
        assert caching.complete(again).unwrap().cache.hit  # type: ignore[union-attr]
        assert caching.key_for(again) == caching.key_for(BASE)
    assert llm.received() == 1


def test_a_request_holding_lists_is_keyed_without_the_memo() -> None:
    """A request whose messages are a list (an untyped caller) is validated and keyed as usual."""
    keys = RequestKeys()
    keys.remember(IDENTITY, BASE, chat_key(IDENTITY, BASE))
    # An untyped caller's list, which the annotation forbids.
    listed = attrs.evolve(BASE, messages=list(BASE.messages))  # type: ignore[arg-type]
    assert keys.known(IDENTITY, listed) is None
    keys.remember(IDENTITY, listed, "not remembered")
    assert keys.known(IDENTITY, listed) is None


def test_the_memo_is_bounded_by_count_and_by_message_text() -> None:
    """RequestKeys drops its requests past size or max_chars, and never keeps a huge one."""
    keys = RequestKeys(size=3, max_chars=400)
    for n in range(8):
        request = attrs.evolve(BASE, seed=n)
        keys.remember(IDENTITY, request, chat_key(IDENTITY, request))
        assert keys.known(IDENTITY, request) is not None
        assert len(keys._seen) <= 3
    wordy = [attrs.evolve(BASE, messages=(ChatMessage.user("w" * 90),), seed=n) for n in range(8)]
    for request in wordy:
        keys.remember(IDENTITY, request, chat_key(IDENTITY, request))
        assert len(keys._seen) * 90 <= 400
    huge = attrs.evolve(BASE, messages=(ChatMessage.user("h" * 101),))
    keys.remember(IDENTITY, huge, chat_key(IDENTITY, huge))
    assert keys.known(IDENTITY, huge) is None


@pytest.mark.parametrize(
    "message",
    [
        ChatMessage("user", "hi", name="n\ud800"),
        ChatMessage.tool("id\udfff", "result"),
        ChatMessage.assistant(None, (ToolCall("c\ud800", "f"),)),
        ChatMessage.assistant(None, (ToolCall("c1", "f\ud800"),)),
    ],
)
def test_a_lone_surrogate_in_any_message_text_is_refused_before_the_cache(
    message: ChatMessage,
) -> None:
    """A surrogate in a name or any tool-call id is InvalidRequest, and nothing is cached."""
    caching = _caching()
    request = attrs.evolve(BASE, messages=(*BASE.messages, message))
    for _ in range(2):
        error = caching.complete(request).failure()
        assert isinstance(error, InvalidRequest)
        assert "Unicode" in error.message
    assert isinstance(caching.cache, MemoryCache)
    assert len(caching.cache) == 0
