"""Request rules shared by every LLM adapter, and the guard against real providers."""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given

from portside.domain import (
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    ResponseFormat,
    ToolCall,
    ToolSpec,
)
from portside.ports.llm_rules import (
    MAX_EMBED_TEXT_CHARS,
    check_real_llm_allowed,
    forbid_real_llm,
    normalise_finish_reason,
    real_llm_forbidden,
    validate_chat,
    validate_embed,
)
from tests.strategies import DOMAIN_VALUES

HELLO = (ChatMessage.user("hello"),)


def _chat(**changes: Any) -> ChatRequest:
    return ChatRequest(**{"messages": HELLO, **changes})


def test_a_plain_request_passes() -> None:
    """A request with one user message and defaults everywhere is valid."""
    assert validate_chat(_chat(), service="s") is None


def test_a_full_request_passes() -> None:
    """Every field at a legal value (tools, choice, format, limits) is valid."""
    request = _chat(
        model="m",
        temperature=2.0,
        top_p=0.0,
        max_tokens=0,
        stop=("\n",),
        seed=1,
        tools=(ToolSpec("get_weather", parameters={"type": "object"}), ToolSpec("a-b_1")),
        tool_choice="get_weather",
        response_format=ResponseFormat("json_schema", "r", {"type": "object"}),
        timeout=1.5,
        messages=(
            ChatMessage.system("s"),
            ChatMessage.user("u"),
            ChatMessage.assistant(None),
            ChatMessage.tool("call_1", "{}"),
        ),
    )
    assert validate_chat(request, service="s") is None


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"messages": ()}, "at least one message"),
        ({"messages": (ChatMessage(cast(Any, "robot"), "x"),)}, "unknown role 'robot'"),
        ({"messages": (ChatMessage("tool", "x"),)}, "tool_call_id"),
        ({"model": ""}, "model name is empty"),
        ({"model": "  "}, "model name is empty"),
        ({"tools": (ToolSpec(""),)}, "tool 0 has no name"),
        ({"tools": (ToolSpec("has space"),)}, "tool 0 name must be"),
        ({"tools": (ToolSpec("f"), ToolSpec("f"))}, "given twice"),
        ({"tool_choice": "missing"}, "tool_choice"),
        ({"max_tokens": -1}, "max_tokens must be between 0"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 2.01}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 2}, "n must be 1"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"response_format": ResponseFormat("json_schema")}, "needs a schema"),
        (
            {"tools": (ToolSpec("f", parameters={"p": {"enum": {1, 2}}}),)},
            "tool 0 parameters are not JSON: $.p.enum is a set",
        ),
        (
            {"tools": (ToolSpec("f", parameters={"m": [1.0, float("nan")]}),)},
            "$.m[1] is not a finite number",
        ),
        (
            {"response_format": ResponseFormat("json_schema", schema={1: "x"})},
            "the response schema is not JSON: $ has a key that is not a string",
        ),
    ],
)
def test_bad_chat_requests_are_named(changes: dict[str, Any], words: str) -> None:
    """Each broken rule gives an InvalidRequest whose message names the problem."""
    error = validate_chat(_chat(**changes), service="svc", operation="stream")
    assert isinstance(error, InvalidRequest)
    assert words in error.message
    assert (error.service, error.operation) == ("svc", "stream")


@given(DOMAIN_VALUES[ChatRequest])
def test_validation_never_raises(request: ChatRequest) -> None:
    """Any request built from domain values is judged without an exception."""
    result = validate_chat(request, service="s")
    assert result is None or isinstance(result, InvalidRequest)


def test_good_embeddings_pass() -> None:
    """Texts within the limit, a model and positive dimensions are valid."""
    assert validate_embed(["a", "b" * MAX_EMBED_TEXT_CHARS], "m", 8, service="s") is None
    assert validate_embed(("a",), None, None, service="s") is None


