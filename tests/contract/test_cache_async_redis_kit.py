"""AsyncRedisCache: the cache kit via the bridge (a server, a cluster) and against RedisCache."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from returns.result import Failure, Result

from portside.adapters.redis import AsyncRedisCache, RedisCache, connect, connect_async
from portside.adapters.testing import (
    CacheTarget,
    EventLoopThread,
    ThrowawayCluster,
    run_cache_contract,
)
from portside.domain import ServiceError
from portside.ports import CachePort

pytestmark = pytest.mark.services


@pytest.fixture(name="runner", scope="module")
def _runner() -> Iterator[EventLoopThread]:
    runner = EventLoopThread()
    yield runner
    runner.close()


@pytest.fixture(name="clients")
def _clients(
    redis_url: str, runner: EventLoopThread
) -> Iterator[tuple[redis.Redis, aioredis.Redis]]:
    sync = connect(redis_url)
    # Built and used on the runner's loop only: a redis.asyncio pool belongs to one loop.
    aio = connect_async(redis_url)
    yield sync, aio
    runner.run(aio.aclose())
    sync.close()


def test_async_redis_cache_passes_the_kit(
    clients: tuple[redis.Redis, aioredis.Redis], runner: EventLoopThread
) -> None:
    """AsyncRedisCache on the shared server agrees with the model, real TTLs included."""
    sync, aio = clients
    target = CacheTarget(lambda ns: runner.blocking(AsyncRedisCache(aio, namespace=ns)))
    run_cache_contract(target, max_examples=10, steps=25)
    assert list(sync.scan_iter(match="kit-*", count=1000)) == [], "the kit left keys behind"


keys = st.sampled_from(["a", "b", "c:1", "ключ", "", "bad\nkey"])
values = st.sampled_from([b"", b"1", b"41", b"x", b"\x00\xff", "text"])
ttls = st.none() | st.sampled_from([30.0, 60.0, 0.0, -1.0, float("nan")])
ops = st.one_of(
    st.tuples(st.just("get"), keys),
    st.tuples(st.just("get_many"), st.lists(keys, max_size=4)),
    st.tuples(st.just("set"), keys, values, ttls),
    st.tuples(st.just("set_many"), st.dictionaries(keys, values, max_size=3), ttls),
    st.tuples(st.just("add"), keys, values, ttls),
    st.tuples(st.just("delete"), keys),
    st.tuples(st.just("incr"), keys, st.sampled_from([1, -3, 2**63, 2**62])),
    st.tuples(st.just("ttl"), keys),
    st.tuples(st.just("clear")),
    st.tuples(st.just("delete_if_equal"), keys, values),
    st.tuples(st.just("get_or_lock"), keys, st.sampled_from(["a:fill", "b"]), values, ttls),
    st.tuples(st.just("set_and_unlock"), keys, values, ttls, st.just("a:fill"), values),
)


def _outcome(result: Result[Any, ServiceError]) -> tuple[str, Any]:
    if isinstance(result, Failure):
        return ("error", type(result.failure()).__name__)
    value = result.unwrap()
    # A TTL read moments apart differs by milliseconds: compare it to the second.
    return ("ok", round(value) if isinstance(value, float) else value)


@settings(max_examples=40, deadline=None)
@given(script=st.lists(ops, max_size=12))
def test_async_redis_cache_answers_like_redis_cache(
    script: list[tuple[Any, ...]], redis_url: str, runner: EventLoopThread
) -> None:
    """Each operation gives the same answer on AsyncRedisCache and RedisCache (same server)."""
    run = uuid.uuid4().hex[:10]
    sync_client = connect(redis_url)
    aio_client = connect_async(redis_url)
    twin = RedisCache(sync_client, namespace=f"diff-{run}-s")
    cache: CachePort = runner.blocking(AsyncRedisCache(aio_client, namespace=f"diff-{run}-a"))
    try:
        for name, *args in script:
            got = getattr(cache, name)(*args)
            want = getattr(twin, name)(*args)
            assert _outcome(got) == _outcome(want), f"{name}{tuple(args)}"
    finally:
        cache.clear()
        twin.clear()
        runner.run(aio_client.aclose())
        sync_client.close()


def test_both_adapters_share_one_key_layout(
    clients: tuple[redis.Redis, aioredis.Redis], runner: EventLoopThread
) -> None:
    """What AsyncRedisCache writes, RedisCache of the same namespace reads (``ns|key``)."""
    sync, aio = clients
    namespace = f"layout-{uuid.uuid4().hex[:10]}"
    cache = runner.blocking(AsyncRedisCache(aio, namespace=namespace))
    twin = RedisCache(sync, namespace=namespace)
    try:
        assert cache.set("k", b"v", ttl=30).unwrap() is None
        assert sync.get(f"{namespace}|k") == b"v"
        assert twin.get("k").unwrap() == b"v"
        twin.set_many({"x": b"1", "y": b"2"})
        assert cache.get_many(["x", "y", "k"]).unwrap() == {"x": b"1", "y": b"2", "k": b"v"}
        assert cache.incr("x", 4).unwrap() == twin.incr("x", 0).unwrap() == 5
    finally:
        twin.clear()


@pytest.fixture(name="cluster_clients")
def _cluster_clients(
    redis_cluster: ThrowawayCluster, runner: EventLoopThread
) -> Iterator[tuple[RedisCluster, AsyncRedisCluster]]:
    sync = RedisCluster.from_url(redis_cluster.url.replace("+cluster", ""))
    aio = runner.run(_async_cluster(redis_cluster.url))
    yield sync, aio
    runner.run(aio.aclose())
    sync.close()


async def _async_cluster(url: str) -> AsyncRedisCluster:
    """An async cluster client built on the runner's loop (its locks belong to that loop)."""
    return AsyncRedisCache.from_url(url).client  # type: ignore[return-value]


