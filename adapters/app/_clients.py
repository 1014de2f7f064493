"""The process-wide raw clients, for applications that call the SDKs directly.

``get_openai_client()`` and ``get_redis_client()`` are the seed-style helpers of a
services module: one pooled client per process, created on first use from the same
settings as the adapters.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from portside.adapters.app._settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    import openai
    import redis

    from portside.adapters.redis import RedisOptions

__all__ = ["close_clients", "get_openai_client", "get_redis_client", "redis_options"]

_lock = threading.Lock()
_openai_client: openai.OpenAI | None = None
_redis_client: redis.Redis | None = None


def get_openai_client() -> openai.OpenAI:
    """The process-wide raw ``openai.OpenAI`` client (pooled, created on first use).

    Reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``; retries are left to the SDK.
    """
    global _openai_client
    if _openai_client is not None:
        return _openai_client
    with _lock:
        if _openai_client is None:
            from portside.adapters._extras import require

            sdk: Any = require("openai", "openai")
            conn = load_settings().connections
            key = conn.openai_api_key
            _openai_client = sdk.OpenAI(
                api_key=str(key) if key is not None else "not-set",
                base_url=conn.openai_base_url,
            )
        return _openai_client


def get_redis_client() -> redis.Redis:
    """The process-wide raw ``redis.Redis`` client (pooled, created on first use).

    Raises ``SettingsError`` when ``REDIS_URL`` is not set.
    """
    global _redis_client
    if _redis_client is not None:
        return _redis_client
    with _lock:
        if _redis_client is None:
            settings = load_settings()
            url = settings.connections.redis_url
            if not url:
                raise SettingsError("REDIS_URL", "is not set")
            from portside.adapters.redis._client import connect

            _redis_client = connect(
                url,
                redis_options(settings),
            )
        return _redis_client


def redis_options(settings: Settings) -> RedisOptions:
    """The cache's and the raw client's connection settings, from PORTSIDE_REDIS_*."""
    from portside.adapters.redis._client import RedisOptions

    return RedisOptions(
        socket_timeout=settings.tuning.redis_timeout,
        connect_timeout=settings.tuning.redis_timeout,
        max_connections=settings.tuning.redis_max_connections,
    )


def close_clients() -> None:
    """Close and forget both raw clients (``reset_services()`` calls it)."""
    global _openai_client, _redis_client
    with _lock:
        openai_client, _openai_client = _openai_client, None
        redis_client, _redis_client = _redis_client, None
    if openai_client is not None:
        openai_client.close()
    if redis_client is not None:
        redis_client.close()