@pytest.mark.parametrize(
    ("texts", "model", "dimensions", "words"),
    [
        ([], None, None, "at least one text"),
        ("abc", None, None, "not a single string"),
        (["a", ""], None, None, "text 1 is empty"),
        (["a", 3], None, None, "text 1 is a int"),
        (["x" * 11], None, None, "text 0 is longer than 10 characters"),
        (["a"], "", None, "model name is empty"),
        (["a"], None, 0, "dimensions must be a positive integer"),
        (["a"], None, -4, "dimensions must be a positive integer"),
        (["a"], None, True, "dimensions must be a positive integer"),
    ],
)
def test_bad_embeddings_are_named(texts: Any, model: Any, dimensions: Any, words: str) -> None:
    """Each broken embeddings rule gives an InvalidRequest naming the problem."""
    error = validate_embed(texts, model, dimensions, service="svc", max_text_chars=10)
    assert isinstance(error, InvalidRequest)
    assert words in error.message
    assert error.operation == "embed"


@pytest.fixture(name="guard_off")
def _guard_off(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("PORTSIDE_FORBID_REAL_LLM", raising=False)
    before = real_llm_forbidden()
    forbid_real_llm(False)
    yield
    forbid_real_llm(before)


@pytest.mark.usefixtures("guard_off")
def test_guard_off_allows_everything() -> None:
    """Without the guard, any endpoint is allowed."""
    assert not real_llm_forbidden()
    check_real_llm_allowed("")
    check_real_llm_allowed("https://llm.example.com/v1")


@pytest.mark.usefixtures("guard_off")
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://127.8.9.10/v1",
        "http://[::1]:9000/v1",
        "http://localhost:1234",
        "http://api.localhost/v1",
    ],
)
def test_guard_allows_loopback(url: str) -> None:
    """With the guard on, loopback servers still work."""
    forbid_real_llm()
    check_real_llm_allowed(url)


@pytest.mark.usefixtures("guard_off")
@pytest.mark.parametrize(
    "url",
    ["", "https://llm.example.com/v1", "http://10.0.0.1/v1", "127.0.0.1:80", "http://[::2]/"],
)
def test_guard_refuses_real_endpoints(url: str) -> None:
    """With the guard on, the default and every non-loopback endpoint raise."""
    forbid_real_llm()
    with pytest.raises(RuntimeError, match="forbidden"):
        check_real_llm_allowed(url)


@pytest.mark.usefixtures("guard_off")
def test_guard_error_does_not_echo_the_url() -> None:
    """The refusal never repeats the URL, which may carry credentials."""
    forbid_real_llm()
    with pytest.raises(RuntimeError) as info:
        check_real_llm_allowed("https://user:s3cret@llm.example.com/v1")
    assert "s3cret" not in str(info.value)


@pytest.mark.usefixtures("guard_off")
def test_environment_turns_the_guard_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """PORTSIDE_FORBID_REAL_LLM=1 forbids real providers; 0 leaves them allowed."""
    monkeypatch.setenv("PORTSIDE_FORBID_REAL_LLM", "0")
    assert not real_llm_forbidden()
    monkeypatch.setenv("PORTSIDE_FORBID_REAL_LLM", "1")
    assert real_llm_forbidden()
    with pytest.raises(RuntimeError):
        check_real_llm_allowed("https://llm.example.com")


@pytest.mark.parametrize(
    "request_",
    [
        ChatRequest((ChatMessage.user("bad \ud800 text"),)),
        ChatRequest((ChatMessage.user("ok"),), stop=("\udfff",)),
        ChatRequest((ChatMessage.assistant(None, (ToolCall("c1", "f", '{"a": "\ud800"}'),)),)),
    ],
)
def test_text_with_a_lone_surrogate_is_refused(request_: ChatRequest) -> None:
    """A lone surrogate anywhere a request carries text is InvalidRequest, named."""
    error = validate_chat(request_, service="test")
    assert error is not None
    assert "Unicode" in error.message


