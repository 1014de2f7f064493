"""Fault injection for tests: a misbehaving TCP proxy and a killable redis-server.

For tests only: a loopback TCP proxy that misbehaves on command, and a throwaway
``redis-server`` that can be killed and restarted.

Both are context managers, thread-safe, bounded in time (every wait has a deadline)
and always cleaned up: leaving the ``with`` block closes every socket, stops every
thread and kills every child process, even after an exception.

- :class:`TcpFaultProxy` sits in front of any ``host:port``. Point a client at
  ``proxy.port`` and then ``cut()`` every connection, ``stall()`` forwarding,
  ``blackhole()`` (accept, never answer), ``close_after(n)`` bytes, and ``heal()``.
- :func:`throwaway_redis` starts ``redis-server --port <free> --save "" --appendonly no``
  as a child process; ``kill()`` sends SIGKILL and ``restart()`` starts it again on the
  same port, empty (nothing is persisted).
"""

from adapters.testing._fault_proxy import Direction, ProxyMode, ProxyStats, TcpFaultProxy
from adapters.testing._throwaway_redis import (
    FaultToolError,
    ThrowawayRedis,
    free_port,
    throwaway_redis,
)

__all__ = [
    "Direction",
    "FaultToolError",
    "ProxyMode",
    "ProxyStats",
    "TcpFaultProxy",
    "ThrowawayRedis",
    "free_port",
    "throwaway_redis",
]
