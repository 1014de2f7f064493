"""What the ``async_*`` rows share: one event loop and two ``connect_async`` clients.

The harness times sync callables, so an async row runs its awaited operations one
after another on one event loop (``repeated``); the loop's own cost is on both sides.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aioredis

from benchmarks._harness import SkipBenchmark
from portside.adapters.redis import RedisOptions, connect_async
from portside.adapters.testing import DEFAULT_REDIS_URL


def loop_and_clients(
    what: str, options: RedisOptions | None = None
) -> tuple[asyncio.AbstractEventLoop, aioredis.Redis, aioredis.Redis]:
    """A new loop, our client and the raw side's (same settings); ``SkipBenchmark`` if no server."""
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    loop = asyncio.new_event_loop()
    ours = connect_async(url, options)
    raw = connect_async(url, options)
    try:
        loop.run_until_complete(raw.ping())
    except redis.RedisError as exc:
        close(loop, ours, raw)
        raise SkipBenchmark(f"{what}: Redis not at {url} ({type(exc).__name__})") from exc
    return loop, ours, raw


def repeated(
    loop: asyncio.AbstractEventLoop, op: Callable[[], Awaitable[Any]], times: int
) -> Callable[[], None]:
    """A sync call that awaits ``op()`` ``times`` times in a row on ``loop``."""

    async def many() -> None:
        for _ in range(times):
            await op()

    return lambda: loop.run_until_complete(many())


def close(loop: asyncio.AbstractEventLoop, *clients: aioredis.Redis) -> None:
    """Close the clients, then the loop."""
    for client in clients:
        loop.run_until_complete(client.aclose())
    loop.close()
