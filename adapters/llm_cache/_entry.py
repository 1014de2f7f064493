"""What the LLM cache stores: a finished answer, and the deltas when it was streamed.

An entry written by ``complete`` holds the completion only; a streamed hit on it is
replayed as one text delta, the tool-call deltas and the final delta. An entry written
by ``stream`` holds the exact deltas, replayed one for one, and the completion
assembled from them.

A chat entry is a compact, versioned JSON array inside the codec's JSON envelope,
decoded by hand rather than through cattrs because it is read on every hit::

    ["chat", 2, stored_at, text, finish_reason, [[id, name, arguments], ...],
     [input, output, cached_input], model, [delta, ...]]
    delta = [text, [[index, id, name, arguments], ...], finish_reason, usage, model]

Every element is type-checked on the way in: bytes that are not exactly such an entry
(another version, a truncated body, a wrong type anywhere, an unstorable finish
reason) decode to ``None``, which the cache treats as a miss, never as an error.
Deltas are only decoded (and checked) for a streamed hit, which replays them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, cast

import attrs
import orjson

from portside.adapters.codec import FORMAT_VERSION, Codec, default_codec
from portside.domain._llm import (
    FINISH_REASONS,
    CacheInfo,
    ChatDelta,
    Completion,
    FinishReason,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "ENTRY_VERSION",
    "STORABLE_FINISHES",
    "ChatEntry",
    "EmbeddingEntry",
    "assemble",
    "replay",
]

#: Finish reasons worth storing: a truncated (``length``) or filtered answer is not.
STORABLE_FINISHES: Final = frozenset[FinishReason](("stop", "tool_calls"))

#: Version of the chat entry layout; entries of any other version are misses.
ENTRY_VERSION: Final = 2
_TAG: Final = "chat"
# The codec's envelope for a JSON value (documented in adapters.codec): "ps", the
# format version, "j". Checked here directly so a hit does not pay for a generic decode.
_JSON_HEADER: Final = b"ps" + str(FORMAT_VERSION).encode() + b"j"
_HEADER_LEN: Final = len(_JSON_HEADER)


def _is_int(value: object) -> bool:
    return type(value) is int and value >= 0


def _usage(raw: Any) -> Usage | None:
    """A ``Usage`` from ``[input, output, cached_input]``, or ``None`` if malformed."""
    if type(raw) is not list or len(raw) != 3:
        return None
    given, produced, cached = raw
    # Spelled out rather than all(...) over a generator: this runs on every hit.
    if (
        type(given) is int
        and type(produced) is int
        and type(cached) is int
        and given >= 0
        and produced >= 0
        and cached >= 0
    ):
        return Usage(input_tokens=given, output_tokens=produced, cached_input_tokens=cached)
    return None


def _calls(raw: Any) -> tuple[ToolCall, ...] | None:
    if type(raw) is not list:
        return None
    if not raw:
        return ()
    calls = []
    for call in raw:
        if type(call) is not list or len(call) != 3 or not all(type(s) is str for s in call):
            return None
        calls.append(ToolCall(id=call[0], name=call[1], arguments=call[2]))
    return tuple(calls)


def _optional_str(value: object) -> bool:
    return value is None or type(value) is str


def _delta(raw: Any) -> ChatDelta | None:
    if type(raw) is not list or len(raw) != 5:
        return None
    text, parts, finish, usage, model = raw
    if type(text) is not str or type(model) is not str or type(parts) is not list:
        return None
    if finish is not None and (type(finish) is not str or finish not in FINISH_REASONS):
        return None
    fragments = []
    for part in parts:
        if (
            type(part) is not list
            or len(part) != 4
            or not _is_int(part[0])
            or not _optional_str(part[1])
            or not _optional_str(part[2])
            or type(part[3]) is not str
        ):
            return None
        fragments.append(ToolCallDelta(index=part[0], id=part[1], name=part[2], arguments=part[3]))
    used = None
    if usage is not None:
        used = _usage(usage)
        if used is None:
            return None
    return ChatDelta(
        text=text,
        tool_calls=tuple(fragments),
        finish_reason=cast("FinishReason | None", finish),
        usage=used,
        model=model,
    )


def _encode_delta(delta: ChatDelta) -> list[Any]:
    usage = delta.usage
    return [
        delta.text,
        [[p.index, p.id, p.name, p.arguments] for p in delta.tool_calls],
        delta.finish_reason,
        None
        if usage is None
        else [usage.input_tokens, usage.output_tokens, usage.cached_input_tokens],
        delta.model,
    ]


@attrs.frozen
class ChatEntry:
    """A stored chat answer and when it was stored (``Clock.now()`` seconds).

    ``completion`` never carries ``CacheInfo``; deltas are empty for an entry written
    by ``complete`` (and for one decoded without them).
    """

    completion: Completion
    stored_at: float
    deltas: tuple[ChatDelta, ...] = ()

    def encode(self, codec: Codec = default_codec) -> bytes | None:
        """The stored bytes, or ``None`` when the entry cannot be encoded."""
        done = self.completion
        usage = done.usage
        layout = [
            _TAG,
            ENTRY_VERSION,
            self.stored_at,
            done.text,
            done.finish_reason,
            [[c.id, c.name, c.arguments] for c in done.tool_calls],
            [usage.input_tokens, usage.output_tokens, usage.cached_input_tokens],
            done.model,
            [_encode_delta(d) for d in self.deltas],
        ]
        return codec.encode(layout).value_or(None)

    @staticmethod
    def decode(data: bytes, *, with_deltas: bool = True) -> ChatEntry | None:
        """The entry ``data`` holds, or ``None`` for bytes that are not exactly an entry.

        ``with_deltas=False`` skips the recorded deltas (a ``complete`` hit needs
        only the completion), so a long streamed entry costs no more to read.
        """
        if data[:_HEADER_LEN] != _JSON_HEADER:
            return None
        try:
            raw = orjson.loads(data[_HEADER_LEN:])
        except orjson.JSONDecodeError:
            return None
        if type(raw) is not list or len(raw) != 9 or raw[0] != _TAG or raw[1] != ENTRY_VERSION:
            return None
        _, _, stored_at, text, finish, calls, used, model, deltas = raw
        if (
            type(stored_at) not in (float, int)
            or type(text) is not str
            or type(model) is not str
            or type(finish) is not str
            or finish not in STORABLE_FINISHES
            or type(deltas) is not list
        ):
            return None
        tool_calls = _calls(calls)
        usage = _usage(used)
        if tool_calls is None or usage is None:
            return None
        replayed: list[ChatDelta] = []
        if with_deltas:
            for raw_delta in deltas:
                delta = _delta(raw_delta)
                if delta is None:
                    return None
                replayed.append(delta)
            if replayed and replayed[-1].finish_reason is None:
                return None  # a recording always ends with its final delta
        done = Completion(
            text=text, finish_reason=finish, tool_calls=tool_calls, usage=usage, model=model
        )
        return ChatEntry(done, float(stored_at), tuple(replayed))


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
        ToolCall(id=ids.get(i, ""), name=names.get(i, ""), arguments="".join(calls[i]) or "{}")
        for i in sorted(calls)
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
                        ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments)
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