def test_embeddings_refuse_surrogates_and_fractional_dimensions() -> None:
    """Embedding text with a lone surrogate, or 1.5 dimensions, is InvalidRequest."""
    assert validate_embed(["\ud800"], None, None, service="test") is not None
    bad_dimensions: Any = 1.5
    error = validate_embed(["a"], None, bad_dimensions, service="test")
    assert error is not None
    assert "dimensions" in error.message


def _any(value: object) -> Any:
    return value


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        ("hello", "request is a str, not a ChatRequest"),
        (None, "request is a NoneType"),
        (_chat(messages=(ChatMessage.user(_any(None)),)), "message 0 (user) has no content"),
        (_chat(messages=(ChatMessage.user(_any(5)),)), "message 0 content is a int"),
        (_chat(messages=(ChatMessage.user(_any(b"hi")),)), "message 0 content is a bytes"),
        (_chat(messages=({"role": "user", "content": "hi"},)), "message 0 is a dict"),
        (_chat(messages=_any("hello")), "messages is a str"),
        (_chat(messages=(ChatMessage(_any(["user"]), "x"),)), "message 0 has unknown role"),
        (_chat(messages=(ChatMessage.assistant(None, _any(("x",))),)), "tool call 0 is a str"),
        (_chat(model=_any(5)), "model is a int"),
        (_chat(stop=_any((5,))), "stop sequence 0 is a int"),
        (_chat(stop=_any("abc")), "stop is a str"),
        (_chat(max_tokens=_any("10")), "max_tokens is a str"),
        (_chat(max_tokens=_any(1.5)), "max_tokens is a float"),
        (_chat(max_tokens=10**30), "max_tokens must be between 0"),
        (_chat(seed=_any("x")), "seed is a str"),
        (_chat(seed=2**70), "seed must be between"),
        (_chat(response_format=_any("xml")), "response_format is a str"),
        (_chat(response_format=ResponseFormat(_any("xml"))), "response_format kind"),
        (_chat(timeout=10**400), "timeout must be a positive number"),
        (_chat(deadline=_any("1")), "deadline must be a positive number"),
        (_chat(deadline=10**400), "deadline must be a positive number"),
        (_chat(temperature=10**400), "temperature"),
        (_chat(tools=_any((object(),))), "tool 0 is a object"),
        (_chat(tool_choice=_any(["auto"])), "tool_choice"),
        (_chat(metadata=_any({"a": 1})), "metadata"),
    ],
)
def test_values_of_the_wrong_type_are_named_not_raised(request_: Any, words: str) -> None:
    """A value of the wrong type anywhere in a request is an InvalidRequest naming it."""
    error = validate_chat(request_, service="svc")
    assert isinstance(error, InvalidRequest)
    assert words in error.message


@pytest.mark.parametrize(
    ("texts", "dimensions", "words"),
    [
        (None, None, "texts is a NoneType"),
        (iter(["a"]), None, "texts is a list_iterator"),
        (["a"], 10**7, "dimensions must be a positive integer, at most 16384"),
        (["a"], "8", "dimensions must be a positive integer"),
    ],
)
def test_embed_arguments_of_the_wrong_type_are_named(
    texts: Any, dimensions: Any, words: str
) -> None:
    """embed(None), an iterator, absurd or string dimensions are InvalidRequest."""
    error = validate_embed(texts, None, dimensions, service="svc")
    assert isinstance(error, InvalidRequest)
    assert words in error.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", ("stop", None)),
        ("length", ("length", None)),
        ("end_turn", ("stop", "end_turn")),
        ("eos", ("stop", "eos")),
        ("MAX_TOKENS", ("length", "MAX_TOKENS")),
        ("tool_use", ("tool_calls", "tool_use")),
        ("SAFETY", ("content_filter", "SAFETY")),
        ("something_new", ("stop", "something_new")),
        (None, ("stop", None)),
    ],
)
def test_foreign_finish_reasons_are_normalised_and_kept(raw: object, expected: object) -> None:
    """A finish reason outside OpenAI's list maps to its meaning and is kept as said."""
    assert normalise_finish_reason(raw) == expected
