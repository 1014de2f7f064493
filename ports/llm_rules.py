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
from typing import Final
from urllib.parse import urlsplit

from portside.domain._errors import InvalidRequest
from portside.domain._llm import ROLES, ChatRequest

__all__ = [
    "MAX_EMBED_TEXT_CHARS",
    "TOOL_CHOICES",
    "check_real_llm_allowed",
    "forbid_real_llm",
    "real_llm_forbidden",
    "validate_chat",
    "validate_embed",
]

#: Default longest text an embeddings call accepts, in characters. OpenAI's embedding
#: models take 8 192 tokens; about four characters a token keeps us under that.
MAX_EMBED_TEXT_CHARS: Final = 32_000

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


def _model_problem(model: str | None) -> str | None:
    if model is not None and not model.strip():
        return "model name is empty (pass None for the adapter's default model)"
    return None


def validate_chat(
    request: ChatRequest, *, service: str, operation: str = "complete"
) -> InvalidRequest | None:
    """``None`` when ``request`` may be sent, else an ``InvalidRequest`` naming the problem.

    Checks: at least one message; every role known; a tool message answers a tool call
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


def _chat_problem(request: ChatRequest) -> str | None:
    if not request.messages:
        return "a chat request needs at least one message"
    for index, message in enumerate(request.messages):
        if message.role not in ROLES:
            return f"message {index} has unknown role {message.role!r}"
        if message.role == "tool" and not message.tool_call_id:
            return f"message {index} is a tool result without a tool_call_id"
        calls = message.tool_calls
        # Called one by one, and the tool calls only when there are some: this runs
        # for every message of every request, and a generator costs more than the check.
        if (
            _not_unicode(message.content)
            or _not_unicode(message.name)
            or _not_unicode(message.tool_call_id)
            or (
                calls
                and any(
                    _not_unicode(c.arguments) or _not_unicode(c.name) or _not_unicode(c.id)
                    for c in calls
                )
            )
        ):
            return f"message {index} is not valid Unicode (it holds a lone surrogate)"
    if request.stop and any(map(_not_unicode, request.stop)):
        return "a stop sequence is not valid Unicode (it holds a lone surrogate)"
    problem = _model_problem(request.model)
    if problem is not None:
        return problem
    names: set[str] = set()
    for index, tool in enumerate(request.tools):
        if not tool.name:
            return f"tool {index} has no name"
        if not _TOOL_NAME.fullmatch(tool.name):
            return f"tool {index} name must be 1-64 letters, digits, '_' or '-'"
        if tool.name in names:
            return f"tool name {tool.name!r} is given twice"
        names.add(tool.name)
        problem = _json_problem(tool.parameters, "$")
        if problem is not None:
            return f"tool {index} parameters are not JSON: {problem}"
    choice = request.tool_choice
    if choice is not None and choice not in TOOL_CHOICES and choice not in names:
        return "tool_choice must be 'none', 'auto', 'required' or the name of a given tool"
    if request.max_tokens is not None and request.max_tokens < 0:
        return "max_tokens must not be negative"
    temperature = request.temperature
    if temperature is not None and not (_is_number(temperature) and 0 <= temperature <= 2):
        return "temperature must be between 0 and 2"
    if request.top_p is not None and not (_is_number(request.top_p) and 0 <= request.top_p <= 1):
        return "top_p must be between 0 and 1"
    if request.n != 1:
        return "n must be 1: a completion carries exactly one choice"
    timeout = request.timeout
    if timeout is not None and not (_is_number(timeout) and math.isfinite(timeout) and timeout > 0):
        return "timeout must be a positive number of seconds"
    fmt = request.response_format
    if fmt is not None and fmt.kind == "json_schema":
        if fmt.schema is None:
            return "a json_schema response format needs a schema"
        problem = _json_problem(fmt.schema, "$")
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

    Checks: ``texts`` is a sequence of strings (one bare ``str`` is refused: it would
    embed each character), at least one text, no empty text, none longer than
    ``max_text_chars``; a non-empty model name; ``dimensions`` positive when given.
    """
    problem = _embed_problem(texts, model, dimensions, max_text_chars)
    return None if problem is None else _invalid(service, operation, problem)


def _embed_problem(
    texts: Sequence[str], model: str | None, dimensions: int | None, max_text_chars: int
) -> str | None:
    if isinstance(texts, str | bytes):
        return "texts must be a sequence of strings, not a single string"
    if len(texts) == 0:
        return "an embeddings call needs at least one text"
    # Typed callers cannot pass a non-str, but the port is public and untyped callers can.
    items: Sequence[object] = texts
    for index, text in enumerate(items):
        if not isinstance(text, str):
            return f"text {index} is a {type(text).__name__}, not a str"
        if not text:
            return f"text {index} is empty"
        if _not_unicode(text):
            return f"text {index} is not valid Unicode (it holds a lone surrogate)"
        if len(text) > max_text_chars:
            return f"text {index} is longer than {max_text_chars} characters"
    problem = _model_problem(model)
    if problem is not None:
        return problem
    # Typed callers pass an int; untyped ones can pass 1.5 or "8", which must not reach
    # the provider (or the fake's vector arithmetic).
    size: object = dimensions
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        return "dimensions must be a positive integer"
    return None


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
