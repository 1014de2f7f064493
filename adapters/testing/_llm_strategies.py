"""Hypothesis strategies the LLM contract kit draws requests, replies and bad input from.

Everything drawn is something any OpenAI-compatible server can carry over JSON and SSE:
text without lone surrogates, tool names by the OpenAI rule, JSON tool arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, cast

import attrs
import orjson
from hypothesis import strategies as st

from portside.domain._llm import ChatMessage, ChatRequest, FinishReason, ToolCall, ToolSpec, Usage

__all__ = [
    "INVALID_CHAT",
    "INVALID_EMBED",
    "ScriptedReply",
    "chat_requests",
    "embed_texts",
    "replies",
    "stream_texts",
]

# No lone surrogates (JSON cannot carry them) and no NUL (some servers refuse it).
_CHARS: Final = st.characters(codec="utf-8", exclude_characters="\x00")
_TEXT: Final = st.text(_CHARS, max_size=40)
_WORDS: Final = st.lists(st.text(_CHARS, min_size=1, max_size=8), max_size=8).map(" ".join)
_TOOL_NAME: Final = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,15}", fullmatch=True)
_JSON_SCALAR: Final = st.none() | st.booleans() | st.integers(-1000, 1000) | _TEXT


@attrs.frozen
class ScriptedReply:
    """One answer the kit scripts on the backend and on its reference fake."""

    text: str
    finish_reason: FinishReason | None
    tool_calls: tuple[ToolCall, ...]
    usage: Usage | None


def _arguments() -> st.SearchStrategy[str]:
    objects = st.dictionaries(st.text(_CHARS, max_size=6), _JSON_SCALAR, max_size=3)
    return objects.map(lambda value: orjson.dumps(value).decode())


def _tool_calls() -> st.SearchStrategy[tuple[ToolCall, ...]]:
    call = st.builds(ToolCall, st.just(""), _TOOL_NAME, _arguments())
    # Ids must be unique within one answer: number them.
    return st.lists(call, max_size=2).map(
        lambda calls: tuple(attrs.evolve(c, id=f"call_{i}") for i, c in enumerate(calls))
    )


def replies() -> st.SearchStrategy[ScriptedReply]:
    """Text (often word-like, sometimes arbitrary), tool calls, finish reason, usage."""
    finish = st.sampled_from([None, None, "stop", "length", "content_filter"])
    # A provider's cached input is part of its input.
    usage = st.none() | st.builds(
        Usage, st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 100)
    ).map(lambda u: attrs.evolve(u, cached_input_tokens=min(u.cached_input_tokens, u.input_tokens)))
    return st.builds(ScriptedReply, _WORDS | _TEXT, finish, _tool_calls(), usage)


def stream_texts() -> st.SearchStrategy[str]:
    """Texts for dropped streams."""
    return _WORDS


def embed_texts() -> st.SearchStrategy[list[str]]:
    """One to five non-empty texts."""
    return st.lists(st.text(_CHARS, min_size=1, max_size=30), min_size=1, max_size=5)


def chat_requests() -> st.SearchStrategy[ChatRequest]:
    """Valid requests without stop sequences or ``max_tokens`` (those change the answer)."""
    user = st.builds(ChatMessage.user, _TEXT)
    system = st.builds(ChatMessage.system, _TEXT)
    messages = st.tuples(st.lists(system, max_size=1), st.lists(user, min_size=1, max_size=2))
    tools = st.lists(st.builds(ToolSpec, _TOOL_NAME), max_size=2, unique_by=lambda t: t.name)
    return st.builds(
        ChatRequest,
        messages.map(lambda parts: tuple(parts[0] + parts[1])),
        model=st.none() | st.just("kit-model"),
        temperature=st.none() | st.sampled_from([0.0, 0.7, 2.0]),
        seed=st.none() | st.integers(0, 2**31 - 1),
        tools=tools.map(tuple),
    )


_HELLO: Final = (ChatMessage.user("hello"),)


def _chat(**changes: Any) -> ChatRequest:
    return ChatRequest(**{"messages": _HELLO, **changes})


#: Chat requests every adapter must refuse with ``InvalidRequest`` before sending.
INVALID_CHAT: Final[Sequence[tuple[str, ChatRequest]]] = (
    ("no messages", _chat(messages=())),
    ("unknown role", _chat(messages=(ChatMessage(cast(Any, "robot"), "hi"),))),
    ("empty model name", _chat(model="")),
    ("tool without a name", _chat(tools=(ToolSpec(""),))),
    ("negative max_tokens", _chat(max_tokens=-1)),
    ("temperature above 2", _chat(temperature=2.5)),
    ("temperature below 0", _chat(temperature=-0.5)),
    ("tool parameters that are not JSON", _chat(tools=(ToolSpec("f", parameters={"x": {1}}),))),
)


def _embed_cases(max_chars: int) -> list[tuple[str, tuple[Sequence[str], str | None, int | None]]]:
    return [
        ("no texts", ((), None, None)),
        ("an empty text", (("a", ""), None, None)),
        ("a text over the limit", (("x" * (max_chars + 1),), None, None)),
        ("empty model name", (("a",), "", None)),
        ("zero dimensions", (("a",), None, 0)),
        ("negative dimensions", (("a",), None, -3)),
    ]


#: Embeddings calls every adapter must refuse, given its ``max_text_chars``:
#: ``(name, (texts, model, dimensions))``.
INVALID_EMBED: Final[
    Callable[[int], list[tuple[str, tuple[Sequence[str], str | None, int | None]]]]
] = _embed_cases
