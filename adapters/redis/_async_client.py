"""The ``redis.asyncio`` client of the async adapters, with the sync client's settings."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from portside.adapters.redis._client import RedisOptions

__all__ = ["connect_async"]


def connect_async(url: str, options: RedisOptions | None = None) -> aioredis.Redis:
    """A pooled ``redis.asyncio`` client for ``url``, configured like ``connect``'s.

    The same ``RedisOptions`` bound every read (``socket_timeout``) and connect
    (``connect_timeout``), so a stalled server is ``TimedOut`` within that bound; the
    pool holds at most ``max_connections``; redis-py's own retries are off (the adapter
    owns the one retry). Create it once and share it: it is meant to live as long as
    the application, closed with ``await client.aclose()``.
    """
    opts = options or RedisOptions()
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=opts.socket_timeout,
        socket_connect_timeout=opts.connect_timeout,
        max_connections=opts.max_connections,
        health_check_interval=opts.health_check_interval,
        retry=Retry(NoBackoff(), 0),
    )
    return client
