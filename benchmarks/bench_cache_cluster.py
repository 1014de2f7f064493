"""Row ``cluster_get_many``: ``RedisCache.get_many`` on a Redis Cluster vs ``mget_nonatomic``.

Starts its own throwaway cluster (three primaries, three replicas) and reads 1,000 keys
spread over the three primaries. Both sides use one ``RedisCluster`` client each, with
the same settings (``RedisOptions`` defaults, redis-py's retries off, as a
``redis+cluster://`` URL builds), and read the same stored names in the same run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.redis import RedisCache, RedisOptions
from portside.adapters.testing import FaultToolError, throwaway_cluster

NAMES = ("cluster_get_many",)

BATCH = 1_000
VALUE = b"x" * 64


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    try:
        started = throwaway_cluster()
        cluster = started.__enter__()
    except FaultToolError as exc:
        raise SkipBenchmark(f"cluster: cannot start a throwaway Redis Cluster ({exc})") from exc
    try:
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        ours_client, raw = _client(cluster.ports[0]), _client(cluster.ports[0])
        cache = RedisCache(ours_client, namespace=namespace)
        keys = [f"k{i}" for i in range(BATCH)]
        cache.set_many(dict.fromkeys(keys, VALUE)).unwrap()
        # The same stored (hash-tagged) names, so both sides read the same slots.
        # As str, as the adapter holds them (bytes would skip redis-py's encoding step).
        raw_names = [n.decode() for n in raw.scan_iter(match=f"{namespace}|*", count=1000)]
        if len(raw_names) != BATCH:
            raise SkipBenchmark("cluster: the keys written were not all found")
        spread = {raw.keyslot(name) for name in raw_names}  # type: ignore[no-untyped-call]
        if len({raw.nodes_manager.get_node_from_slot(s).name for s in spread}) != 3:
            raise SkipBenchmark("cluster: the keys did not spread over three primaries")
        try:
            yield [
                Case(
                    "cluster_get_many",
                    lambda: cache.get_many(keys),
                    lambda: raw.mget_nonatomic(raw_names),
                    goal=0.85,
                    unit="keys/s",
                    ops=BATCH,
                ),
            ]
        finally:
            cache.clear()
            ours_client.close()
            raw.close()
    finally:
        started.__exit__(None, None, None)


def _client(port: int) -> RedisCluster:
    """A ``RedisCluster`` with the settings a ``redis+cluster://`` URL gives the cache."""
    opts = RedisOptions()
    return RedisCluster(
        host="127.0.0.1",
        port=port,
        socket_timeout=opts.socket_timeout,
        socket_connect_timeout=opts.connect_timeout,
        max_connections=opts.max_connections,
        retry=Retry(NoBackoff(), 0),
    )
