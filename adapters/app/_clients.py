"""The process-wide raw clients, for applications that call the SDKs directly.

``get_openai_client()`` and ``get_redis_client()`` are the seed-style helpers of a
services module: one pooled client per process, created on first use from the same
settings and under the same guards as the adapters. The options each client gets are
built here once, so the adapters, the raw clients and the health checks agree.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

from portside.adapters.app._settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    import openai
    import redis

    from portside.adapters.redis import RedisOptions

__all__ = [
    "CONNECT_TIMEOUT",
    "close_clients",
    "get_openai_client",
    "get_redis_client",
    "openai_client",
    "raw_redis_options",
    "redis_options",
]

#: Seconds to connect to an OpenAI-compatible server (reading has its own timeout).
CONNECT_TIMEOUT: Final = 5.0

_lock = threading.Lock()
_openai_client: openai.OpenAI | None = None
_redis_client: redis.Redis | None = None


def openai_client(settings: Settings, *, timeout: float | None = None) -> openai.OpenAI:
    """A new ``openai.OpenAI`` client for the configured server, behind portside's guards.

    The key is ``OPENAI_API_KEY`` (a placeholder for a loopback ``OPENAI_BASE_URL``;
    ``SettingsError`` when a remote provider has none); the real-LLM guard is honoured
    (``RuntimeError`` for a non-loopback server while real providers are forbidden);
    the SDK's retries are off, since portside's retry policy is the one owner of
    retries; ``timeout`` (default ``PORTSIDE_LLM_TIMEOUT``) bounds each read.
    """
    from portside.adapters._extras import require

    sdk: Any = require("openai", "openai")
    import httpx2

    from portside.adapters.openai import DEFAULT_BASE_URL
    from portside.ports.llm_rules import check_real_llm_allowed

    base_url = settings.connections.openai_base_url or DEFAULT_BASE_URL
    key = settings.openai_api_key()
    check_real_llm_allowed(base_url)
    read = settings.tuning.llm_timeout if timeout is None else timeout
    client: openai.OpenAI = sdk.OpenAI(
        api_key=key,
        base_url=base_url,
        max_retries=0,
        timeout=httpx2.Timeout(read, connect=min(CONNECT_TIMEOUT, read)),
    )
    return client


def get_openai_client() -> openai.OpenAI:
    """The process-wide raw ``openai.OpenAI`` client (pooled, created on first use).

    Built from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and ``PORTSIDE_LLM_TIMEOUT``.
    Raises ``SettingsError`` when the settings are invalid or a remote provider has no
    key, and ``RuntimeError`` when real providers are forbidden (``forbid_real_llm()``)
    and the server is not loopback. The SDK does not retry: wrap calls that may be
    repeated in a ``portside.adapters.resilience.RetryPolicy``, or use the ``LLMPort``
    adapter, which owns its retries.
    """
    global _openai_client
    if _openai_client is not None:
        return _openai_client
    with _lock:
        if _openai_client is None:
            _openai_client = openai_client(load_settings())
        return _openai_client


def get_redis_client() -> redis.Redis:
    """The process-wide raw ``redis.Redis`` client (pooled, created on first use).

    Reads ``REDIS_URL``; each reply may take up to ``PORTSIDE_REDIS_CLIENT_TIMEOUT``
    seconds (30 by default), so blocking commands such as ``blpop(timeout=2)`` work,
    while connecting is bounded by ``PORTSIDE_REDIS_TIMEOUT``. redis-py's own retries
    are off, as for the adapters. Raises ``SettingsError`` when ``REDIS_URL`` is not
    set or the settings are invalid.
    """
    global _redis_client
    if _redis_client is not None:
        return _redis_client
    with _lock:
        if _redis_client is None:
            settings = load_settings()
            url = settings.connections.redis_url
            if not url:
                raise SettingsError("REDIS_URL", "is not set; accepted: redis://HOST[:PORT][/DB]")
            from portside.adapters.redis._client import connect

            _redis_client = connect(url, raw_redis_options(settings))
        return _redis_client


def redis_options(settings: Settings) -> RedisOptions:
    """The cache's and the queue's connection settings: fail fast (PORTSIDE_REDIS_TIMEOUT)."""
    from portside.adapters.redis._client import RedisOptions

    return RedisOptions(
        socket_timeout=settings.tuning.redis_timeout,
        connect_timeout=settings.tuning.redis_timeout,
        max_connections=settings.tuning.redis_max_connections,
    )


def raw_redis_options(settings: Settings) -> RedisOptions:
    """The raw client's settings: as the cache's, but replies may take longer.

    An application's own commands include blocking ones (``BLPOP``, ``XREAD BLOCK``)
    that wait on the server by design; the cache's 0.5 s would cut them short.
    """
    import attrs

    return attrs.evolve(
        redis_options(settings), socket_timeout=settings.tuning.redis_client_timeout
    )


def close_clients() -> None:
    """Close and forget both raw clients (``reset_services()`` calls it)."""
    global _openai_client, _redis_client
    with _lock:
        llm_client, _openai_client = _openai_client, None
        cache_client, _redis_client = _redis_client, None
    if llm_client is not None:
        llm_client.close()
    if cache_client is not None:
        cache_client.close()
