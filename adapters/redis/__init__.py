"""Redis adapters: ``CachePort`` and ``QueuePort`` over redis-py. Needs ``portside[redis]``."""

from adapters._extras import require

require("redis", "redis")

__all__: list[str] = []
