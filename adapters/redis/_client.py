"""One pooled redis-py client per adapter, and the map from redis errors to the taxonomy."""

from __future__ import annotations

import socket
from typing import Final

import attrs
import redis
import redis.exceptions as rex
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from portside.adapters._redact import redact_url
from portside.domain._errors import (
    InvalidRequest,
    ProtocolError,
    QuotaExceeded,
    ServiceError,
    TimedOut,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "CLUSTER_SCHEMES",
    "REDIS_ERRORS",
    "RedisOptions",
    "connect",
    "connect_cluster",
    "map_error",
    "redacted_url",
]

#: URL schemes naming a Redis Cluster (any one node; the client discovers the rest).
CLUSTER_SCHEMES: Final = ("redis+cluster://", "rediss+cluster://")

#: What a redis-py call can raise for reasons outside the program: catch exactly these.
#: ``RedisClusterException`` is not a ``RedisError`` (a cluster with uncovered slots).
REDIS_ERRORS: Final = (rex.RedisError, rex.RedisClusterException, OSError)


@attrs.frozen
class RedisOptions:
    """Connection settings; the defaults suit a cache (fail fast, do not pile up)."""

    socket_timeout: float = 0.5
    connect_timeout: float = 0.5
    max_connections: int = 50
    health_check_interval: float = 30.0


def connect(url: str, options: RedisOptions | None = None) -> redis.Redis:
    """A pooled client for ``redis://``, ``rediss://`` or ``unix://`` URLs.

    redis-py's own retries are switched off: each adapter decides which operations
    are safe to repeat (``incr`` and ``publish`` are not), so there is one retry owner.
    """
    opts = options or RedisOptions()
    return redis.Redis.from_url(
        url,
        socket_timeout=opts.socket_timeout,
        socket_connect_timeout=opts.connect_timeout,
        max_connections=opts.max_connections,
        health_check_interval=opts.health_check_interval,
        retry=Retry(NoBackoff(), 0),
    )


def connect_cluster(url: str, options: RedisOptions | None = None) -> RedisCluster:
    """A ``RedisCluster`` client for a ``redis+cluster://`` or ``rediss+cluster://`` URL.

    The URL names one node; redis-py reads the slot map from it and keeps it current
    (following ``MOVED`` and ``ASK``). ``max_connections`` is per node. As in
    ``connect``, redis-py's retries are off. ``health_check_interval`` is not passed:
    redis-py's cluster client does not accept it (it drops the key silently). Unlike
    ``connect`` it connects at once: raises ``RedisClusterException`` or
    ``ConnectionError`` when no node answers.
    """
    opts = options or RedisOptions()
    return RedisCluster.from_url(
        url.replace("+cluster://", "://", 1),
        socket_timeout=opts.socket_timeout,
        socket_connect_timeout=opts.connect_timeout,
        max_connections=opts.max_connections,
        retry=Retry(NoBackoff(), 0),
    )


def redacted_url(url: str) -> str:
    """``url`` with any password (in the authority or the query) replaced by ``***``."""
    return redact_url(url)


def map_error(exc: BaseException, *, service: str, operation: str) -> ServiceError:
    """The taxonomy error for a redis-py or socket exception, with ``exc`` as cause."""
    error: ServiceError
    name = type(exc).__name__
    if isinstance(exc, rex.TimeoutError | socket.timeout | TimeoutError):
        error = TimedOut(
            service=service, operation=operation, message="Redis did not answer in time"
        )
    elif isinstance(exc, rex.AuthenticationError | rex.AuthorizationError | rex.NoPermissionError):
        error = Unauthorized(service=service, operation=operation, message=f"Redis refused: {name}")
    elif isinstance(
        exc,
        rex.BusyLoadingError | rex.ReadOnlyError | rex.ClusterDownError | rex.SlotNotCoveredError,
    ):
        error = Unavailable(
            service=service, operation=operation, message=f"Redis is not ready: {name}"
        )
    elif isinstance(exc, rex.ConnectionError | OSError):
        error = Unavailable(service=service, operation=operation, message="Redis is unreachable")
    elif isinstance(exc, rex.OutOfMemoryError):
        error = QuotaExceeded(
            service=service, operation=operation, message="Redis is out of memory"
        )
    elif isinstance(exc, rex.DataError):
        error = InvalidRequest(service=service, operation=operation, message=str(exc)[:200])
    elif isinstance(exc, rex.ResponseError):
        text = str(exc)
        # redis-py strips the "ERR " prefix of error replies; accept both forms.
        bare = text.removeprefix("ERR ")
        if bare.startswith(("WRONGTYPE", "value is not an integer", "increment or decrement")):
            error = InvalidRequest(service=service, operation=operation, message=text[:200])
        else:
            error = ProtocolError(service=service, operation=operation, message=text[:200])
    else:
        error = ProtocolError(service=service, operation=operation, message=f"Redis error: {name}")
    return error.caused_by(exc)
