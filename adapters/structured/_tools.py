"""A typed, checked view of the tool calls in an answer, the same for every adapter.

A model may call a tool it was never offered, or send arguments that are not JSON, not
an object, or do not fit the tool's parameter schema; the port passes those through as
text (they are the model's answer). ``parse_tool_calls`` turns them into
``ParsedToolCall`` values, or says exactly what is wrong, with the JSON path, so the
application can answer the model with the problem instead of crashing in its handler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from returns.result import Failure, Result, Success

from portside.adapters.structured._json_schema import first_problem
from portside.domain._errors import ProtocolError
from portside.domain._llm import Completion, ParsedToolCall, ToolCall, ToolSpec

__all__ = ["parse_tool_call", "parse_tool_calls"]

_SERVICE: Final = "llm"


def _plain(value: object) -> Any:
    """A schema as plain dicts and lists, which the checker reads."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _refused(message: str) -> ProtocolError:
    return ProtocolError(service=_SERVICE, operation="parse_tool_call", message=message)


def parse_tool_call(
    call: ToolCall, tools: Sequence[ToolSpec], *, position: int = 0
) -> Result[ParsedToolCall, ProtocolError]:
    """``call`` with its arguments parsed and checked against the offered tool's schema.

    ``Failure(ProtocolError)`` when the call names a tool not in ``tools``, when its
    arguments are not JSON or not an object, or when they break the tool's
    ``parameters`` schema (the message gives the JSON path, never the values). An empty
    arguments text reads as ``{}``, as OpenAI sends for a tool without parameters.
    """
    where = f"tool call {position} ({call.name[:64]!r})"
    tool = next((t for t in tools if t.name == call.name), None)
    if tool is None:
        return Failure(_refused(f"{where} names a tool that was not offered"))
    try:
        arguments = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError as exc:
        return Failure(_refused(f"{where} arguments are not JSON").caused_by(exc))
    if not isinstance(arguments, dict):
        return Failure(_refused(f"{where} arguments are not a JSON object"))
    problem = first_problem(_plain(tool.parameters), arguments) if tool.parameters else None
    if problem is not None:
        return Failure(_refused(f"{where} arguments do not fit the tool's schema: {problem}"))
    return Success(ParsedToolCall(call.id, call.name, arguments, tool))


def parse_tool_calls(
    completion: Completion | Sequence[ToolCall], tools: Sequence[ToolSpec]
) -> Result[tuple[ParsedToolCall, ...], ProtocolError]:
    """Every tool call of ``completion`` (or of a sequence of calls), parsed and checked.

    The first call that does not fit is the ``Failure`` (see ``parse_tool_call``); pass
    the request's ``tools``.
    """
    calls = completion.tool_calls if isinstance(completion, Completion) else completion
    parsed: list[ParsedToolCall] = []
    for position, call in enumerate(calls):
        match parse_tool_call(call, tools, position=position):
            case Success(one):
                parsed.append(one)
            case Failure(_) as failed:
                return failed
    return Success(tuple(parsed))
