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
    (``connect_timeout``), so a stalled server is ``TimedOut`` within that bound;
    redis-py's own retries are off (the adapter owns the one retry). The pool holds at
    most ``max_connections`` and is a blocking one: an asyncio application runs far
    more tasks than connections, and with redis-py's default pool every task beyond
    ``max_connections`` failed at once ("Too many connections") instead of waiting its
    turn. A task waits for a free connection at most as long as one call may take
    (``connect_timeout + socket_timeout``), then gets ``Unavailable``. Create it once
    and share it: it is meant to live as long as the application, closed with
    ``await client.aclose()`` (which closes its pool).
    """
    opts = options or RedisOptions()
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=opts.max_connections,
        timeout=opts.connect_timeout + opts.socket_timeout,
        socket_timeout=opts.socket_timeout,
        socket_connect_timeout=opts.connect_timeout,
        health_check_interval=opts.health_check_interval,
        retry=Retry(NoBackoff(), 0),
    )
    client: aioredis.Redis = aioredis.Redis.from_pool(pool)
    return client
