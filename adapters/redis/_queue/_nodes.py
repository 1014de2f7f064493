"""Where a queue command runs: the one server, or the cluster node that holds a key.

The queue sends almost everything through its client, ``redis.Redis`` or redis-py's
``RedisCluster``: the key layout puts every key of a topic in one slot, so the cluster
client routes each script call (its keys are all in ``KEYS``) to one node by itself. A
few steps need one node's own connection: a blocking read and a durable publish's
confirmation (``WAIT`` / ``WAITAOF`` count the writes of the connection that asks), and
the start-up checks, which read every primary. Those get it here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis
from redis.cluster import RedisCluster

from portside.adapters.redis._client import server_name

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = [
    "QueueClient",
    "encoder_of",
    "follow_moved",
    "node_for",
    "primaries",
    "socket_timeout",
]

#: The clients a ``RedisQueue`` runs on.
QueueClient = redis.Redis | RedisCluster


def node_for(client: QueueClient, key: bytes) -> redis.Redis:
    """The client of the server holding ``key``: ``client`` itself off a cluster.

    On a cluster, the primary of the key's slot in the client's current slot map
    (``SlotNotCoveredError`` when no node serves it).
    """
    if isinstance(client, RedisCluster):
        node: Any = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        return client.get_redis_connection(node)
    return client


def follow_moved(client: QueueClient, exc: BaseException) -> None:
    """Note a slot's new primary after a step sent to one node was answered ``MOVED``.

    redis-py updates its slot map itself for the commands it routes; the steps sent to
    a node's own connection (``node_for``) would otherwise go to the old node until a
    routed command happened to refresh the map. ``ASK`` is a one-off redirection during
    a resharding and changes nothing.
    """
    if isinstance(client, RedisCluster) and isinstance(exc, redis.exceptions.MovedError):
        client.nodes_manager.move_slot(exc)


def primaries(client: QueueClient) -> list[tuple[str, redis.Redis]]:
    """Every primary as ``(host:port, its client)``; one server is its own only primary."""
    if isinstance(client, RedisCluster):
        nodes: list[Any] = client.get_primaries()  # type: ignore[no-untyped-call]
        found = [(str(node.name), client.get_redis_connection(node)) for node in nodes]
        return sorted(found, key=lambda pair: pair[0])
    return [(server_name(client), client)]


def socket_timeout(client: QueueClient | aioredis.Redis) -> float | None:
    """The client's socket timeout in seconds, ``None`` when it has none."""
    if isinstance(client, RedisCluster):
        kwargs: dict[str, Any] = client.get_connection_kwargs()  # type: ignore[no-untyped-call]
    else:
        kwargs = client.connection_pool.connection_kwargs
    timeout = kwargs.get("socket_timeout")
    return float(timeout) if timeout else None


def encoder_of(client: QueueClient | aioredis.Redis) -> Any:
    """The client's own encoder, so pre-encoded bytes are what redis-py would send."""
    return client.get_encoder()
