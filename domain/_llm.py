"""Values the LLM port exchanges: chat requests, completions, stream deltas, embeddings.

All are frozen attrs classes. JSON-shaped fields (tool parameters, a response schema)
are plain ``Mapping[str, Any]`` so they survive the codec unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = [
    "CacheInfo",
    "ChatDelta",
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "Embeddings",
    "FinishReason",
    "LLMIdentity",
    "Moderation",
    "Moderations",
    "ParsedToolCall",
    "ResponseFormat",
    "Role",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
]

#: Who wrote a chat message.
Role = Literal["system", "user", "assistant", "tool"]
#: Why the model stopped.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]

ROLES: frozenset[str] = frozenset(("system", "user", "assistant", "tool"))
FINISH_REASONS: frozenset[str] = frozenset(("stop", "length", "tool_calls", "content_filter"))


@attrs.frozen
class ToolCall:
    """A call the model asks the application to make; ``arguments`` is a JSON text."""

    id: str
    name: str
    arguments: str = "{}"


@attrs.frozen
class ChatMessage:
    """One message of a conversation."""

    role: Role
    content: str | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        """A system message."""
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        """A user message."""
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str | None, tool_calls: tuple[ToolCall, ...] = ()) -> ChatMessage:
        """An assistant message, possibly carrying tool calls."""
        return cls("assistant", content, tool_calls=tool_calls)

    @classmethod
    def tool(cls, tool_call_id: str, content: str) -> ChatMessage:
        """The result of a tool call, sent back to the model."""
        return cls("tool", content, tool_call_id=tool_call_id)


@attrs.frozen
class ToolSpec:
    """A function the model may call; ``parameters`` is its JSON schema."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class ResponseFormat:
    """The shape the reply must take: free text, any JSON object, or a JSON schema."""

    kind: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    strict: bool = True


@attrs.frozen
class ChatRequest:
    """Everything a chat completion depends on, plus transport-only settings.

    ``timeout``, ``metadata`` and ``deadline`` are transport-only: they never change the
    answer and never enter a cache key. ``model=None`` means the adapter's configured
    default. ``timeout`` bounds each wait for the server (a read); ``deadline`` bounds
    the whole call, retries, backoff and a stream's last delta included, after which the
    call is ``TimedOut`` (``None``: the adapter's own deadline).
    """

    messages: tuple[ChatMessage, ...]
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    response_format: ResponseFormat | None = None
    n: int = 1
    # transport-only
    timeout: float | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    deadline: float | None = None


@attrs.frozen
class Usage:
    """Token counts of one call; ``cached_input_tokens`` is the provider's prompt cache."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )


@attrs.frozen
class CacheInfo:
    """Where a completion came from: a cache hit, how old it was and what it saved."""

    hit: bool
    age: float = 0.0
    saved: Usage = Usage()


@attrs.frozen
class Completion:
    """A finished chat answer.

    ``finish_reason`` is normalised to the port's four reasons; ``provider_finish_reason``
    keeps what a server outside OpenAI's list said (``end_turn``, ``eos``...), ``None``
    when it said one of the four. ``cost`` is in the price table's currency when the
    adapter has one (``None``: not priced).
    """

    text: str
    finish_reason: FinishReason = "stop"
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    model: str = ""
    cache: CacheInfo | None = None
    provider_finish_reason: str | None = None
    cost: float | None = None


@attrs.frozen
class ToolCallDelta:
    """A fragment of a streamed tool call; fragments with the same ``index`` join."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@attrs.frozen
class ChatDelta:
    """One streamed fragment; the last one carries ``finish_reason`` and ``usage``.

    The last one also carries ``provider_finish_reason`` and ``cost``, as ``Completion``.
    """

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    model: str = ""
    cache: CacheInfo | None = None
    provider_finish_reason: str | None = None
    cost: float | None = None


@attrs.frozen
class Embeddings:
    """One vector per input text, in input order."""

    vectors: tuple[tuple[float, ...], ...]
    model: str = ""
    usage: Usage = Usage()
    cache: CacheInfo | None = None
    cost: float | None = None

    @property
    def dimensions(self) -> int:
        """Length of each vector (0 when there are none)."""
        return len(self.vectors[0]) if self.vectors else 0


@attrs.frozen
class LLMIdentity:
    """Who answers: provider, endpoint and default model. Part of every cache key."""

    provider: str
    base_url: str = ""
    model: str = ""


@attrs.frozen
class ParsedToolCall:
    """A tool call whose arguments were parsed and checked against its tool's schema."""

    id: str
    name: str
    arguments: Mapping[str, Any] = attrs.field(hash=False)
    tool: ToolSpec


@attrs.frozen
class Moderation:
    """The moderation verdict on one text: flagged or not, by category, with scores."""

    flagged: bool
    categories: Mapping[str, bool] = attrs.field(factory=dict, hash=False)
    scores: Mapping[str, float] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class Moderations:
    """One ``Moderation`` per input text, in input order."""

    results: tuple[Moderation, ...]
    model: str = ""

    @property
    def flagged(self) -> bool:
        """Whether any text was flagged."""
        return any(result.flagged for result in self.results)
