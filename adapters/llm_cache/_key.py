"""Cache keys for LLM answers: sha256 of a canonical, versioned encoding of a request.

Every field that can change the answer goes in: messages, the model (``None``
resolved to the adapter's default), temperature, top_p, max tokens, stop sequences,
seed, tools, tool choice, the response format with its schema, and the number of
choices, plus the adapter identity (provider, base URL, default model). Transport-only
fields (``timeout``, ``metadata``) never do. Numbers are normalised (``0`` and ``0.0``
are one temperature), mappings are sorted, and the base URL loses any credentials and
trailing slash, so one logical request always has one key. Bump ``KEY_VERSION`` when
the encoding changes: old entries then simply miss.

The key is computed from one positional tuple (``key_values``) dumped once by orjson;
``canonical_request`` names the same values field by field, so what ``explain_key``
shows is by construction what went into the key. ``RequestKeys`` remembers the keys of
recently seen valid requests whose every key field is immutable, found again by value.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import attrs
import orjson

from portside.domain._llm import ChatRequest, LLMIdentity

__all__ = [
    "CHAT_FIELDS",
    "KEY_VERSION",
    "MESSAGE_FIELDS",
    "TRANSPORT_FIELDS",
    "RequestKeys",
    "canonical_request",
    "chat_key",
    "embedding_key",
    "identity_fields",
    "key_values",
]

# 2: positional encoding (one orjson dump of a tuple) instead of named mappings.
KEY_VERSION: Final = 2
_CHAT_PREFIX: Final = f"llm:v{KEY_VERSION}:chat:"
_EMBED_PREFIX: Final = f"llm:v{KEY_VERSION}:embed:"

#: The names of ``key_values``' items, in order.
CHAT_FIELDS: Final = (
    "version",
    "provider",
    "base_url",
    "default_model",
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "n",
)
#: The names of one encoded message's items, in order.
MESSAGE_FIELDS: Final = ("role", "content", "name", "tool_calls", "tool_call_id")
_TOOL_CALL_FIELDS: Final = ("id", "name", "arguments")
_TOOL_FIELDS: Final = ("name", "description", "parameters")
_FORMAT_FIELDS: Final = ("kind", "name", "schema", "strict")
#: ``ChatRequest`` fields that never enter a key: they cannot change the answer.
TRANSPORT_FIELDS: Final = frozenset(("timeout", "metadata", "deadline"))

# Sorting keys also sorts nested mappings, so schemas written in any key order share a
# key. Non-str mapping keys are refused (TypeError) rather than coerced, so {1: x} and
# {"1": x} can never meet.
_DUMP_OPTIONS: Final = orjson.OPT_SORT_KEYS


def _plain(value: object) -> object:
    """The ``default`` hook of orjson: a read-only or custom mapping dumps as its dict."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _url(base_url: str) -> str:
    """``base_url`` without credentials or trailing slash, scheme and host lowercased."""
    if not base_url:
        return ""
    parts = urlsplit(base_url.strip())
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, parts.query, ""))


@functools.lru_cache(maxsize=64)
def _identity_values(identity: LLMIdentity) -> tuple[int, str, str, str]:
    # URL parsing costs more than the rest of a key: an adapter's identity rarely
    # changes, so it is parsed once per distinct identity.
    return (KEY_VERSION, identity.provider, _url(identity.base_url), identity.model)


def identity_fields(identity: LLMIdentity) -> dict[str, str]:
    """The adapter identity as it enters keys (never with credentials)."""
    _, provider, base_url, model = _identity_values(identity)
    return {"provider": provider, "base_url": base_url, "default_model": model}


def _number(value: float | None) -> float | None:
    # 0 and 0.0 (and -0.0) must give one key.
    return None if value is None else float(value) + 0.0


def key_values(identity: LLMIdentity, request: ChatRequest) -> tuple[Any, ...]:
    """Every value that enters ``request``'s key, in ``CHAT_FIELDS`` order."""
    fmt = request.response_format
    # Lists from comprehensions rather than tuple(generator): orjson writes both as
    # arrays, and comprehensions are markedly cheaper on this per-call path.
    return (
        *_identity_values(identity),
        request.model if request.model is not None else identity.model,
        [
            (
                m.role,
                m.content,
                m.name,
                [(c.id, c.name, c.arguments) for c in m.tool_calls] if m.tool_calls else (),
                m.tool_call_id,
            )
            for m in request.messages
        ],
        _number(request.temperature),
        _number(request.top_p),
        request.max_tokens,
        request.stop,
        request.seed,
        [(t.name, t.description, t.parameters) for t in request.tools],
        request.tool_choice,
        None if fmt is None else (fmt.kind, fmt.name, fmt.schema, fmt.strict),
        request.n,
    )


def _digest(values: object) -> str:
    return hashlib.sha256(orjson.dumps(values, default=_plain, option=_DUMP_OPTIONS)).hexdigest()


def chat_key(identity: LLMIdentity, request: ChatRequest) -> str:
    """The cache key of ``request`` sent to ``identity`` (``llm:v2:chat:<sha256>``).

    Raises ``TypeError`` when a tool or response schema holds something that is not
    JSON data (such a request can be answered but not cached).
    """
    return _CHAT_PREFIX + _digest(key_values(identity, request))


