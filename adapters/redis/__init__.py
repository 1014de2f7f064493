"""Redis adapters: ``CachePort`` and ``QueuePort`` over redis-py. Needs ``portside[redis]``.

- ``RedisCache``: bytes in a namespace (``namespace|key``), MGET and pipelines for batches.
- ``RedisQueue``: Streams and consumer groups, leases and dead letters in Lua scripts.
- ``RedisOptions`` and ``connect(url, options)``: the client both adapters build, with
  portside's timeouts and redis-py's own retries off (each call path has one retry owner).
"""

from portside.adapters._extras import require

require("redis", "redis")

from portside.adapters.redis._cache import RedisCache  # noqa: E402 - after the check
from portside.adapters.redis._client import RedisOptions, connect  # noqa: E402 - after the check
from portside.adapters.redis._queue import RedisQueue  # noqa: E402 - after the check

__all__ = ["RedisCache", "RedisOptions", "RedisQueue", "connect"]
