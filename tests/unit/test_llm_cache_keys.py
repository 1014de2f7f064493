"""LLM cache keys: every output-affecting field counts, transport fields never do."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure

from portside.adapters.llm_cache import CachingLLM
from portside.adapters.llm_cache._key import (
    CHAT_FIELDS,
    MESSAGE_FIELDS,
    TRANSPORT_FIELDS,
)
from portside.adapters.memory import FakeLLM, MemoryCache
from portside.domain import (
    CacheInfo,
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    LLMIdentity,
    ResponseFormat,
    ToolSpec,
)
from tests.strategies import DOMAIN_VALUES

BASE = ChatRequest(
    messages=(ChatMessage.system("be brief"), ChatMessage.user("capital of France?")),
    temperature=0.0,
)


class _Endpoint(FakeLLM):
    """A fake LLM that claims to live at another endpoint."""

    base_url: str = "memory://"

    @property
    def identity(self) -> LLMIdentity:
        """The fake's identity with this endpoint's base URL."""
        return LLMIdentity("fake", self.base_url, self.model)


def _caching(base_url: str = "memory://", model: str = "fake-chat") -> CachingLLM:
    llm = _Endpoint(model=model)
    llm.base_url = base_url
    return CachingLLM(llm, MemoryCache())


# One alternative value per output-affecting field, each different from BASE.
CHANGES: dict[str, Any] = {
    "messages": (ChatMessage.user("capital of Spain?"),),
    "model": "other-model",
    "temperature": 0.5,
    "top_p": 0.9,
    "max_tokens": 12,
    "stop": ("\n",),
    "seed": 7,
    "tools": (ToolSpec("lookup", "find", {"type": "object"}),),
    "tool_choice": "none",
    "response_format": ResponseFormat("json_object"),
}


@given(st.sampled_from(sorted(CHANGES)))
def test_changing_any_output_field_changes_the_key(field: str) -> None:
    """Each output-affecting field, changed alone, gives a different key."""
    caching = _caching()
    changed = attrs.evolve(BASE, **{field: CHANGES[field]})
    assert caching.key_for(changed) != caching.key_for(BASE)


@given(
    st.text(max_size=30),
    st.text(max_size=30),
    st.integers(0, 5),
    st.sampled_from(["system", "user", "assistant"]),
)
def test_changing_message_content_or_role_changes_the_key(
    content: str, other: str, position: int, role: str
) -> None:
    """Two conversations that differ in any message content or role never share a key."""
    caching = _caching()
    one = ChatRequest((ChatMessage(role, content),), temperature=0.0)  # type: ignore[arg-type]
    two = ChatRequest((ChatMessage(role, other),), temperature=0.0)  # type: ignore[arg-type]
    assert (caching.key_for(one) == caching.key_for(two)) == (content == other)


@given(
    st.none() | st.floats(0.1, 100),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)
def test_transport_fields_never_change_the_key(
    timeout: float | None, metadata: dict[str, str]
) -> None:
    """Timeout and metadata are transport-only and leave the key as it was."""
    caching = _caching()
    changed = attrs.evolve(BASE, timeout=timeout, metadata=metadata)
    assert caching.key_for(changed) == caching.key_for(BASE)


@given(st.sampled_from(["http://a.test/v1", "http://b.test/v1", "https://a.test/v1"]))
def test_different_base_urls_never_share_a_key(other: str) -> None:
    """Two adapters on different endpoints key the same request differently."""
    here = _caching("http://localhost:8000/v1")
    there = _caching(other)
    assert here.key_for(BASE) != there.key_for(BASE)


def test_base_url_credentials_and_slash_do_not_split_entries() -> None:
    """Credentials and a trailing slash neither enter the key nor show in explain_key."""
    plain = _caching("http://host.test/v1")
    dressed = _caching("http://user:s3cretpass@HOST.test/v1/")
    assert plain.key_for(BASE) == dressed.key_for(BASE)
    assert "s3cretpass" not in repr(dressed.explain_key(BASE))


def test_model_none_resolves_to_the_adapter_default() -> None:
    """model=None and the adapter's default model name are the same request."""
    caching = _caching(model="m-1")
    assert caching.key_for(BASE) == caching.key_for(attrs.evolve(BASE, model="m-1"))
    assert _caching(model="m-2").key_for(BASE) != caching.key_for(BASE)


def test_equivalent_numbers_and_schema_key_order_share_a_key() -> None:
    """Temperature 0 equals 0.0, and a schema's key order does not matter."""
    caching = _caching()
    one = attrs.evolve(
        BASE,
        temperature=0,
        tools=(ToolSpec("f", "", {"type": "object", "properties": {"a": {}, "b": {}}}),),
    )
    two = attrs.evolve(
        BASE,
        temperature=0.0,
        tools=(ToolSpec("f", "", {"properties": {"b": {}, "a": {}}, "type": "object"}),),
    )
    assert caching.key_for(one) == caching.key_for(two)


