"""RedisCache on a throwaway Redis Cluster: key layout, batches, fill steps, clear()."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.cluster import RedisCluster
from returns.result import Success

from portside.adapters.redis import RedisCache
from portside.adapters.testing import ThrowawayCluster
from portside.domain import FillClaim, InvalidRequest

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(name="cluster", scope="module")
def _cluster(redis_cluster: ThrowawayCluster) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url.replace("+cluster", ""))
    yield client
    client.close()


def _fresh(cluster: RedisCluster) -> RedisCache:
    return RedisCache(cluster, namespace=f"test-{uuid.uuid4().hex[:12]}")


def _keys_per_primary(cluster: RedisCluster, pattern: str) -> list[int]:
    """How many keys matching ``pattern`` each primary holds (SCAN on that node only)."""
    return [
        len(list(cluster.scan_iter(match=pattern, count=1000, target_nodes=node)))
        for node in cluster.get_primaries()
    ]


def test_from_url_reads_a_cluster_url(redis_cluster: ThrowawayCluster) -> None:
    """A redis+cluster:// URL gives a cache on a RedisCluster client that reads and writes."""
    cache = RedisCache.from_url(redis_cluster.url, namespace=f"t-{uuid.uuid4().hex[:8]}")
    try:
        assert isinstance(cache.client, RedisCluster)
        assert cache.set("k", b"v") == Success(None)
        assert cache.get("k") == Success(b"v")
        assert cache.clear() == Success(None)
    finally:
        cache.close()


def test_batches_spread_over_every_primary_and_come_back_in_order(cluster: RedisCluster) -> None:
    """set_many/get_many of 300 keys land on all three primaries and read back exactly."""
    cache = _fresh(cluster)
    items = {f"key-{i}": str(i).encode() for i in range(300)}
    assert cache.set_many(items, ttl=60) == Success(None)
    per_node = _keys_per_primary(cluster, cache.namespace + "|*")
    assert len(per_node) == 3
    assert all(count > 0 for count in per_node), per_node
    wanted = [*items, "absent-1", "absent-2"]
    assert cache.get_many(wanted) == Success(items)
    assert cache.clear() == Success(None)


def test_clear_empties_the_namespace_on_every_primary_and_nothing_else(
    cluster: RedisCluster,
) -> None:
    """clear() removes this namespace's keys from all primaries; another namespace keeps all."""
    mine, other = _fresh(cluster), _fresh(cluster)
    assert mine.set_many({f"k{i}": b"x" for i in range(200)}) == Success(None)
    assert other.set_many({f"k{i}": b"y" for i in range(200)}) == Success(None)
    cluster.set("bare-key-" + mine.namespace, b"outside any namespace")
    assert all(count > 0 for count in _keys_per_primary(cluster, mine.namespace + "|*"))
    assert mine.clear() == Success(None)
    assert _keys_per_primary(cluster, mine.namespace + "|*") == [0, 0, 0]
    assert sum(_keys_per_primary(cluster, other.namespace + "|*")) == 200
    assert cluster.get("bare-key-" + mine.namespace) == b"outside any namespace"
    assert other.clear() == Success(None)
    cluster.delete("bare-key-" + mine.namespace)


def test_a_key_and_its_fill_lock_share_a_slot(cluster: RedisCluster) -> None:
    """The stored names of a key and of '<key>:fill' hash to one slot; other keys spread."""
    cache = _fresh(cluster)
    for key in ("prompt:abc", "a}b{c", "}", "x:fill"):
        assert cluster.keyslot(cache._name(key)) == cluster.keyslot(cache._name(key + ":fill"))
    slots = {cluster.keyslot(cache._name(f"k{i}")) for i in range(50)}
    assert len(slots) > 40


def test_fill_steps_take_the_lock_fill_and_release_on_the_cluster(cluster: RedisCluster) -> None:
    """get_or_lock locks once, a second caller sees it held, set_and_unlock stores and frees."""
    cache = _fresh(cluster)
    key, lock = "answer:42", "answer:42:fill"
    assert cache.get_or_lock(key, lock, b"me", 5) == Success(FillClaim(locked=True))
    assert cache.get_or_lock(key, lock, b"other", 5) == Success(FillClaim())
    assert cache.set_and_unlock(key, b"value", 60, lock, b"other") == Success(False)
    assert cache.get(lock) == Success(b"me")
    assert cache.set_and_unlock(key, b"value", 60, lock, b"me") == Success(True)
    assert cache.get(lock) == Success(None)
    assert cache.get_or_lock(key, lock, b"late", 5) == Success(FillClaim(value=b"value"))
    assert cache.clear() == Success(None)


def test_a_lock_in_another_slot_is_refused_and_nothing_is_written(cluster: RedisCluster) -> None:
    """A fill lock that is not the key's own is InvalidRequest naming the lock; no key is set."""
    cache = _fresh(cluster)
    refused = cache.get_or_lock("k1", "some-other-lock", b"t", 5)
    assert isinstance(refused.failure(), InvalidRequest)
    assert "lock" in refused.failure().message
    stored = cache.set_and_unlock("k1", b"v", None, "some-other-lock", b"t")
    assert isinstance(stored.failure(), InvalidRequest)
    assert _keys_per_primary(cluster, cache.namespace + "|*") == [0, 0, 0]


def test_counters_ttls_and_conditional_writes_work_on_the_cluster(cluster: RedisCluster) -> None:
    """incr, ttl, add and delete_if_equal behave on a cluster as on one server."""
    cache = _fresh(cluster)
    assert cache.incr("n", 5) == Success(5)
    assert cache.add("n", b"9") == Success(False)
    assert cache.set("t", b"v", ttl=30) == Success(None)
    remaining = cache.ttl("t").unwrap()
    assert remaining is not None
    assert 29 < remaining <= 30
    assert cache.delete_if_equal("t", b"other") == Success(False)
    assert cache.delete_if_equal("t", b"v") == Success(True)
    assert cache.clear() == Success(None)


@settings(max_examples=200)
@given(
    first=st.text(alphabet="ab{}:fil", min_size=1, max_size=12),
    second=st.text(alphabet="ab{}:fil", min_size=1, max_size=12),
)
def test_distinct_keys_get_distinct_cluster_names(
    cluster: RedisCluster, first: str, second: str
) -> None:
    """Hash-tagging never maps two different keys, braces and ':fill' included, to one name."""
    cache = RedisCache(cluster, namespace="names")
    assert (cache._name(first) == cache._name(second)) == (first == second)
