"""Redis adapters: ``CachePort`` and ``QueuePort`` over redis-py. Needs ``portside[redis]``.

- ``RedisCache``: bytes in a namespace (``namespace|key``), MGET and pipelines for batches.
- ``RedisQueue``: Streams and consumer groups, leases and dead letters in Lua scripts.
- ``queue_durability(client)``: what the server can promise the queue across a restart
  and under memory pressure (a ``QueueDurability``, for start-up and health checks);
  ``QueueNotDurable`` is raised by ``RedisQueue(require_durable=True)`` when it cannot.
- ``AsyncRedisCache``: ``RedisCache``'s twin over ``redis.asyncio`` (``connect_async``).
- ``AsyncRedisQueue``: ``RedisQueue``'s twin over ``redis.asyncio`` (the same operations,
  scripts and keys; only the I/O is awaited).
- ``redis_topology(client)``: the primaries, replicas and (on a cluster) covered hash
  slots behind a client, as a ``RedisTopology`` (``portside check`` shows it).
- ``RedisOptions`` and ``connect(url, options)``: the client both adapters build, with
  portside's timeouts and redis-py's own retries off (each call path has one retry owner).
"""

from typing import TYPE_CHECKING

from portside.adapters._extras import require
from portside.domain._lazy import lazy_names

require("redis", "redis")

if TYPE_CHECKING:
    from portside.adapters.redis._async_cache import AsyncRedisCache
    from portside.adapters.redis._async_client import connect_async
    from portside.adapters.redis._cache import RedisCache
    from portside.adapters.redis._client import RedisOptions, connect
    from portside.adapters.redis._queue import (
        QueueDurability,
        QueueNotDurable,
        RedisQueue,
        queue_durability,
    )
    from portside.adapters.redis._queue._async_adapter import AsyncRedisQueue
    from portside.adapters.redis._topology import RedisTopology, redis_topology

__all__ = [
    "AsyncRedisCache",
    "AsyncRedisQueue",
    "QueueDurability",
    "QueueNotDurable",
    "RedisCache",
    "RedisOptions",
    "RedisQueue",
    "RedisTopology",
    "connect",
    "connect_async",
    "queue_durability",
    "redis_topology",
]

# Each adapter is imported when first used: the cache never loads the queue's modules.
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "AsyncRedisCache": "portside.adapters.redis._async_cache",
        "AsyncRedisQueue": "portside.adapters.redis._queue._async_adapter",
        "QueueDurability": "portside.adapters.redis._queue",
        "QueueNotDurable": "portside.adapters.redis._queue",
        "RedisCache": "portside.adapters.redis._cache",
        "RedisOptions": "portside.adapters.redis._client",
        "RedisQueue": "portside.adapters.redis._queue",
        "RedisTopology": "portside.adapters.redis._topology",
        "connect": "portside.adapters.redis._client",
        "connect_async": "portside.adapters.redis._async_client",
        "queue_durability": "portside.adapters.redis._queue",
        "redis_topology": "portside.adapters.redis._topology",
    },
)
