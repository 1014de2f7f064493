"""The Redis adapters through Sentinel: built from a URL, and across a switchover.

A switchover (``SENTINEL FAILOVER``) keeps the old primary alive and demotes it: a
connection the pool still holds to it is answered ``READONLY`` on its next write. That
refusal means nothing was applied, so the adapters send the command once more (their
one retry) on a connection to the primary the sentinels name now; the caller sees no
failure, and a counter counts each increment once.
"""

from __future__ import annotations

import asyncio

import pytest
from returns.result import Success

from portside.adapters.redis import (
    AsyncRedisCache,
    RedisCache,
    RedisQueue,
    connect,
    redis_topology,
)
from portside.adapters.testing import ThrowawaySentinel, throwaway_sentinel

pytestmark = pytest.mark.services


def _sentinel_connections(client: object) -> int:
    """How many connections to the sentinels the client holds open."""
    manager = client.connection_pool.sentinel_manager  # type: ignore[attr-defined]
    pools = [s.connection_pool for s in manager.sentinels]
    return sum(c.is_connected for pool in pools for c in pool._available_connections)


def test_the_adapters_run_on_a_sentinel_url(redis_sentinel: ThrowawaySentinel) -> None:
    """RedisCache and RedisQueue built from a redis+sentinel:// URL serve and close cleanly."""
    cache = RedisCache.from_url(redis_sentinel.url, namespace="sentinel-url")
    queue = RedisQueue.from_url(redis_sentinel.url, namespace="sentinel-url:queue")
    try:
        assert cache.set("k", b"v") == Success(None)
        assert cache.get("k") == Success(b"v")
        published = queue.publish("t", b"m").unwrap()
        [delivery] = queue.receive("t", "g", "c").unwrap()
        assert delivery.message.id == published
        assert queue.ack(delivery) == Success(None)
        assert cache.clear() == Success(None)
        assert _sentinel_connections(cache.client) > 0
    finally:
        cache.close()
        queue.close()
    assert _sentinel_connections(cache.client) == 0, "close() left sentinel connections"


def test_the_async_cache_runs_on_a_sentinel_url(redis_sentinel: ThrowawaySentinel) -> None:
    """AsyncRedisCache built from a redis+sentinel:// URL serves and closes its sentinels."""

    async def scenario() -> int:
        cache = AsyncRedisCache.from_url(redis_sentinel.url, namespace="sentinel-async")
        assert await cache.set("k", b"v") == Success(None)
        assert await cache.get("k") == Success(b"v")
        assert await cache.clear() == Success(None)
        assert _sentinel_connections(cache.client) > 0
        await cache.aclose()
        return _sentinel_connections(cache.client)

    assert asyncio.run(scenario()) == 0


def test_the_topology_is_what_the_sentinels_say(redis_sentinel: ThrowawaySentinel) -> None:
    """redis_topology of a Sentinel client: the primary and replica named, every sentinel up."""
    client = connect(redis_sentinel.url)
    try:
        topology = redis_topology(client).unwrap()
    finally:
        client.close()
    primary = redis_sentinel.primary_port()
    [replica] = [port for port in redis_sentinel.server_ports if port != primary]
    assert topology.primaries == (f"127.0.0.1:{primary}",)
    assert topology.replicas == (f"127.0.0.1:{replica}",)
    assert topology.complete
    assert topology.summary == "sentinel portside: 1 primary, 1 replica, 3/3 sentinels answering"


@pytest.mark.slow
def test_a_dead_sentinel_is_skipped_and_reported() -> None:
    """With the first sentinel of the URL down the others answer; the topology counts 2/3."""
    with throwaway_sentinel() as sentinel:
        sentinel.kill_sentinel(0)
        cache = RedisCache.from_url(sentinel.url, namespace="one-down")
        try:
            assert cache.set("k", b"v") == Success(None)
            assert cache.get("k") == Success(b"v")
            topology = redis_topology(cache.client).unwrap()
        finally:
            cache.close()
    assert topology.sentinels == (2, 3)
    assert topology.summary.endswith("2/3 sentinels answering")


def _demote_behind_the_clients_back(sentinel: ThrowawaySentinel) -> int:
    """Swap the roles of the two servers and point the sentinels at the new primary.

    Unlike a Sentinel failover, nothing closes the clients' connections (a sentinel's
    reconfiguration ends with ``CLIENT KILL``), so a pooled connection to the old
    primary stays open and is answered ``READONLY``. Returns the new primary's port.
    """
    old = sentinel.primary_port()
    assert old is not None
    [new] = [port for port in sentinel.server_ports if port != old]
    assert sentinel.ask(new, "REPLICAOF", "NO", "ONE") == "OK"
    assert sentinel.ask(old, "REPLICAOF", "127.0.0.1", str(new)) == "OK"
    for port in sentinel.sentinel_ports:
        sentinel.ask(port, "SENTINEL", "REMOVE", "portside")
        sentinel.ask(port, "SENTINEL", "MONITOR", "portside", "127.0.0.1", str(new), "2")
    assert sentinel.primary_port() == new
    return new


@pytest.mark.slow
def test_a_write_refused_by_a_demoted_primary_goes_to_the_new_one() -> None:
    """READONLY on a pooled connection is retried once on the new primary, incr included."""
    with throwaway_sentinel() as sentinel:
        cache = RedisCache.from_url(sentinel.url, namespace="switch")
        queue = RedisQueue.from_url(sentinel.url, namespace="switch:queue", durable_publish=True)
        aio_cache = AsyncRedisCache.from_url(sentinel.url, namespace="switch-async")
        loop = asyncio.new_event_loop()
        try:
            assert cache.incr("n") == Success(1)
            assert queue.publish("t", b"before", dedupe_key="d1").map(bool) == Success(True)
            [delivery] = queue.receive("t", "g", "c").unwrap()
            assert loop.run_until_complete(aio_cache.incr("n")) == Success(1)
            new = _demote_behind_the_clients_back(sentinel)
            # Each pool's one connection still points at the demoted primary.
            assert cache.incr("n") == Success(2), "an incr refused by a replica is sent again"
            assert queue.publish("t", b"after", dedupe_key="d2").map(bool) == Success(True)
            assert loop.run_until_complete(aio_cache.incr("n")) == Success(2)
            assert queue.ack(delivery) == Success(None)
            assert queue.publish("t", b"durable").map(bool) == Success(True)
            assert cache.client.connection_pool.master_address[1] == new  # type: ignore[attr-defined]
            direct = connect(sentinel.server_url(new))
            assert direct.get("switch|n") == b"2", "each increment counted once"
            assert queue.stored("t") == Success(2)  # the acked one is gone, two are new
            direct.close()
        finally:
            loop.run_until_complete(aio_cache.aclose())
            loop.close()
            cache.close()
            queue.close()
