"""Structured output for any ``LLMPort``: a reply that is an instance of an attrs class.

``complete_structured(llm, request, into=Invoice)`` sends the request with a
``json_schema`` response format generated from ``Invoice``, checks the reply against
that schema, builds the instance with cattrs, and, when the reply does not fit, asks
again (a bounded number of times) with the problem appended to the conversation. Usage
is summed over every attempt. It works with any adapter: the fake, the OpenAI adapter,
a caching or resilient wrapper; ``acomplete_structured`` is the same for an
``AsyncLLMPort`` (the asks and checks are written once, as steps each driver runs).
"""

from __future__ import annotations

import re
from typing import Final, Generic, TypeVar

import attrs
import cattrs
import cattrs.errors
import orjson
from returns.result import Failure, Result, Success

from portside.adapters.codec import default_codec
from portside.adapters.resilience._steps import Call, Steps, arun, run
from portside.adapters.structured._json_schema import SchemaError, first_problem, json_schema
from portside.domain._errors import ContentFiltered, InvalidRequest, ProtocolError, ServiceError
from portside.domain._llm import ChatMessage, ChatRequest, Completion, ResponseFormat, Usage
from portside.ports._llm import AsyncLLMPort, LLMPort

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "SchemaError",
    "Structured",
    "acomplete_structured",
    "complete_structured",
    "json_schema",
]

T = TypeVar("T")

#: Attempts in all (the first ask plus re-asks) when the caller does not say.
DEFAULT_MAX_ATTEMPTS: Final = 3

_OPERATION: Final = "complete_structured"
# What structuring a value that passed the schema can still raise: the class's own
# attrs validators and converters. Anything else is a bug and must surface.
_STRUCTURE_ERRORS: Final = (
    cattrs.errors.BaseValidationError,
    cattrs.errors.StructureHandlerNotFoundError,
    ValueError,
    TypeError,
)
_FENCE: Final = re.compile(r"\A\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?```\s*\Z", re.DOTALL)


@attrs.frozen
class Structured(Generic[T]):
    """A reply built into ``T``: the value, the reply it came from, and what it cost."""

    value: T
    completion: Completion
    usage: Usage
    attempts: int


@attrs.frozen
class _Misfit:
    """Why a reply does not fit (as told to the model when it is asked again)."""

    problem: str


def _schema_name(cls: type) -> str:
    # OpenAI's rule for response format names; other servers accept it too.
    return re.sub(r"[^A-Za-z0-9_-]", "_", cls.__name__)[:64] or "reply"


def _parse(
    completion: Completion, schema: dict[str, object], into: type[T], converter: cattrs.Converter
) -> T | _Misfit:
    """The value the reply holds, or the problem that stops it from fitting."""
    if completion.finish_reason == "length":
        return _Misfit("the reply was cut at max_tokens before the JSON ended")
    if completion.tool_calls and not completion.text:
        return _Misfit("the reply was tool calls, not a JSON object")
    text = completion.text
    fenced = _FENCE.match(text)
    if fenced is not None:
        # Some models wrap JSON in a Markdown fence even when told not to.
        text = fenced["body"]
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return _Misfit(f"the reply is not valid JSON ({exc.msg})")
    problem = first_problem(schema, data)
    if problem is not None:
        return _Misfit(problem)
    try:
        return converter.structure(data, into)
    except _STRUCTURE_ERRORS as exc:
        if isinstance(exc, cattrs.errors.BaseValidationError):
            return _Misfit("; ".join(cattrs.transform_error(exc, format_exception=_say))[:300])
        return _Misfit(f"the value does not fit {into.__name__}: {type(exc).__name__}")


def _say(exc: BaseException, _type: type | None) -> str:
    # The class's own validator messages are what the model needs to hear.
    return f"{type(exc).__name__}: {exc}"[:200]


def _reask(problem: str) -> ChatMessage:
    return ChatMessage.user(
        f"That reply does not match the required JSON schema: {problem}. "
        "Answer again with only a JSON object that matches the schema."
    )


def complete_structured(
    llm: LLMPort,
    request: ChatRequest,
    into: type[T],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    strict: bool = True,
    converter: cattrs.Converter | None = None,
) -> Result[Structured[T], ServiceError]:
    """Ask ``llm`` for a reply that fits attrs class ``into`` and build it.

    The request's ``response_format`` is replaced by a ``json_schema`` format generated
    from ``into`` (``strict`` as in ``json_schema``). A reply that is not JSON, breaks
    the schema or fails the class's validators is answered with the problem and asked
    again, up to ``max_attempts`` calls in all; usage sums every call.

    Errors: ``InvalidRequest`` when ``into`` has no JSON schema or ``max_attempts`` is
    below 1 (nothing sent); any error of ``llm.complete`` as it came (not retried
    here: retries belong to the adapter or a resilience wrapper); ``ContentFiltered``
    when the provider filters the reply; ``ProtocolError`` naming the last problem
    when no reply fitted.
    """
    steps = _structured_steps(
        llm.identity.provider or "llm", request, into, max_attempts, strict, converter
    )
    return run(steps, llm)


async def acomplete_structured(
    llm: AsyncLLMPort,
    request: ChatRequest,
    into: type[T],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    strict: bool = True,
    converter: cattrs.Converter | None = None,
) -> Result[Structured[T], ServiceError]:
    """``complete_structured`` for an ``AsyncLLMPort``: the same asks, checks and errors."""
    steps = _structured_steps(
        llm.identity.provider or "llm", request, into, max_attempts, strict, converter
    )
    return await arun(steps, llm)


def _structured_steps(
    service: str,
    request: ChatRequest,
    into: type[T],
    max_attempts: int,
    strict: bool,
    converter: cattrs.Converter | None,
) -> Steps[Result[Structured[T], ServiceError]]:
    """The asks and re-asks of ``complete_structured``, each a ``complete`` call step."""
    if max_attempts < 1:
        message = "max_attempts must be at least 1"
        return Failure(InvalidRequest(service=service, operation=_OPERATION, message=message))
    try:
        schema = json_schema(into, strict=strict)
    except SchemaError as exc:
        error = InvalidRequest(service=service, operation=_OPERATION, message=str(exc))
        return Failure(error.caused_by(exc))
    fmt = ResponseFormat("json_schema", _schema_name(into), schema, strict)
    request = attrs.evolve(request, response_format=fmt)
    converter = converter or default_codec.converter
    usage = Usage()
    problem = ""
    for attempt in range(1, max_attempts + 1):
        answered: Result[Completion, ServiceError] = yield Call("complete", (request,))
        match answered:
            case Failure(error):
                return Failure(error)
            case Success(completion):
                pass
        usage += completion.usage
        if completion.finish_reason == "content_filter":
            message = "the provider filtered the reply"
            return Failure(ContentFiltered(service=service, operation=_OPERATION, message=message))
        parsed = _parse(completion, schema, into, converter)
        if not isinstance(parsed, _Misfit):
            return Success(Structured(parsed, completion, usage, attempt))
        problem = parsed.problem
        # Tool calls are left out: a provider refuses tool calls with no tool results.
        answer = ChatMessage.assistant(completion.text)
        request = attrs.evolve(request, messages=(*request.messages, answer, _reask(problem)))
    message = f"no reply fitted {into.__name__} after {max_attempts} attempts; last: {problem}"
    return Failure(ProtocolError(service=service, operation=_OPERATION, message=message[:500]))