@pytest.mark.slow
def test_async_redis_cache_passes_the_kit_on_a_cluster(
    cluster_clients: tuple[RedisCluster, AsyncRedisCluster], runner: EventLoopThread
) -> None:
    """AsyncRedisCache on a redis.asyncio RedisCluster agrees with the model, as on one server."""
    sync, aio = cluster_clients
    target = CacheTarget(
        lambda ns: runner.blocking(AsyncRedisCache(aio, namespace=ns)), paired_locks=True
    )
    run_cache_contract(target, max_examples=10, steps=25)
    assert list(sync.scan_iter(match="kit-*", count=1000)) == [], "the kit left keys behind"


@pytest.mark.slow
def test_both_adapters_share_one_cluster_layout(
    cluster_clients: tuple[RedisCluster, AsyncRedisCluster], runner: EventLoopThread
) -> None:
    """On a cluster, batches of either adapter spread over every primary and read back alike."""
    sync, aio = cluster_clients
    namespace = f"layout-{uuid.uuid4().hex[:10]}"
    cache = runner.blocking(AsyncRedisCache(aio, namespace=namespace))
    twin = RedisCache(sync, namespace=namespace)
    items = {f"key-{i}": str(i).encode() for i in range(300)}
    try:
        assert cache.set_many(items, ttl=60).unwrap() is None
        assert sync.get(f"{namespace}|{{=key-7}}key-7") == b"7"
        per_node = [
            len(list(sync.scan_iter(match=f"{namespace}|*", count=1000, target_nodes=node)))
            for node in sync.get_primaries()  # type: ignore[no-untyped-call]
        ]
        assert len(per_node) == 3
        assert all(count > 0 for count in per_node), per_node
        assert twin.get_many([*items, "absent"]).unwrap() == items
        twin.set_many({"x": b"1", "y": b"2"})
        assert cache.get_many(["x", "y", "absent"]).unwrap() == {"x": b"1", "y": b"2"}
        assert cache.get_or_lock("x", "y", b"t", 5).failure().message.startswith("lock:")
        assert cache.clear().unwrap() is None
        assert list(sync.scan_iter(match=f"{namespace}|*", count=1000)) == []
    finally:
        twin.clear()