def test_explain_key_lists_every_field_that_went_in() -> None:
    """explain_key names the identity, the resolved model and each output field, not transport."""
    explained = _caching().explain_key(attrs.evolve(BASE, timeout=3.0, metadata={"u": "1"}))
    assert set(explained) == {
        "version",
        "provider",
        "base_url",
        "default_model",
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "seed",
        "tools",
        "tool_choice",
        "response_format",
        "n",
    }
    assert explained["model"] == "fake-chat"
    assert explained["temperature"] == 0.0
    assert explained["messages"][1]["content"] == "capital of France?"


def test_response_schema_changes_the_key() -> None:
    """Two json_schema formats with different schemas give different keys."""
    caching = _caching()
    one = attrs.evolve(BASE, response_format=ResponseFormat("json_schema", "a", {"type": "object"}))
    two = attrs.evolve(BASE, response_format=ResponseFormat("json_schema", "a", {"type": "array"}))
    assert caching.key_for(one) != caching.key_for(two)


def test_every_request_field_is_keyed_or_transport_only() -> None:
    """Each ChatRequest and ChatMessage field enters the key unless it is transport-only."""
    request_fields = {f.name for f in attrs.fields(ChatRequest)}
    keyed = set(CHAT_FIELDS) - {"version", "provider", "base_url", "default_model"}
    assert keyed | TRANSPORT_FIELDS == request_fields
    assert not keyed & TRANSPORT_FIELDS
    assert set(MESSAGE_FIELDS) == {f.name for f in attrs.fields(ChatMessage)}


@settings(max_examples=60)
@given(
    DOMAIN_VALUES[ChatRequest],
    DOMAIN_VALUES[ChatRequest],
    st.sets(st.sampled_from(sorted(f.name for f in attrs.fields(ChatRequest)))),
)
def test_keys_are_equal_exactly_when_the_explained_fields_are(
    one: ChatRequest, other: ChatRequest, taken: set[str]
) -> None:
    """Two requests share a key if and only if explain_key shows the same fields."""
    caching = _caching()
    mixed = attrs.evolve(one, **{name: getattr(other, name) for name in taken})
    same_key = caching.key_for(one) == caching.key_for(mixed)
    shown = [
        orjson.dumps(caching.explain_key(r), option=orjson.OPT_SORT_KEYS) for r in (one, mixed)
    ]
    assert same_key == (shown[0] == shown[1])


def test_read_only_mappings_key_like_dicts_and_non_string_keys_are_refused() -> None:
    """A schema in a read-only mapping keys like the dict; {1: x} is never keyed as {"1": x}."""
    caching = _caching()
    schema = {"type": "object", "properties": {"a": {}}}
    plain = attrs.evolve(BASE, tools=(ToolSpec("f", "", schema),))
    frozen = attrs.evolve(BASE, tools=(ToolSpec("f", "", MappingProxyType(schema)),))
    assert caching.key_for(plain) == caching.key_for(frozen)
    odd = attrs.evolve(BASE, tools=(ToolSpec("f", "", {1: "x"}),))  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        caching.key_for(odd)
    # Answered (or refused by the adapter's own rules) without raising, and never stored.
    for _ in range(2):
        answered = caching.complete(odd)
        assert isinstance(answered, Failure) or answered.unwrap().cache == CacheInfo(hit=False)
    assert isinstance(caching.cache, MemoryCache)
    assert len(caching.cache) == 0


def test_a_reused_request_object_is_keyed_again_when_its_schema_changes() -> None:
    """Mutating a tool schema between calls with one request object never serves a stale hit."""
    caching = _caching()
    llm = caching.llm
    assert isinstance(llm, FakeLLM)
    schema: dict[str, Any] = {"type": "object"}
    request = attrs.evolve(BASE, tools=(ToolSpec("f", "", schema),))
    caching.complete(request)
    assert caching.complete(request).unwrap().cache.hit  # type: ignore[union-attr]
    schema["required"] = ["a"]
    assert not caching.complete(request).unwrap().cache.hit  # type: ignore[union-attr]
    assert llm.received() == 2


def test_a_reused_request_object_follows_the_adapter_identity() -> None:
    """One request object sent after the wrapped adapter's model changed is a new key."""
    caching = _caching(model="m-1")
    llm = caching.llm
    assert isinstance(llm, FakeLLM)
    caching.complete(BASE)
    assert caching.complete(BASE).unwrap().cache.hit  # type: ignore[union-attr]
    llm.model = "m-2"
    assert not caching.complete(BASE).unwrap().cache.hit  # type: ignore[union-attr]
    assert llm.received() == 2


def test_an_invalid_request_object_is_refused_every_time() -> None:
    """A request that failed validation is refused again on every call."""
    caching = _caching()
    bad = attrs.evolve(BASE, max_tokens=-1)
    for _ in range(2):
        assert isinstance(caching.complete(bad).failure(), InvalidRequest)
        assert isinstance(next(iter(caching.stream(bad))).failure(), InvalidRequest)
