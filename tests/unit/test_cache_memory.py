"""MemoryCache: expiry on the manual clock, namespaces, counters, bounded memory."""

from __future__ import annotations

import pytest
from returns.result import Failure, Success

from portside.adapters.memory import ManualClock, MemoryCache, MemoryStore
from portside.domain import FillClaim, InvalidRequest, NotFound
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


def test_get_or_lock_finds_the_value_or_takes_a_free_lock(
    cache: MemoryCache, manual_clock: ManualClock
) -> None:
    """A present key is found, a free lock is taken, a held one is reported held."""
    assert cache.get_or_lock("k", "k:fill", b"a", 5) == Success(FillClaim(locked=True))
    assert cache.get_or_lock("k", "k:fill", b"b", 5) == Success(FillClaim())
    manual_clock.advance(5)  # the first lock expired: free again
    assert cache.get_or_lock("k", "k:fill", b"b", 5) == Success(FillClaim(locked=True))
    cache.set("k", b"v")
    assert cache.get_or_lock("k", "k:fill", b"c", 5) == Success(FillClaim(value=b"v"))


def test_set_and_unlock_releases_only_its_own_lock(cache: MemoryCache) -> None:
    """The value is stored either way; the lock goes only when the token still holds it."""
    assert cache.get_or_lock("k", "k:fill", b"mine", 5).unwrap().locked
    assert cache.set_and_unlock("k", b"v", None, "k:fill", b"other") == Success(False)
    assert cache.get("k:fill") == Success(b"mine")
    assert cache.set_and_unlock("k", b"w", 10, "k:fill", b"mine") == Success(True)
    assert cache.get("k:fill") == Success(None)
    assert cache.get("k") == Success(b"w")


def test_bad_input_to_the_fill_steps_writes_nothing(cache: MemoryCache) -> None:
    """A bad key, token or TTL is InvalidRequest and neither the key nor the lock is written."""
    for bad in (
        lambda: cache.get_or_lock("", "k:fill", b"t", 5),
        lambda: cache.get_or_lock("k", "k:fill", "t", 5),  # type: ignore[arg-type]
        lambda: cache.get_or_lock("k", "k:fill", b"t", 0),
        lambda: cache.set_and_unlock("k", b"v", -1, "k:fill", b"t"),
        lambda: cache.set_and_unlock("k", b"v", None, "bad\nlock", b"t"),
    ):
        assert isinstance(bad().failure(), InvalidRequest)
    assert cache.get_many(["k", "k:fill"]) == Success({})


def test_writes_drop_expired_keys_that_are_never_read(
    cache: MemoryCache, manual_clock: ManualClock
) -> None:
    """Keys written once and never read again are gone from memory soon after they expire."""
    for n in range(10_000):
        cache.set(f"k{n}", b"v", ttl=1)
    manual_clock.advance(2)
    cache.set("fresh", b"v")
    assert len(cache._data) == 1
    assert cache._deadlines == []


def test_rewriting_one_key_keeps_the_deadline_heap_bounded(
    cache: MemoryCache, manual_clock: ManualClock
) -> None:
    """A key rewritten with long TTLs leaves stale heap items that are dropped, not hoarded."""
    for n in range(20_000):
        cache.set("hot", str(n).encode(), ttl=3600)
    assert len(cache._deadlines) <= 2 * len(cache._data) + 1024
    manual_clock.advance(3599)
    assert cache.get("hot") == Success(b"19999")


def test_a_rewritten_key_keeps_its_new_deadline(
    cache: MemoryCache, manual_clock: ManualClock
) -> None:
    """An old deadline of a rewritten key never removes the new value."""
    cache.set("k", b"old", ttl=1)
    cache.set("k", b"new", ttl=10)
    manual_clock.advance(2)
    cache.set("other", b"v")  # reaps the old deadline of k
    assert cache.get("k") == Success(b"new")
    cache.delete("k")
    cache.set("k", b"forever")
    manual_clock.advance(20)
    cache.set("other", b"v")
    assert cache.get("k") == Success(b"forever")


def test_a_refreshed_ttl_moves_the_deadline_instead_of_adding_one(
    cache: MemoryCache, manual_clock: ManualClock
) -> None:
    """A key whose TTL is refreshed keeps one heap item and expires at its newest deadline."""
    cache.set("k", b"v", ttl=1)
    for _ in range(100):
        cache.set("k", b"v", ttl=10)
    assert len(cache._deadlines) == 1
    manual_clock.advance(2)
    cache.set("other", b"v")  # the old deadline comes up and moves to the new one
    assert cache.get("k") == Success(b"v")
    manual_clock.advance(9)
    cache.set("other", b"v")  # reaps k at its new deadline, unread
    assert "k" not in cache._data
