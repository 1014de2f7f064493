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
shows is by construction what went into the key.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import orjson

from portside.domain._llm import ChatRequest, LLMIdentity

__all__ = [
    "CHAT_FIELDS",
    "KEY_VERSION",
    "MESSAGE_FIELDS",
    "TRANSPORT_FIELDS",
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
