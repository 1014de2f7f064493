"""Port values to OpenAI request bodies, and OpenAI answers back to port values.

Answers (whole bodies and stream events alike) are parsed with orjson and checked field
by field: anything missing or of the wrong type raises ``Malformed``, which the adapter
turns into ``ProtocolError``. A finish reason outside OpenAI's list is normalised and
kept (``normalise_finish_reason``), never an error. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

import orjson

from portside.domain._errors import ProtocolError
from portside.domain._llm import (
    ChatMessage,
    ChatRequest,
    Completion,
    FinishReason,
    Moderation,
    Moderations,
    ResponseFormat,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from portside.ports.llm_rules import normalise_finish_reason

__all__ = [
    "ErrorEvent",
    "Malformed",
    "NotJSON",
    "StreamState",
    "chat_params",
    "completion_from_body",
    "moderations_from_body",
    "not_a_stream",
    "vectors_from_body",
]

MaxTokensField = Literal["max_tokens", "max_completion_tokens"]


class Malformed(ValueError):
    """The server's answer does not have the shape the OpenAI API promises."""


# --- requests ------------------------------------------------------------------------


class NotJSON(ValueError):
    """A tool's parameters or a response schema hold something JSON cannot carry."""


def _plain(value: Any, where: str) -> Any:
    """``value`` with every ``Mapping`` a ``dict`` and every tuple a list (JSON-ready).

    Raises ``NotJSON`` naming ``where`` for anything else than JSON's own types, so a
    bad schema is refused before sending instead of failing inside the HTTP client.
    """
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise NotJSON(f"{where} has a key that is not a string")
        return {k: _plain(v, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    raise NotJSON(f"{where} holds a {type(value).__name__}, which is not JSON")


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def _tool(tool: ToolSpec) -> dict[str, Any]:
    parameters = _plain(tool.parameters, f"tool {tool.name!r} parameters")
    function: dict[str, Any] = {"name": tool.name, "parameters": parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.kind != "json_schema":
        return {"type": fmt.kind}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": fmt.name or "response",
            "schema": _plain(fmt.schema, "the response schema"),
            "strict": fmt.strict,
        },
    }


def chat_params(
    request: ChatRequest, *, default_model: str, max_tokens_field: MaxTokensField
) -> dict[str, Any]:
    """The JSON body of a chat completion for ``request`` (without ``stream``).

    Raises ``NotJSON`` when a tool's parameters or the response schema are not JSON.
    """
    params: dict[str, Any] = {
        "model": request.model or default_model,
        "messages": [_message(m) for m in request.messages],
    }
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.top_p is not None:
        params["top_p"] = request.top_p
    if request.max_tokens is not None:
        params[max_tokens_field] = request.max_tokens
    if request.stop:
        params["stop"] = list(request.stop)
    if request.seed is not None:
        params["seed"] = request.seed
    if request.tools:
        params["tools"] = [_tool(t) for t in request.tools]
    if request.tool_choice is not None:
        choice = request.tool_choice
        params["tool_choice"] = (
            choice
            if choice in ("none", "auto", "required")
            else {"type": "function", "function": {"name": choice}}
        )
    if request.response_format is not None:
        params["response_format"] = _response_format(request.response_format)
    return params


# --- answers -------------------------------------------------------------------------


def _finish(value: object) -> tuple[FinishReason, str | None]:
    if value is not None and not isinstance(value, str):
        raise Malformed("the finish reason is not a string")
    return normalise_finish_reason(value)


def _int(value: object, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise Malformed(f"{what} is not a count")


def usage_from(raw: object) -> Usage:
    """Token counts from an OpenAI ``usage`` object (zeros when the server sent none)."""
    if raw is None:
        return Usage()
    if not isinstance(raw, Mapping):
        raise Malformed("usage is not an object")
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    return Usage(
        _int(raw.get("prompt_tokens"), "usage.prompt_tokens"),
        _int(raw.get("completion_tokens"), "usage.completion_tokens"),
        _int(cached, "usage.cached_tokens"),
    )


def _text(value: object, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise Malformed(f"{what} is not a string")


def _tool_calls(raw: object) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise Malformed("tool_calls is not a list")
    calls = []
    for item in raw:
        function = item.get("function") if isinstance(item, Mapping) else None
        if not isinstance(function, Mapping):
            raise Malformed("a tool call has no function")
        call_id, name = item.get("id"), function.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise Malformed("a tool call has no id or name")
        calls.append(ToolCall(call_id, name, _text(function.get("arguments"), "arguments")))
    return tuple(calls)


def _json_object(raw: bytes) -> Mapping[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Malformed("the body is not JSON") from exc
    if not isinstance(body, dict):
        raise Malformed("the body is not a JSON object")
    return body


def completion_from_body(raw: bytes, *, fallback_model: str) -> tuple[Completion, str | None]:
    """The completion in a ``chat.completion`` body, and the model's refusal if any."""
    body = _json_object(raw)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise Malformed("the answer has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise Malformed("the choice has no message")
    refusal = message.get("refusal")
    model = body.get("model")
    # A foreign or missing reason on a whole answer is kept, never a failure: the
    # body is complete, and retrying it would bill the same answer again.
    finish, said = _finish(choice.get("finish_reason"))
    completion = Completion(
        text=_text(message.get("content"), "content"),
        finish_reason=finish,
        tool_calls=_tool_calls(message.get("tool_calls")),
        usage=usage_from(body.get("usage")),
        model=model if isinstance(model, str) and model else fallback_model,
        provider_finish_reason=said,
    )
    return completion, refusal if isinstance(refusal, str) and refusal else None


def _float(value: object) -> float:
    # Some servers write a whole number (0) where OpenAI writes 0.0.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise Malformed("an embedding holds something other than numbers")


def vectors_from_body(
    raw: bytes, *, count: int, dimensions: int | None
) -> tuple[list[tuple[float, ...]], str, Usage]:
    """``count`` vectors in input order, the model and usage of an embeddings body."""
    body = _json_object(raw)
    data = body.get("data")
    if not isinstance(data, list) or len(data) != count:
        raise Malformed(f"expected {count} embeddings")
    vectors: list[tuple[float, ...] | None] = [None] * count
    size = dimensions
    for item in data:
        index = item.get("index") if isinstance(item, dict) else None
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or vectors[index] is not None:
            raise Malformed("embedding indexes are not 0..n-1")
        if not isinstance(vector, list):
            raise Malformed("an embedding is not a list of floats (was base64 sent?)")
        if size is None:
            size = len(vector)
        if len(vector) != size or not size:
            raise Malformed("embeddings do not have the requested dimensions")
        values = tuple(vector)
        if not all(type(v) is float for v in values):
            values = tuple(_float(v) for v in values)
        vectors[index] = values
    raw_usage = body.get("usage")
    usage = (
        Usage(_int(raw_usage.get("prompt_tokens"), "usage.prompt_tokens"))
        if isinstance(raw_usage, Mapping)
        else Usage()
    )
    model = body.get("model")
    return cast(list[tuple[float, ...]], vectors), model if isinstance(model, str) else "", usage


def _verdicts(raw: object, kind: type, what: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise Malformed(f"{what} is not an object")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None:  # OpenAI sends null for categories a model does not score
            continue
        if kind is bool and not isinstance(value, bool):
            raise Malformed(f"{what} holds something other than true or false")
        if kind is float:
            value = _float(value)
        out[str(name)] = value
    return out


def moderations_from_body(raw: bytes, *, count: int, fallback_model: str) -> Moderations:
    """``count`` verdicts in input order from a ``moderation`` body."""
    body = _json_object(raw)
    results = body.get("results")
    if not isinstance(results, list) or len(results) != count:
        raise Malformed(f"expected {count} moderation results")
    verdicts = []
    for item in results:
        if not isinstance(item, Mapping) or not isinstance(item.get("flagged"), bool):
            raise Malformed("a moderation result has no flagged verdict")
        verdicts.append(
            Moderation(
                item["flagged"],
                _verdicts(item.get("categories"), bool, "categories"),
                _verdicts(item.get("category_scores"), float, "category_scores"),
            )
        )
    model = body.get("model")
    return Moderations(
        tuple(verdicts), model if isinstance(model, str) and model else fallback_model
    )


# --- streams -------------------------------------------------------------------------


def not_a_stream(content_type: str | None) -> ProtocolError | None:
    """Why an answer to a stream request is not one: a JSON body or a web page."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("application/json", "text/html"):
        return ProtocolError(
            service="openai",
            operation="stream",
            message=f"the server answered a stream request with {media}, not server-sent "
            "events (does it support streaming?)",
        )
    return None


class ErrorEvent(Exception):
    """The server sent an ``error`` object as a stream event; ``body`` is that object."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        super().__init__("error event in the stream")
        self.body = body


class StreamState:
    """Reads the events of one stream; remembers the finish reason, usage and model."""

    __slots__ = ("finish_reason", "model", "provider_finish_reason", "usage")

    def __init__(self, model: str) -> None:
        self.finish_reason: FinishReason | None = None
        self.provider_finish_reason: str | None = None
        self.usage: Usage | None = None
        self.model = model

    def read(self, data: bytes) -> tuple[str, tuple[ToolCallDelta, ...]]:
        """The text and tool-call fragments one ``chat.completion.chunk`` carries.

        Both may be empty (the role chunk, the finish chunk, the usage-only chunk).
        Raises ``Malformed`` for anything that is not a chunk and ``ErrorEvent`` for
        an error object.
        """
        chunk = _json_object(data)
        error = chunk.get("error")
        if error:
            raise ErrorEvent(error if isinstance(error, Mapping) else {"message": str(error)})
        raw_usage = chunk.get("usage")
        if raw_usage is not None:
            self.usage = usage_from(raw_usage)
        model = chunk.get("model")
        if isinstance(model, str) and model:
            self.model = model
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise Malformed("a stream chunk has no choices list")
        if not choices:  # the usage-only closing chunk
            return "", ()
        choice = choices[0]
        if not isinstance(choice, Mapping):
            raise Malformed("a stream choice is not an object")
        finish = choice.get("finish_reason")
        if finish is not None:
            self.finish_reason, self.provider_finish_reason = _finish(finish)
        delta = choice.get("delta")
        if not isinstance(delta, Mapping):
            if delta is None and finish is not None:
                return "", ()
            raise Malformed("a stream choice has no delta")
        text = _text(delta.get("content"), "delta content")
        raw_calls = delta.get("tool_calls")
        if not raw_calls:
            return text, ()
        if not isinstance(raw_calls, list):
            raise Malformed("delta tool_calls is not a list")
        return text, tuple(_call_fragment(call) for call in raw_calls)


def _call_fragment(call: object) -> ToolCallDelta:
    if not isinstance(call, Mapping):
        raise Malformed("a tool call fragment is not an object")
    index = call.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise Malformed("a tool call fragment has no index")
    function = call.get("function")
    function = function if isinstance(function, Mapping) else {}
    call_id, name = call.get("id"), function.get("name")
    if not isinstance(call_id, str | None) or not isinstance(name, str | None):
        raise Malformed("a tool call fragment has a non-string id or name")
    return ToolCallDelta(index, call_id, name, _text(function.get("arguments"), "arguments"))
