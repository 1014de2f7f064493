"""What the LLM cache stores: a finished answer, and the deltas when it was streamed.

An entry written by ``complete`` holds the completion only; a streamed hit on it is
replayed as one text delta, the tool-call deltas and the final delta. An entry written
by ``stream`` holds the exact deltas, replayed one for one, and the completion
assembled from them. Entries go through the codec's versioned envelope; bytes that do
not decode are a miss, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from adapters.codec import Codec, default_codec
from domain.llm import (
    CacheInfo,
    ChatDelta,
    Completion,
    FinishReason,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "STORABLE_FINISHES",
    "ChatEntry",
    "EmbeddingEntry",
    "assemble",
    "replay",
]

#: Finish reasons worth storing: a truncated (``length``) or filtered answer is not.
STORABLE_FINISHES: Final = frozenset[FinishReason](("stop", "tool_calls"))


@attrs.frozen
class ChatEntry:
    """A stored chat answer and when it was stored (``Clock.now()`` seconds)."""

    completion: Completion
    stored_at: float
    deltas: tuple[ChatDelta, ...] = ()

    def encode(self, codec: Codec = default_codec) -> bytes | None:
        """The stored bytes, or ``None`` when the entry cannot be encoded."""
        return codec.encode(self).value_or(None)

    @staticmethod
    def decode(data: bytes, codec: Codec = default_codec) -> ChatEntry | None:
        """The entry ``data`` holds, or ``None`` for bytes that are not an entry."""
        return codec.decode(data, ChatEntry).value_or(None)


@attrs.frozen
class EmbeddingEntry:
    """One stored vector with the input tokens its text cost."""

    vector: tuple[float, ...]
    model: str
    tokens: int
    stored_at: float


def assemble(deltas: Iterable[ChatDelta]) -> Completion | None:
    """The completion a stream's deltas add up to; ``None`` without a final delta."""
    text: list[str] = []
    calls: dict[int, list[str]] = {}
    ids: dict[int, str] = {}
    names: dict[int, str] = {}
    final: ChatDelta | None = None
    model = ""
    for delta in deltas:
        text.append(delta.text)
        model = delta.model or model
        for part in delta.tool_calls:
            calls.setdefault(part.index, []).append(part.arguments)
            if part.id is not None:
                ids[part.index] = part.id
            if part.name is not None:
                names[part.index] = part.name
        if delta.finish_reason is not None:
            final = delta
    if final is None or final.finish_reason is None:
        return None
    tool_calls = tuple(
        ToolCall(ids.get(i, ""), names.get(i, ""), "".join(calls[i]) or "{}") for i in sorted(calls)
    )
    return Completion(
        text="".join(text),
        finish_reason=final.finish_reason,
        tool_calls=tool_calls,
        usage=final.usage or Usage(),
        model=model,
    )


def replay(entry: ChatEntry, info: CacheInfo) -> list[ChatDelta]:
    """The deltas a streamed hit yields; the final one carries ``info``."""
    if entry.deltas:
        deltas = list(entry.deltas)
    else:
        done = entry.completion
        deltas = []
        if done.text:
            deltas.append(ChatDelta(text=done.text, model=done.model))
        if done.tool_calls:
            deltas.append(
                ChatDelta(
                    tool_calls=tuple(
                        ToolCallDelta(i, c.id, c.name, c.arguments)
                        for i, c in enumerate(done.tool_calls)
                    ),
                    model=done.model,
                )
            )
        deltas.append(
            ChatDelta(finish_reason=done.finish_reason, usage=done.usage, model=done.model)
        )
    deltas[-1] = attrs.evolve(deltas[-1], cache=info)
    return deltas
