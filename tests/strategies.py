"""Hypothesis strategies for portside's own tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from portside.domain import (
    CacheInfo,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    Completion,
    DeadLetter,
    Delivery,
    Embeddings,
    LLMIdentity,
    QueueMessage,
    ResponseFormat,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

text = st.text(max_size=20)
floats = st.floats(allow_nan=False, allow_infinity=False)
ints64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value orjson can represent exactly (64-bit ints, finite floats)."""
    scalars = st.none() | st.booleans() | ints64 | floats | text
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=20,
    )


json_objects = st.dictionaries(text, json_values(), max_size=3)
usage = st.builds(Usage, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
tool_calls = st.builds(ToolCall, text, text, text)
messages = st.builds(
    ChatMessage,
    st.sampled_from(["system", "user", "assistant", "tool"]),
    st.none() | text,
    st.none() | text,
    st.lists(tool_calls, max_size=2).map(tuple),
    st.none() | text,
)
cache_info = st.builds(CacheInfo, st.booleans(), floats, usage)
finish = st.sampled_from(["stop", "length", "tool_calls", "content_filter"])
queue_message = st.builds(
    QueueMessage,
    text,
    text,
    st.binary(max_size=32),
    st.dictionaries(text, text, max_size=3),
    floats,
    st.none() | text,
)

DOMAIN_VALUES: dict[type, st.SearchStrategy[Any]] = {
    ToolCall: tool_calls,
    ChatMessage: messages,
    ToolSpec: st.builds(ToolSpec, text, text, json_objects),
    ResponseFormat: st.builds(
        ResponseFormat,
        st.sampled_from(["text", "json_object", "json_schema"]),
        st.none() | text,
        st.none() | json_objects,
        st.booleans(),
    ),
    ChatRequest: st.builds(
        ChatRequest,
        st.lists(messages, min_size=1, max_size=3).map(tuple),
        st.none() | text,
        st.none() | floats,
        st.none() | floats,
        st.none() | st.integers(0, 10**6),
        st.lists(text, max_size=2).map(tuple),
        st.none() | ints64,
    ),
    Usage: usage,
    CacheInfo: cache_info,
    Completion: st.builds(
        Completion,
        text,
        finish,
        st.lists(tool_calls, max_size=2).map(tuple),
        usage,
        text,
        st.none() | cache_info,
    ),
    ToolCallDelta: st.builds(
        ToolCallDelta, st.integers(0, 8), st.none() | text, st.none() | text, text
    ),
    ChatDelta: st.builds(
        ChatDelta,
        text,
        st.lists(st.builds(ToolCallDelta, st.integers(0, 8)), max_size=2).map(tuple),
        st.none() | finish,
        st.none() | usage,
        text,
    ),
    Embeddings: st.builds(
        Embeddings,
        st.lists(st.lists(floats, max_size=4).map(tuple), max_size=3).map(tuple),
        text,
        usage,
    ),
    LLMIdentity: st.builds(LLMIdentity, text, text, text),
    QueueMessage: queue_message,
    Delivery: st.builds(Delivery, queue_message, text, text, st.integers(1, 100), text, floats),
    DeadLetter: st.builds(DeadLetter, queue_message, text, text, st.integers(1, 100), floats),
}
