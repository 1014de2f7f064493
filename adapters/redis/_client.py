"""One pooled redis-py client per adapter, and the map from redis errors to the taxonomy."""

from __future__ import annotations

import socket
from typing import Any, Final

import attrs
import redis
import redis.exceptions as rex
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from portside.adapters._redact import redact_url
from portside.adapters._urls import SentinelAddress, parse_sentinel_url
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
    "SENTINEL_SCHEMES",
    "RedisOptions",
    "SentinelPrimary",
    "connect",
    "connect_cluster",
    "map_error",
    "redacted_url",
    "refused_by_replica",
    "sentinel_settings",
    "server_name",
]

#: URL schemes naming a Redis Cluster (any one node; the client discovers the rest).
CLUSTER_SCHEMES: Final = ("redis+cluster://", "rediss+cluster://")

#: URL schemes naming a Sentinel-monitored primary (sentinels, then the service name).
SENTINEL_SCHEMES: Final = ("redis+sentinel://", "rediss+sentinel://")

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
    """A pooled client for ``redis://``, ``rediss://``, ``unix://`` or Sentinel URLs.

    redis-py's own retries are switched off: each adapter decides which operations
    are safe to repeat (``incr`` and ``publish`` are not), so there is one retry owner.
    A ``redis+sentinel://`` URL gives a client of the service's current primary (see
    ``connect_sentinel``).
    """
    opts = options or RedisOptions()
    if url.startswith(SENTINEL_SCHEMES):
        return connect_sentinel(url, opts)
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


class SentinelPrimary(redis.Redis):
    """A client of a Sentinel service's primary (``connect_sentinel``'s).

    Its ``close()`` also closes the connections to the sentinels.
    """

    def close(self) -> None:
        """Close the pool and the connections to the sentinels."""
        super().close()
        manager: Any = getattr(self.connection_pool, "sentinel_manager", None)
        if manager is not None:
            manager.close()


def sentinel_settings(
    address: SentinelAddress, opts: RedisOptions
) -> tuple[dict[str, Any], dict[str, Any]]:
    """redis-py's keyword arguments for the sentinels and for the primary's connections.

    One definition for the sync and the async client: the same timeouts as ``connect``,
    TLS on both when the URL says so, the credentials for the servers only.
    """
    tls = {"ssl": True} if address.tls else {}
    asking = {
        "socket_timeout": opts.socket_timeout,
        "socket_connect_timeout": opts.connect_timeout,
        **tls,
    }
    serving = {
        "db": address.db,
        "username": address.username,
        "password": address.password,
        "socket_timeout": opts.socket_timeout,
        "socket_connect_timeout": opts.connect_timeout,
        "max_connections": opts.max_connections,
        "health_check_interval": opts.health_check_interval,
        **tls,
    }
    return asking, serving


def connect_sentinel(url: str, options: RedisOptions | None = None) -> redis.Redis:
    """A client of the primary a ``redis+sentinel://`` URL's service names, via ``Sentinel``.

    redis-py's ``Sentinel.master_for``: each new connection asks the sentinels (in the
    URL's order, the last one that answered first) where the primary is, so after a
    failover the next connection reaches the promoted replica; while the sentinels see
    the primary down and have not promoted one yet, connecting fails at once
    (``MasterNotFoundError``, a ``ConnectionError``). A connection to a demoted primary
    that answers ``READONLY`` is closed and reported as a ``ConnectionError`` whose
    context is the ``ReadOnlyError`` (see ``refused_by_replica``). Connects lazily;
    redis-py's retries are off, as in ``connect``. ``close()`` also closes the
    connections to the sentinels.
    """
    opts = options or RedisOptions()
    address = parse_sentinel_url(url)
    asking, serving = sentinel_settings(address, opts)
    manager = Sentinel(  # type: ignore[no-untyped-call]
        list(address.sentinels), sentinel_kwargs={**asking, "retry": Retry(NoBackoff(), 0)}
    )
    return manager.master_for(  # type: ignore[no-any-return,no-untyped-call]
        address.service, redis_class=SentinelPrimary, retry=Retry(NoBackoff(), 0), **serving
    )


def refused_by_replica(exc: BaseException) -> bool:
    """Whether ``exc`` is a command a demoted primary refused with ``READONLY``.

    Such a command was not applied, so it is safe to send again whatever it is (an
    ``incr`` too), and redis-py has closed the connection: the next one asks the
    sentinels for the new primary. redis-py's Sentinel connection raises
    ``ConnectionError`` from within its handling of the ``ReadOnlyError``.
    """
    return isinstance(exc, rex.ConnectionError) and isinstance(
        exc.__context__, rex.ReadOnlyError
    )


def server_name(client: redis.Redis) -> str:
    """``host:port`` (or the socket's path) of the server a plain client talks to."""
    kwargs = client.connection_pool.connection_kwargs
    return str(kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}")


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
        rex.BusyLoadingError
        | rex.ReadOnlyError
        | rex.ClusterDownError
        | rex.SlotNotCoveredError
        # A cluster moving the key's slot (a failover or a resharding) answers MOVED, ASK
        # or TRYAGAIN to a command sent to one node's own connection: not applied, retry.
        | rex.AskError
        | rex.TryAgainError,
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
