"""MemoryCache: expiry on the manual clock, namespaces, counters, bounded memory."""

from __future__ import annotations

import pytest
from returns.result import Failure, Success

from portside.adapters.memory import ManualClock, MemoryCache, MemoryStore
from portside.domain import InvalidRequest, NotFound
from portside.ports import CachePort, CompareAndDelete


@pytest.fixture(name="cache")
def _cache(manual_clock: ManualClock) -> MemoryCache:
    return MemoryCache("unit", clock=manual_clock)


def test_an_expired_key_reads_as_a_miss(cache: MemoryCache, manual_clock: ManualClock) -> None:
    """A key is there until its TTL ends and absent from that instant on."""
    cache.set("k", b"v", ttl=10)
    manual_clock.advance(9.999)
    assert cache.get("k") == Success(b"v")
    manual_clock.advance(0.001)
    assert cache.get("k") == Success(None)
    assert cache.get_many(["k"]) == Success({})
    assert isinstance(cache.ttl("k").failure(), NotFound)
    assert cache.delete("k") == Success(False)


def test_add_treats_an_expired_key_as_absent(cache: MemoryCache, manual_clock: ManualClock) -> None:
    """An add writes over an expired key and refuses a live one."""
    assert cache.add("k", b"1", ttl=1) == Success(True)
    assert cache.add("k", b"2") == Success(False)
    manual_clock.advance(1)
    assert cache.add("k", b"3") == Success(True)
    assert cache.get("k") == Success(b"3")


def test_set_without_ttl_removes_the_expiry(cache: MemoryCache, manual_clock: ManualClock) -> None:
    """A set replaces the value and the expiry, as Redis SET does."""
    cache.set("k", b"1", ttl=5)
    cache.set("k", b"2")
    manual_clock.advance(100)
    assert cache.ttl("k") == Success(None)
    assert cache.get("k") == Success(b"2")


def test_incr_keeps_the_ttl_and_counts_from_zero(
    cache: MemoryCache, manual_clock: ManualClock
) -> None:
    """An incr starts an absent key at 0 and leaves an existing expiry in place."""
    assert cache.incr("n", 5) == Success(5)
    cache.set("t", b"10", ttl=4)
    manual_clock.advance(1)
    assert cache.incr("t", -3) == Success(7)
    assert cache.ttl("t") == Success(3.0)
    assert cache.get("t") == Success(b"7")
    manual_clock.advance(3)
    assert cache.incr("t") == Success(1)


def test_incr_refuses_text_and_overflow_and_changes_nothing(cache: MemoryCache) -> None:
    """A non-integer value or a 64-bit overflow is InvalidRequest; the value stays."""
    cache.set("word", b"abc")
    cache.set("big", b"9223372036854775807")
    for key in ("word", "big"):
        assert isinstance(cache.incr(key).failure(), InvalidRequest)
    assert cache.get_many(["word", "big"]) == Success(
        {"word": b"abc", "big": b"9223372036854775807"}
    )


def test_bad_input_writes_nothing(cache: MemoryCache) -> None:
    """A batch with one bad item or a bad TTL leaves the cache untouched."""
    bad_batch = cache.set_many({"a": b"1", "": b"2"})
    bad_ttl = cache.set_many({"a": b"1"}, ttl=0)
    bad_value = cache.set("a", "text")  # type: ignore[arg-type]
    for result in (bad_batch, bad_ttl, bad_value):
        assert isinstance(result.failure(), InvalidRequest)
    assert cache.get("a") == Success(None)
    assert len(cache) == 0


def test_namespaces_in_one_store_are_isolated(manual_clock: ManualClock) -> None:
    """Two namespaces of one store never see each other's keys; clear() is per namespace."""
    store = MemoryStore()
    a = MemoryCache("a", clock=manual_clock, store=store)
    b = MemoryCache("b", clock=manual_clock, store=store)
    a.set("k", b"from a")
    assert b.get("k") == Success(None)
    b.set("k", b"from b")
    a.clear()
    assert (a.get("k"), b.get("k")) == (Success(None), Success(b"from b"))


def test_delete_if_equal_removes_only_the_expected_value(cache: MemoryCache) -> None:
    """Compare-and-delete leaves a key holding another value alone."""
    cache.set("lock", b"mine")
    assert cache.delete_if_equal("lock", b"theirs") == Success(False)
    assert cache.delete_if_equal("lock", b"mine") == Success(True)
    assert cache.get("lock") == Success(None)


def test_expired_keys_do_not_pile_up(cache: MemoryCache, manual_clock: ManualClock) -> None:
    """Keys written once and never read are swept once they expire."""
    for i in range(5000):
        cache.set(f"k{i}", b"x", ttl=1)
    manual_clock.advance(2)
    for i in range(5000):
        cache.set(f"fresh{i}", b"x")
    assert len(cache._data) < 6000  # the sweep dropped the expired ones


def test_memory_cache_is_both_ports(cache: MemoryCache) -> None:
    """The fake is a CachePort with the compare-and-delete capability."""
    port: CachePort = cache
    assert isinstance(port, CompareAndDelete)
    assert port.namespace == "unit"
    assert isinstance(MemoryCache("x").clear(), Success)
    assert not isinstance(cache.get("ok"), Failure)
