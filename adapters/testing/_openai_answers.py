"""What the local OpenAI-compatible test server answers: scripted behaviours and defaults.

Behaviours are values queued on the server; each request to ``/chat/completions`` or
``/embeddings`` takes the next one (or the deterministic default when none is queued).
This module builds the JSON bodies and SSE events; the server only moves bytes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import attrs

from portside.domain._llm import ToolCall, Usage

__all__ = [
    "Behaviour",
    "Delay",
    "EchoKey",
    "HttpError",
    "KeepAliveForever",
    "RawBody",
    "RedirectLoop",
    "Reply",
    "StreamFault",
    "Trickle",
    "chat_body",
    "default_reply",
    "embeddings_body",
    "error_body",
    "sse_events",
]

_WORDS = re.compile(r"\S+\s*|\s+")


@attrs.frozen
class Reply:
    """A successful chat answer, served as one body or as SSE deltas.

    ``usage=None`` counts words deterministically (input: every message's words;
    output: the reply's words plus its tool-call arguments' words).
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    usage: Usage | None = None
    model: str | None = None


@attrs.frozen
class HttpError:
    """An error status with an OpenAI-shaped error body and optional headers."""

    status: int
    message: str = "scripted error"
    code: str | None = None
    type: str = "invalid_request_error"
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class RawBody:
    """Exactly these bytes with this status, content type and extra headers.

    For malformed answers: ``RawBody(b"not gzip", headers=(("Content-Encoding",
    "gzip"),))`` is a corrupt compressed body.
    """

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Trickle:
    """The normal answer (``reply`` or the default), one byte every ``interval`` seconds.

    Every read gets a byte well within any read timeout, so only a deadline on the
    whole call ends it.
    """

    interval: float = 0.5
    reply: Reply | None = None


@attrs.frozen
class KeepAliveForever:
    """Headers at once, then an SSE comment (a stream) or a space (a body) every ``interval``.

    The answer never comes; the connection stays busy until the client gives up or the
    server stops.
    """

    interval: float = 0.2


@attrs.frozen
class RedirectLoop:
    """A ``status`` redirect to the same path; every hop redirects again, forever.

    Only the first hop takes this behaviour from the queue; the server records every
    hop, so a test counts how many requests the loop cost.
    """

    status: int = 307


@attrs.frozen
class EchoKey:
    """An error whose message quotes the request's ``Authorization`` header, key included.

    Some servers do this; the adapter must keep the key out of the error and its causes.
    """

    status: int = 401


@attrs.frozen
class Delay:
    """Wait ``seconds`` (real time) before answering with ``then``."""

    seconds: float
    then: Reply | HttpError | RawBody | None = None


@attrs.frozen
class StreamFault:
    """A stream that goes wrong after ``after`` content deltas of ``reply``.

    ``stall``: stop sending and keep the connection open; ``drop``: close the
    connection mid-body; ``malformed``: send an SSE event that is not JSON;
    ``truncated``: end the body cleanly (``[DONE]`` included) with no finish reason.
    A non-streaming request gets the same fault applied to its body where it makes
    sense (stall waits, drop closes, malformed and truncated send broken JSON).
    """

    kind: Literal["stall", "drop", "malformed", "truncated"]
    after: int = 1
    reply: Reply | None = None


#: Anything the test server can be scripted to do for one request.
Behaviour = (
    Reply
    | HttpError
    | RawBody
    | Delay
    | StreamFault
    | Trickle
    | KeepAliveForever
    | RedirectLoop
    | EchoKey
)


def _count_words(text: str | None) -> int:
    return len(text.split()) if text else 0


def _input_words(request: Mapping[str, Any]) -> int:
    total = 0
    for message in request.get("messages") or ():
        if isinstance(message, Mapping):
            content = message.get("content")
            total += _count_words(content if isinstance(content, str) else None)
    return total


def default_reply(request: Mapping[str, Any]) -> Reply:
    """The answer when nothing is scripted: the last user message, as ``FakeLLM`` says."""
    last = ""
    for message in request.get("messages") or ():
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            last = content if isinstance(content, str) and content else last
    return Reply(text=last)


def _usage(reply: Reply, request: Mapping[str, Any]) -> dict[str, Any]:
    if reply.usage is not None:
        usage = reply.usage
    else:
        output = _count_words(reply.text) + sum(
            _count_words(call.arguments) for call in reply.tool_calls
        )
        usage = Usage(_input_words(request), output, 0)
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
    }


def _model(reply: Reply, request: Mapping[str, Any]) -> str:
    model = reply.model or request.get("model")
    return model if isinstance(model, str) else "local-model"


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def chat_body(reply: Reply, request: Mapping[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` object for ``reply``."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [_tool_call_json(c) for c in reply.tool_calls]
        message["content"] = reply.text or None
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": _model(reply, request),
        "choices": [
            {"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
        ],
        "usage": _usage(reply, request),
    }


def _chunk(model: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": choices,
        **extra,
    }


def content_chunks(reply: Reply, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The content chunks of a streamed ``reply``: role, one per word, tool-call parts."""
    model = _model(reply, request)
    chunks = [_chunk(model, [{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
    for piece in _WORDS.findall(reply.text):
        chunks.append(_chunk(model, [{"index": 0, "delta": {"content": piece}}]))
    for index, call in enumerate(reply.tool_calls):
        head = {"index": index, "id": call.id, "type": "function"}
        head["function"] = {"name": call.name, "arguments": ""}
        chunks.append(_chunk(model, [{"index": 0, "delta": {"tool_calls": [head]}}]))
        middle = len(call.arguments) // 2
        for part in (call.arguments[:middle], call.arguments[middle:]):
            if part:
                fragment = {"index": index, "function": {"arguments": part}}
                chunks.append(_chunk(model, [{"index": 0, "delta": {"tool_calls": [fragment]}}]))
    return chunks


def closing_chunks(
    reply: Reply, request: Mapping[str, Any], *, include_usage: bool
) -> list[dict[str, Any]]:
    """The finish-reason chunk and, when asked for, the usage-only chunk (no choices)."""
    model = _model(reply, request)
    finish = [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]
    chunks = [_chunk(model, finish)]
    if include_usage:
        chunks.append(_chunk(model, [], usage=_usage(reply, request)))
    return chunks


def sse_events(reply: Reply, request: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every chunk of a complete, well-formed stream of ``reply``."""
    options = request.get("stream_options")
    include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
    yield from content_chunks(reply, request)
    yield from closing_chunks(reply, request, include_usage=include_usage)


def error_body(error: HttpError) -> dict[str, Any]:
    """An OpenAI-shaped error object."""
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": None,
            "code": error.code,
        }
    }


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A normalised hashed bag of words: texts that share words point the same way."""
    vector = [0.0] * dimensions
    for word in text.lower().split() or [""]:
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dimensions
        vector[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def embeddings_body(texts: Sequence[str], model: str, dimensions: int) -> dict[str, Any]:
    """A ``list`` of ``embedding`` objects, one per text, in order."""
    words = sum(_count_words(t) for t in texts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": embedding_vector(t, dimensions)}
            for i, t in enumerate(texts)
        ],
        "model": model,
        "usage": {"prompt_tokens": words, "total_tokens": words},
    }
