"""Redis adapters: ``CachePort`` and ``QueuePort`` over redis-py. Needs ``portside[redis]``.

- ``RedisCache``: bytes in a namespace (``namespace|key``), MGET and pipelines for batches.
- ``RedisQueue``: Streams and consumer groups, leases and dead letters in Lua scripts.
- ``RedisOptions`` and ``connect(url, options)``: the client both adapters build, with
  portside's timeouts and redis-py's own retries off (each call path has one retry owner).
"""

from typing import TYPE_CHECKING

from portside.adapters._extras import require
from portside.domain._lazy import lazy_names

require("redis", "redis")

if TYPE_CHECKING:
    from portside.adapters.redis._cache import RedisCache
    from portside.adapters.redis._client import RedisOptions, connect
    from portside.adapters.redis._queue import RedisQueue

__all__ = ["RedisCache", "RedisOptions", "RedisQueue", "connect"]

# Each adapter is imported when first used: the cache never loads the queue's modules.
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "RedisCache": "portside.adapters.redis._cache",
        "RedisOptions": "portside.adapters.redis._client",
        "RedisQueue": "portside.adapters.redis._queue",
        "connect": "portside.adapters.redis._client",
    },
)
