"""LLM cache keys: every output-affecting field counts, transport fields never do."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from adapters.llm_cache import CachingLLM
from adapters.memory.cache import MemoryCache
from adapters.memory.llm import FakeLLM
from domain.llm import ChatMessage, ChatRequest, LLMIdentity, ResponseFormat, ToolSpec

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
