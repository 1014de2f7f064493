"""The ``redis.asyncio`` client of the async adapters, with the sync client's settings."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from portside.adapters._urls import parse_sentinel_url
from portside.adapters.redis._client import (
    SENTINEL_SCHEMES,
    RedisOptions,
    sentinel_settings,
)

__all__ = ["CallGate", "connect_async", "connect_async_cluster", "connect_async_sentinel"]


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
    ``await client.aclose()`` (which closes its pool). A ``redis+sentinel://`` URL gives
    ``connect_async_sentinel``'s client.
    """
    opts = options or RedisOptions()
    if url.startswith(SENTINEL_SCHEMES):
        return connect_async_sentinel(url, opts)
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


def connect_async_cluster(url: str, options: RedisOptions | None = None) -> AsyncRedisCluster:
    """``connect_cluster``'s twin: a ``redis.asyncio`` ``RedisCluster`` for a cluster URL.

    ``redis+cluster://`` or ``rediss+cluster://`` naming any one node; the same timeouts
    and pool size per node, redis-py's retries off. Unlike the sync cluster client it
    reads the slot map on first use, so an unreachable cluster is ``Unavailable`` then.
    """
    opts = options or RedisOptions()
    client: AsyncRedisCluster = AsyncRedisCluster.from_url(
        url.replace("+cluster://", "://", 1),
        socket_timeout=opts.socket_timeout,
        socket_connect_timeout=opts.connect_timeout,
        max_connections=opts.max_connections,
        retry=Retry(NoBackoff(), 0),
    )
    return client


class _AsyncSentinelPrimary(aioredis.Redis):
    """An async client of a Sentinel service's primary that also closes its sentinel clients."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the pool and the connections to the sentinels."""
        await super().aclose(close_connection_pool)
        manager: Any = getattr(self.connection_pool, "sentinel_manager", None)
        if manager is not None:
            await manager.aclose()


def connect_async_sentinel(url: str, options: RedisOptions | None = None) -> aioredis.Redis:
    """``connect_sentinel``'s twin: a ``redis.asyncio`` client of a Sentinel service's primary.

    The same settings (``sentinel_settings``) and behaviour across a failover. The pool
    is redis-py's Sentinel pool, which does not block; ``AsyncRedisCache`` admits at
    most ``max_connections`` calls at a time, so its tasks wait their turn all the same.
    """
    opts = options or RedisOptions()
    address = parse_sentinel_url(url)
    asking, serving = sentinel_settings(address, opts)
    manager = Sentinel(  # type: ignore[no-untyped-call]
        list(address.sentinels), sentinel_kwargs={**asking, "retry": Retry(NoBackoff(), 0)}
    )
    client: aioredis.Redis = manager.master_for(
        address.service, redis_class=_AsyncSentinelPrimary, retry=Retry(NoBackoff(), 0), **serving
    )
    return client


class CallGate:
    """Calls take turns for a client's pool connections, first come, first served.

    redis-py's blocking pool lets a task that just released a connection take one again
    ahead of the tasks already waiting, and under 1,000 tasks on 50 connections some
    waited past their bound (measured: bursts of ``Unavailable`` every few seconds; none
    with this gate). One turn per connection the pool may open; a call waits for its
    turn at most the pool's own timeout. On a cluster, whose node pools fail a call past
    ``max_connections`` at once ("Too many connections"), one turn per connection of a
    node, so no node's pool is ever asked for more; a call waits at most as long as one
    call may take.
    """

    def __init__(self, client: aioredis.Redis | AsyncRedisCluster) -> None:
        if isinstance(client, AsyncRedisCluster):
            kwargs: dict[str, Any] = client.get_connection_kwargs()
            turns = kwargs.get("max_connections", 50)
            wait = (kwargs.get("socket_connect_timeout") or 0.5) + (
                kwargs.get("socket_timeout") or 0.5
            )
        else:
            pool = client.connection_pool
            turns = getattr(pool, "max_connections", 50)
            wait = getattr(pool, "timeout", None) or 1.0
        self._turns = asyncio.Semaphore(max(1, int(turns)))
        self.wait = float(wait)

    async def enter(self) -> bool:
        """Wait for a turn; ``False`` when none came within ``wait`` seconds."""
        if not self._turns.locked():
            # A turn is free and nobody waits: taken at once, without arming a timer.
            await self._turns.acquire()
            return True
        try:
            async with asyncio.timeout(self.wait):
                await self._turns.acquire()
        except TimeoutError:
            return False
        return True

    def leave(self) -> None:
        """Give the turn back (once per successful ``enter``)."""
        self._turns.release()
