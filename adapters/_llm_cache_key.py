"""Cache keys for LLM answers: sha256 of a canonical, versioned encoding of a request.

Every field that can change the answer goes in: messages, the model (``None``
resolved to the adapter's default), temperature, top_p, max tokens, stop sequences,
seed, tools, tool choice, the response format with its schema, and the number of
choices, plus the adapter identity (provider, base URL, default model). Transport-only
fields (``timeout``, ``metadata``) never do. Numbers are normalised (``0`` and ``0.0``
are one temperature), mappings are sorted, and the base URL loses any credentials and
trailing slash, so one logical request always has one key. Bump ``KEY_VERSION`` when
the encoding changes: old entries then simply miss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import orjson

from domain.llm import ChatMessage, ChatRequest, LLMIdentity, ResponseFormat, ToolSpec

__all__ = [
    "KEY_VERSION",
    "canonical_request",
    "chat_key",
    "embedding_key",
    "identity_fields",
]

KEY_VERSION: Final = 1
_CHAT_PREFIX: Final = f"llm:v{KEY_VERSION}:chat:"
_EMBED_PREFIX: Final = f"llm:v{KEY_VERSION}:embed:"


def _url(base_url: str) -> str:
    """``base_url`` without credentials or trailing slash, scheme and host lowercased."""
    if not base_url:
        return ""
    parts = urlsplit(base_url.strip())
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, parts.query, ""))


def identity_fields(identity: LLMIdentity) -> dict[str, str]:
    """The adapter identity as it enters keys (never with credentials)."""
    return {
        "provider": identity.provider,
        "base_url": _url(identity.base_url),
        "default_model": identity.model,
    }


def _number(value: float | None) -> float | None:
    # 0 and 0.0 (and -0.0) must give one key.
    return None if value is None else float(value) + 0.0


def _json(value: Any) -> Any:
    """Plain JSON data (dicts and lists) from mappings and tuples, for canonical dumping."""
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _message(message: ChatMessage) -> dict[str, Any]:
    return {
        "role": message.role,
        "content": message.content,
        "name": message.name,
        "tool_calls": [[c.id, c.name, c.arguments] for c in message.tool_calls],
        "tool_call_id": message.tool_call_id,
    }


def _tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description,
        "parameters": _json(tool.parameters),
    }


def _format(fmt: ResponseFormat | None) -> dict[str, Any] | None:
    if fmt is None:
        return None
    return {
        "kind": fmt.kind,
        "name": fmt.name,
        "schema": _json(fmt.schema) if fmt.schema is not None else None,
        "strict": fmt.strict,
    }


def canonical_request(identity: LLMIdentity, request: ChatRequest) -> dict[str, Any]:
    """Every field that enters the chat key, by name, as plain JSON data."""
    return {
        "version": KEY_VERSION,
        **identity_fields(identity),
        "model": request.model if request.model is not None else identity.model,
        "messages": [_message(m) for m in request.messages],
        "temperature": _number(request.temperature),
        "top_p": _number(request.top_p),
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "seed": request.seed,
        "tools": [_tool(t) for t in request.tools],
        "tool_choice": request.tool_choice,
        "response_format": _format(request.response_format),
        "n": request.n,
    }


def _digest(fields: Mapping[str, Any]) -> str:
    # OPT_SORT_KEYS sorts nested mappings too, so tool schemas written in any key
    # order share a key; non-str keys are refused rather than silently coerced.
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def chat_key(canonical: Mapping[str, Any]) -> str:
    """The cache key of a request's canonical fields (``llm:v1:chat:<sha256>``)."""
    return _CHAT_PREFIX + _digest(canonical)


def embedding_key(identity: LLMIdentity, model: str, dimensions: int | None, text: str) -> str:
    """The cache key of one text's vector for (identity, model, dimensions)."""
    fields = {
        "version": KEY_VERSION,
        **identity_fields(identity),
        "model": model,
        "dimensions": dimensions,
        "text": text,
    }
    return _EMBED_PREFIX + _digest(fields)
