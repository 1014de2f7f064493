"""Request rules every LLM adapter applies before anything is sent, and the real-LLM guard.

Each adapter (the fake, the OpenAI adapter, any user adapter) calls ``validate_chat`` /
``validate_embed`` first and returns the ``InvalidRequest`` they give inside a
``Failure`` without touching the network, so bad input fails the same way everywhere.

The guard lets a test suite forbid real providers while local, loopback test servers
keep working: ``forbid_real_llm()`` (or ``PORTSIDE_FORBID_REAL_LLM=1``) makes
``check_real_llm_allowed(base_url)`` raise for any non-loopback endpoint.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from portside.domain._errors import InvalidRequest
from portside.domain._llm import (
    FINISH_REASONS,
    ROLES,
    ChatMessage,
    ChatRequest,
    FinishReason,
    ResponseFormat,
    ToolCall,
    ToolSpec,
)

__all__ = [
    "MAX_EMBED_DIMENSIONS",
    "MAX_EMBED_TEXT_CHARS",
    "MAX_SECONDS",
    "MAX_TOKENS",
    "RESPONSE_KINDS",
    "TOOL_CHOICES",
    "check_real_llm_allowed",
    "forbid_real_llm",
    "normalise_finish_reason",
    "real_llm_forbidden",
    "validate_chat",
    "validate_embed",
    "validate_moderate",
]

#: Default longest text an embeddings call accepts, in characters. OpenAI's embedding
#: models take 8 192 tokens; about four characters a token keeps us under that.
MAX_EMBED_TEXT_CHARS: Final = 32_000

#: Largest ``max_tokens`` a request may ask for (no model comes near it).
MAX_TOKENS: Final = 2**31 - 1

#: Longest ``timeout`` or ``deadline`` a request may set, in seconds (a day).
MAX_SECONDS: Final = 86_400

#: Most dimensions an embeddings call may ask for: bounds the memory of an answer
#: (OpenAI's largest model has 3 072).
MAX_EMBED_DIMENSIONS: Final = 16_384

#: ``ResponseFormat.kind`` values.
RESPONSE_KINDS: Final = frozenset(("text", "json_object", "json_schema"))

#: ``tool_choice`` values that do not name a tool.
TOOL_CHOICES: Final = frozenset(("none", "auto", "required"))

# The OpenAI function-name rule; other compatible servers accept a superset of it.
_TOOL_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")

_ENV_FLAG: Final = "PORTSIDE_FORBID_REAL_LLM"
_FALSY: Final = frozenset(("", "0", "false", "no", "off"))


def _invalid(service: str, operation: str, message: str) -> InvalidRequest:
    return InvalidRequest(service=service, operation=operation, message=message)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _model_problem(model: object) -> str | None:
    if model is not None and not isinstance(model, str):
        return f"model is a {type(model).__name__}, not a str"
    if model is not None and not model.strip():
        return "model name is empty (pass None for the adapter's default model)"
    return None


def validate_chat(
    request: ChatRequest, *, service: str, operation: str = "complete"
) -> InvalidRequest | None:
    """``None`` when ``request`` may be sent, else an ``InvalidRequest`` naming the problem.

    Any value of any type is answered, never raised on: ``request`` must be a
    ``ChatRequest`` whose fields have their declared types (a dict where a
    ``ChatMessage`` belongs, ``content=5``, ``model=5``, ``stop=(5,)``,
    ``max_tokens="10"`` or ``1.5``, ``seed="x"``, a ``response_format`` that is not a
    ``ResponseFormat`` are each named). Checks: at least one message; every role known;
    system, user and tool messages carry content; a tool message answers a tool call
    id; a non-empty model name (``None`` means the adapter's default); tool names that
    are present, unique and made of letters, digits, ``_`` or ``-``; a ``tool_choice``
    that is ``none``/``auto``/``required`` or names a given tool; ``max_tokens`` not
    negative; ``temperature`` in [0, 2]; ``top_p`` in [0, 1]; ``n`` equal to 1 (a
    ``Completion`` carries one choice); a positive ``timeout``; a ``json_schema``
    response format that carries a schema; tool parameters and a response schema that
    are plain JSON (string keys, finite numbers, no sets or other objects).
    """
    problem = _chat_problem(request)
    return None if problem is None else _invalid(service, operation, problem)


def _not_unicode(text: str | None) -> bool:
    """Whether ``text`` holds a lone surrogate, which no JSON body can carry as UTF-8."""
    if text is None or text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _type_name(value: object) -> str:
    return type(value).__name__


def _text_problem(value: object, what: str, *, optional: bool = True) -> str | None:
    """Why ``value`` is not a (valid Unicode) str, or ``None`` (``None`` allowed if optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        return f"{what} is a {_type_name(value)}, not a str"
    if _not_unicode(value):
        return f"{what} is not valid Unicode (it holds a lone surrogate)"
    return None


def _call_problem(call: object, where: str) -> str | None:
    if not isinstance(call, ToolCall):
        return f"{where} is a {_type_name(call)}, not a ToolCall"
    return (
        _text_problem(call.id, f"{where} id", optional=False)
        or _text_problem(call.name, f"{where} name", optional=False)
        or _text_problem(call.arguments, f"{where} arguments", optional=False)
    )


def _message_problem(index: int, message: object) -> str | None:
    where = f"message {index}"
    if not isinstance(message, ChatMessage):
        hint = (
            " (build it with ChatMessage.user(...) and friends)"
            if isinstance(message, Mapping)
            else ""
        )
        return f"{where} is a {_type_name(message)}, not a ChatMessage{hint}"
    # Any: the fields are checked against their declared types, which untyped callers
    # do not have to respect.
    m: Any = message
    role = m.role
    if not isinstance(role, str) or role not in ROLES:
        return f"{where} has unknown role {str(role)[:20]!r}"
    content = m.content
    # Checked one by one, and the tool calls only when there are some: this runs for
    # every message of every request, and a generator costs more than the check.
    if content is not None and (type(content) is not str or _not_unicode(content)):
        return _text_problem(content, f"{where} content")
    if content is None and role in ("system", "user", "tool"):
        return f"{where} ({role}) has no content"
    if m.name is not None or m.tool_call_id is not None:
        problem = _text_problem(m.name, f"{where} name") or _text_problem(
            m.tool_call_id, f"{where} tool_call_id"
        )
        if problem is not None:
            return problem
    if role == "tool" and not m.tool_call_id:
        return f"{where} is a tool result without a tool_call_id"
    calls = m.tool_calls
    if not isinstance(calls, tuple | list):
        return f"{where} tool_calls is a {_type_name(calls)}, not a tuple"
    if calls:
        for number, call in enumerate(calls):
            problem = _call_problem(call, f"{where} tool call {number}")
            if problem is not None:
                return problem
    return None


def _int_problem(value: object, what: str, low: int, high: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{what} is a {_type_name(value)}, not an int"
    if not low <= value <= high:
        return f"{what} must be between {low} and {high}"
    return None


def _seconds_problem(value: object, what: str) -> str | None:
    # Compared, never converted: math.isfinite(10**400) raises OverflowError.
    if value is None:
        return None
    if not _is_number(value) or not (0 < value <= MAX_SECONDS):  # type: ignore[operator]
        return f"{what} must be a positive number of seconds, at most {MAX_SECONDS}"
    return None


def _chat_problem(request: object) -> str | None:
    if not isinstance(request, ChatRequest):
        return f"request is a {_type_name(request)}, not a ChatRequest"
    r: Any = request  # as in _message_problem: checked against the declared types
    messages = r.messages
    if not isinstance(messages, tuple | list):
        return f"messages is a {_type_name(messages)}, not a tuple of ChatMessage"
    if not messages:
        return "a chat request needs at least one message"
    for index, message in enumerate(messages):
        problem = _message_problem(index, message)
        if problem is not None:
            return problem
    stop = r.stop
    if not isinstance(stop, tuple | list):
        return f"stop is a {_type_name(stop)}, not a tuple of str"
    if stop:
        for index, sequence in enumerate(stop):
            problem = _text_problem(sequence, f"stop sequence {index}", optional=False)
            if problem is not None:
                return problem
    problem = _text_problem(r.model, "model") or _model_problem(r.model)
    if problem is not None:
        return problem
    names: set[str] = set()
    tools = r.tools
    if not isinstance(tools, tuple | list):
        return f"tools is a {_type_name(tools)}, not a tuple of ToolSpec"
    for index, given in enumerate(tools):
        if not isinstance(given, ToolSpec):
            return f"tool {index} is a {_type_name(given)}, not a ToolSpec"
        tool: Any = given  # as in _message_problem: checked against the declared types
        if not isinstance(tool.name, str) or not tool.name:
            return f"tool {index} has no name"
        if not _TOOL_NAME.fullmatch(tool.name):
            return f"tool {index} name must be 1-64 letters, digits, '_' or '-'"
        if tool.name in names:
            return f"tool name {tool.name!r} is given twice"
        names.add(tool.name)
        problem = _text_problem(tool.description, f"tool {index} description", optional=False)
        if problem is not None:
            return problem
        if not isinstance(tool.parameters, Mapping):
            return f"tool {index} parameters is a {_type_name(tool.parameters)}, not a mapping"
        problem = _json_problem(tool.parameters, "$")
        if problem is not None:
            return f"tool {index} parameters are not JSON: {problem}"
    choice = r.tool_choice
    if choice is not None and (
        not isinstance(choice, str) or (choice not in TOOL_CHOICES and choice not in names)
    ):
        return "tool_choice must be 'none', 'auto', 'required' or the name of a given tool"
    problem = _int_problem(r.max_tokens, "max_tokens", 0, MAX_TOKENS) or _int_problem(
        r.seed, "seed", -(2**63), 2**63 - 1
    )
    if problem is not None:
        return problem
    temperature = r.temperature
    if temperature is not None and not (_is_number(temperature) and 0 <= temperature <= 2):
        return "temperature must be a number between 0 and 2"
    if r.top_p is not None and not (_is_number(r.top_p) and 0 <= r.top_p <= 1):
        return "top_p must be a number between 0 and 1"
    if r.n != 1 or not isinstance(r.n, int):
        return "n must be 1: a completion carries exactly one choice"
    problem = _seconds_problem(r.timeout, "timeout") or _seconds_problem(r.deadline, "deadline")
    if problem is not None:
        return problem
    metadata = r.metadata
    if not isinstance(metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        return "metadata must be a mapping of str to str"
    if r.response_format is not None:
        if not isinstance(r.response_format, ResponseFormat):
            return f"response_format is a {_type_name(r.response_format)}, not a ResponseFormat"
        fmt: Any = r.response_format
        if not isinstance(fmt.kind, str) or fmt.kind not in RESPONSE_KINDS:
            return "response_format kind must be 'text', 'json_object' or 'json_schema'"
        if fmt.kind == "json_schema":
            if fmt.schema is None:
                return "a json_schema response format needs a schema"
            if not isinstance(fmt.schema, Mapping):
                return f"the response schema is a {_type_name(fmt.schema)}, not a mapping"
            problem = _json_problem(fmt.schema, "$") or _text_problem(
                fmt.name, "response_format name"
            )
            if problem is not None:
                return f"the response schema is not JSON: {problem}"
    return None


def _json_problem(value: object, path: str) -> str | None:
    """Where ``value`` stops being plain JSON, if it does: a schema must be sent as JSON."""
    if isinstance(value, str):
        return f"{path} is not valid Unicode" if _not_unicode(value) else None
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is not a finite number"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or _not_unicode(key):
                return (
                    f"{path} has a key that is not a string"
                    if not isinstance(key, str)
                    else (f"{path} has a key that is not valid Unicode")
                )
            problem = _json_problem(item, f"{path}.{key[:40]}")
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{index}]")
            if problem is not None:
                return problem
        return None
    return f"{path} is a {type(value).__name__}"


def validate_embed(
    texts: Sequence[str],
    model: str | None,
    dimensions: int | None,
    *,
    service: str,
    max_text_chars: int = MAX_EMBED_TEXT_CHARS,
    operation: str = "embed",
) -> InvalidRequest | None:
    """``None`` when the embeddings call may be sent, else an ``InvalidRequest``.

    Checks: ``texts`` is a list or tuple of strings (one bare ``str`` is refused: it
    would embed each character; ``None`` and other types are named), at least one
    text, no empty text, none longer than ``max_text_chars``; a non-empty model name;
    ``dimensions`` a positive int of at most ``MAX_EMBED_DIMENSIONS`` when given.
    """
    problem = _embed_problem(texts, model, dimensions, max_text_chars)
    return None if problem is None else _invalid(service, operation, problem)


def _texts_problem(texts: object, max_text_chars: int, what: str) -> str | None:
    if isinstance(texts, str | bytes):
        return "texts must be a sequence of strings, not a single string"
    if not isinstance(texts, list | tuple):
        return f"texts is a {type(texts).__name__}, not a list or tuple of str"
    if len(texts) == 0:
        return f"{what} needs at least one text"
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            return f"text {index} is a {type(text).__name__}, not a str"
        if not text:
            return f"text {index} is empty"
        # The length first: a huge text is refused before anything walks it.
        if len(text) > max_text_chars:
            return f"text {index} is longer than {max_text_chars} characters"
        if _not_unicode(text):
            return f"text {index} is not valid Unicode (it holds a lone surrogate)"
    return None


def _embed_problem(
    texts: object, model: object, dimensions: object, max_text_chars: int
) -> str | None:
    problem = _texts_problem(texts, max_text_chars, "an embeddings call")
    if problem is not None:
        return problem
    problem = _model_problem(model)
    if problem is not None:
        return problem
    # Typed callers pass an int; untyped ones can pass 1.5 or "8", which must not reach
    # the provider (or the fake's vector arithmetic).
    size = dimensions
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_EMBED_DIMENSIONS
    ):
        return f"dimensions must be a positive integer, at most {MAX_EMBED_DIMENSIONS}"
    return None


def validate_moderate(
    texts: Sequence[str],
    model: str | None,
    *,
    service: str,
    max_text_chars: int = MAX_EMBED_TEXT_CHARS,
    operation: str = "moderate",
) -> InvalidRequest | None:
    """``None`` when the moderation call may be sent, else an ``InvalidRequest``.

    The same text rules as ``validate_embed``: a list or tuple of non-empty strings,
    none longer than ``max_text_chars``, and a non-empty model name when given.
    """
    problem = _texts_problem(texts, max_text_chars, "a moderation call") or _model_problem(model)
    return None if problem is None else _invalid(service, operation, problem)


# What compatible servers say for the port's four reasons (Anthropic-, Gemini-, vLLM-
# and TGI-style names); anything else not on OpenAI's list reads as a normal stop.
_FINISH_ALIASES: Final[dict[str, FinishReason]] = {
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "max_tokens": "length",
    "max_length": "length",
    "model_length": "length",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
}


def normalise_finish_reason(raw: object) -> tuple[FinishReason, str | None]:
    """The port's finish reason for what a server said, and the provider's own if foreign.

    OpenAI's four reasons come back as they are with ``None``; known foreign names map
    to their meaning (``end_turn`` -> ``stop``, ``max_tokens`` -> ``length``...), and
    anything else (a null included) reads as ``stop``: the answer was complete, and a
    complete answer is never a failure. The provider's text is kept, cut to 64 chars.
    """
    if isinstance(raw, str):
        if raw in FINISH_REASONS:
            return raw, None  # type: ignore[return-value]
        return _FINISH_ALIASES.get(raw.lower(), "stop"), raw[:64]
    return "stop", None if raw is None else str(raw)[:64]


class _Guard:
    """Process-wide switch; a lock keeps reads and writes from tearing across threads."""

    def __init__(self) -> None:
        self.forbidden = False
        self.lock = threading.Lock()


_guard: Final = _Guard()


def forbid_real_llm(flag: bool = True) -> None:
    """Forbid (or allow again) real LLM providers in this process, e.g. in a test suite."""
    with _guard.lock:
        _guard.forbidden = flag


def real_llm_forbidden() -> bool:
    """Whether real providers are forbidden, by ``forbid_real_llm`` or the environment."""
    with _guard.lock:
        if _guard.forbidden:
            return True
    return os.environ.get(_ENV_FLAG, "").strip().lower() not in _FALSY


def _is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname if "://" in base_url else None
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_real_llm_allowed(base_url: str) -> None:
    """Raise ``RuntimeError`` if real providers are forbidden and ``base_url`` is not local.

    Loopback endpoints (``127.0.0.0/8``, ``::1``, ``localhost``) are always allowed so
    local test servers keep working. An empty ``base_url`` means the provider's public
    endpoint and is refused while the guard is on. Real adapters call this before their
    first request; raising (not a ``Failure``) is deliberate: reaching a real provider
    from a test suite is a programming error, not a service error.
    """
    if real_llm_forbidden() and not _is_loopback(base_url):
        raise RuntimeError(
            "real LLM providers are forbidden in this process "
            f"(forbid_real_llm() or {_ENV_FLAG}=1); use FakeLLM or a loopback test server"
        )
