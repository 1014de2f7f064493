"""What a Redis deployment looks like from a client: one server or a cluster.

``redis_topology(client)`` asks the server (``INFO replication``) or the cluster
(``CLUSTER NODES``, read fresh rather than from the client's cached slot map) and
answers a ``RedisTopology``: its primaries and replicas and, on a cluster, how many of
the 16384 hash slots a primary serves. ``portside check`` shows it beside the cache and
the queue. Each kind of deployment is read by its own function in ``_READERS``; a
Sentinel-managed client (``redis+sentinel://``) is read from its sentinels: the primary
they name, the replicas they see alive, and how many of them answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

import attrs
import redis
from redis.cluster import RedisCluster
from returns.result import Failure, Result, Success

from portside.adapters.redis._client import REDIS_ERRORS, SentinelPrimary, map_error, server_name
from portside.domain._errors import ServiceError

__all__ = ["CLUSTER_SLOTS", "RedisTopology", "redis_topology"]

#: The hash slots of a Redis Cluster.
CLUSTER_SLOTS: Final = 16384


@attrs.frozen
class RedisTopology:
    """The servers behind a Redis client, as ``host:port`` names, sorted.

    ``slots_covered`` counts the hash slots some reachable primary serves (a cluster
    only; ``None`` for one server). A cluster with fewer than ``CLUSTER_SLOTS`` refuses
    the keys of the others (or every key, with ``cluster-require-full-coverage yes``).
    """

    kind: Literal["server", "cluster", "sentinel"]
    primaries: tuple[str, ...]
    replicas: tuple[str, ...]
    slots_covered: int | None = None
    #: Sentinel only: the monitored service, and how many of its sentinels answered
    #: out of how many the URL names.
    service: str | None = None
    sentinels: tuple[int, int] | None = None

    @property
    def complete(self) -> bool:
        """Whether every key has a primary to serve it (always, for one server)."""
        return self.slots_covered is None or self.slots_covered == CLUSTER_SLOTS

    @property
    def summary(self) -> str:
        """One line: ``cluster: 3 primaries, 3 replicas, 16384/16384 slots``."""
        primaries, replicas = len(self.primaries), len(self.replicas)
        text = (
            f"{self.kind}: {primaries} {'primary' if primaries == 1 else 'primaries'}, "
            f"{replicas} {'replica' if replicas == 1 else 'replicas'}"
        )
        if self.slots_covered is not None:
            text += f", {self.slots_covered}/{CLUSTER_SLOTS} slots"
        if self.sentinels is not None:
            text += f", {self.sentinels[0]}/{self.sentinels[1]} sentinels answering"
        if self.service is not None:
            text = text.replace("sentinel:", f"sentinel {self.service}:", 1)
        return text


def redis_topology(client: redis.Redis | RedisCluster) -> Result[RedisTopology, ServiceError]:
    """The topology behind ``client``; ``Unavailable`` / ``TimedOut`` when it cannot be read."""
    read = next(reader for kind, reader in _READERS if isinstance(client, kind))
    try:
        return Success(read(client))
    except REDIS_ERRORS as exc:
        return Failure(map_error(exc, service="redis", operation="topology"))


def _cluster(client: Any) -> RedisTopology:
    nodes: dict[str, dict[str, Any]] = client.cluster_nodes()
    primaries, replicas, covered = [], [], 0
    for name, node in nodes.items():
        flags = set(str(node.get("flags", "")).split(","))
        if "fail" in flags or "noaddr" in flags or not node.get("connected", True):
            continue  # a node the cluster has lost serves nothing
        if "master" in flags:
            primaries.append(name)
            for span in node.get("slots", []):
                covered += int(span[-1]) - int(span[0]) + 1
        elif "slave" in flags:
            replicas.append(name)
    return RedisTopology("cluster", tuple(sorted(primaries)), tuple(sorted(replicas)), covered)


def _server(client: Any) -> RedisTopology:
    info: dict[str, Any] = client.info("replication")
    me = server_name(client)
    replicas = sorted(
        f"{value.get('ip')}:{value.get('port')}"
        for key, value in info.items()
        if str(key).startswith("slave") and isinstance(value, dict)
    )
    if info.get("role") == "slave":
        # Connected to a replica: its primary is the one that takes writes.
        primary = f"{info.get('master_host')}:{info.get('master_port')}"
        return RedisTopology("server", (primary,), tuple(sorted({me, *replicas})))
    return RedisTopology("server", (me,), tuple(replicas))


def _sentinel(client: Any) -> RedisTopology:
    """What the sentinels say: the primary, the replicas not down, who answered.

    Asking for the primary raises ``MasterNotFoundError`` (a ``ConnectionError``: the
    check reports it) while no sentinel names one, during a failover for instance.
    """
    pool = client.connection_pool
    manager = pool.sentinel_manager
    host, port = pool.get_master_address()
    replicas = manager.discover_slaves(pool.service_name)
    answering = 0
    for sentinel in manager.sentinels:
        try:
            answering += bool(sentinel.ping())
        except REDIS_ERRORS:
            continue  # a sentinel down is what the count reports
    return RedisTopology(
        "sentinel",
        (f"{host}:{port}",),
        tuple(sorted(f"{ip}:{replica}" for ip, replica in replicas)),
        service=pool.service_name,
        sentinels=(answering, len(manager.sentinels)),
    )


#: How each kind of client is read, most specific first.
_READERS: Final[tuple[tuple[type, Callable[[Any], RedisTopology]], ...]] = (
    (RedisCluster, _cluster),
    (SentinelPrimary, _sentinel),
    (redis.Redis, _server),
)