def canonical_request(identity: LLMIdentity, request: ChatRequest) -> dict[str, Any]:
    """Every value that enters ``request``'s key, named, as plain JSON data.

    Raises ``TypeError`` like ``chat_key`` for schemas that are not JSON data.
    """
    named = dict(zip(CHAT_FIELDS, key_values(identity, request), strict=True))
    named["messages"] = [
        {
            **dict(zip(MESSAGE_FIELDS, m, strict=True)),
            "tool_calls": [dict(zip(_TOOL_CALL_FIELDS, c, strict=True)) for c in m[3]],
        }
        for m in named["messages"]
    ]
    named["tools"] = [dict(zip(_TOOL_FIELDS, t, strict=True)) for t in named["tools"]]
    if named["response_format"] is not None:
        named["response_format"] = dict(zip(_FORMAT_FIELDS, named["response_format"], strict=True))
    # One round trip through orjson turns tuples and read-only mappings into plain data.
    plain: dict[str, Any] = orjson.loads(orjson.dumps(named, default=_plain))
    return plain


def embedding_key(identity: LLMIdentity, model: str, dimensions: int | None, text: str) -> str:
    """The cache key of one text's vector for (identity, model, dimensions)."""
    return _EMBED_PREFIX + _digest((*_identity_values(identity), model, dimensions, text))


_NUMBER_TYPES: Final = frozenset((int, float, type(None)))
_INT_TYPES: Final = frozenset((int, type(None)))


def _memo_fields(request: ChatRequest) -> tuple[Any, ...]:
    """What a remembered key is looked up by: the key fields, and ``timeout``.

    ``timeout`` is in because it is validated; ``metadata`` is not (neither validated
    nor keyed), so requests that differ only in it share one remembered key.
    """
    return (
        request.messages,
        request.model,
        request.temperature,
        request.top_p,
        request.max_tokens,
        request.stop,
        request.seed,
        request.tools,
        request.tool_choice,
        request.response_format,
        request.n,
        request.timeout,
    )


def _exact_numbers(request: ChatRequest) -> bool:
    """Whether every number field holds exactly an int or float (or ``None``).

    Equality alone cannot find a remembered key: ``True == 1`` and ``1.0 == 1``, yet a
    bool temperature is refused by validation and ``max_tokens=1.0`` encodes apart from
    ``1``. Requests with such values are validated and keyed on their own every time.
    """
    fmt = request.response_format
    return (
        type(request.temperature) in _NUMBER_TYPES
        and type(request.top_p) in _NUMBER_TYPES
        and type(request.timeout) in _NUMBER_TYPES
        and type(request.max_tokens) in _INT_TYPES
        and type(request.seed) in _INT_TYPES
        and type(request.n) is int
        and (fmt is None or type(fmt.strict) is bool)
    )


def _immutable_text_size(request: ChatRequest) -> int | None:
    """The characters of message text ``request`` holds; ``None`` if a key field can change.

    Frozen attrs classes do not freeze what their fields hold: a tool or response
    schema is a mapping the caller may still mutate, and an untyped caller may pass
    lists. Only requests made of tuples, strings and numbers are remembered. The text
    (contents and tool-call arguments) is counted in the same pass, for the memo's bound.
    """
    fmt = request.response_format
    if (
        type(request.messages) is not tuple
        or type(request.stop) is not tuple
        or request.tools
        or (fmt is not None and fmt.schema is not None)
    ):
        return None
    chars = 0
    for message in request.messages:
        calls = message.tool_calls
        if type(calls) is not tuple:
            return None
        chars += len(message.content or "")
        for call in calls:
            chars += len(call.arguments)
    return chars


@attrs.define
class RequestKeys:
    """The keys of recently seen valid requests, remembered by value.

    An application that sends a request again (a fixed prompt, a retry, or a new
    request object built from the same template, which is what a cache hit is) pays
    for its validation and key once. A request is found by its key fields and
    ``timeout`` compared by equality, and only when its number fields hold exact ints
    or floats (``_exact_numbers``), so an equal request is one that validates alike
    and encodes to the same key. Only requests whose key fields cannot change are
    remembered (no tool or response schemas, which the caller could still mutate), and
    each remembered key is checked against the adapter identity on every call.

    The remembered fields (messages included) are held until dropped, so the memo is
    bounded both to ``size`` requests and to about ``max_chars`` characters of message
    text (a request holding more than a quarter of that is not remembered: it costs
    far more to send than to key). Thread-safe without a lock: every step is one
    atomic dict operation, a lost race only costs recomputing a key, and the text
    count may drift by a racing request between two drops.
    """

    size: int = 512
    max_chars: int = 4_000_000
    _held: int = attrs.field(default=0, init=False, repr=False)
    _seen: dict[tuple[Any, ...], tuple[LLMIdentity, str]] = attrs.field(
        factory=dict, init=False, repr=False
    )

    def known(self, identity: LLMIdentity, request: ChatRequest) -> str | None:
        """The key remembered for a request equal to ``request`` under ``identity``, if any."""
        try:
            seen = self._seen.get(_memo_fields(request))
        except TypeError:
            return None  # a list where a tuple belongs: unhashable, never remembered
        if (
            seen is not None
            and (seen[0] is identity or seen[0] == identity)
            and _exact_numbers(request)
        ):
            return seen[1]
        return None

    def remember(self, identity: LLMIdentity, request: ChatRequest, key: str) -> None:
        """Remember ``key`` for ``request`` (already validated, keyed for ``identity``).

        Nothing is remembered when a key field could still change or a number field
        is not exactly an int or float.
        """
        chars = _immutable_text_size(request)
        if chars is None or chars > self.max_chars // 4 or not _exact_numbers(request):
            return
        seen = self._seen
        if len(seen) >= self.size or self._held + chars > self.max_chars:
            # Dropping everything is rare and keeps the table bounded without
            # bookkeeping on the hot path; a dropped key is simply recomputed.
            seen.clear()
            self._held = 0
        self._held += chars
        seen[_memo_fields(request)] = (identity, key)
