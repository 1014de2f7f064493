"""get_or_set: one factory call per process per miss; an owner-released lock across processes."""

from __future__ import annotations

import threading
import time

import attrs
import pytest
from returns.result import Success

from portside.adapters.cache_tools import LockPolicy, get_or_set, lock_key
from portside.adapters.memory import ManualClock, MemoryCache, MemoryStore
from portside.domain import InvalidRequest

THREADS = 8


@pytest.fixture(name="store")
def _store() -> MemoryStore:
    return MemoryStore()


def _process(store: MemoryStore, clock: ManualClock) -> MemoryCache:
    """A cache object as another process would have it: same data, its own object."""
    return MemoryCache("gos", clock=clock, store=store)


def test_a_miss_calls_the_factory_and_stores_with_the_ttl(
    store: MemoryStore, manual_clock: ManualClock
) -> None:
    """The first call computes and stores; the next is a hit; the lock is released."""
    cache = _process(store, manual_clock)
    calls: list[int] = []

    def factory() -> bytes:
        calls.append(1)
        return b"value"

    assert get_or_set(cache, "k", factory, ttl=30) == Success(b"value")
    assert get_or_set(cache, "k", factory, ttl=30) == Success(b"value")
    assert calls == [1]
    assert cache.ttl("k") == Success(30.0)
    assert cache.get(lock_key("k")) == Success(None)


def test_many_threads_missing_one_key_call_the_factory_once(manual_clock: ManualClock) -> None:
    """N threads that miss together share one factory call and its value."""
    cache = MemoryCache("gos", clock=manual_clock)
    gate = threading.Barrier(THREADS)
    calls: list[int] = []
    results: list[object] = []

    def factory() -> bytes:
        calls.append(1)
        time.sleep(0.02)  # a slow computation, so the others arrive while it runs
        return b"computed"

    def worker() -> None:
        gate.wait()
        results.append(get_or_set(cache, "hot", factory, ttl=60))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls == [1]
    assert results == [Success(b"computed")] * THREADS


@attrs.define
class _OtherProcessStoresOnSleep(ManualClock):
    """A manual clock during whose first wait another process stores the value."""

    other: MemoryCache | None = None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.other is not None:
            self.other.set("k", b"from the other process")
            self.other = None


def test_a_locked_key_waits_for_the_other_process(store: MemoryStore) -> None:
    """While another process holds the lock, we wait for its value instead of computing."""
    clock = _OtherProcessStoresOnSleep()
    other = _process(store, clock)
    assert other.add(lock_key("k"), b"their-token", ttl=10) == Success(True)
    clock.other = other
    ours = _process(store, clock)
    got = get_or_set(ours, "k", lambda: pytest.fail("factory must not run"), clock=clock)
    assert got == Success(b"from the other process")
    assert other.get(lock_key("k")) == Success(b"their-token")  # not ours to release


def test_a_lock_that_never_delivers_is_waited_for_only_so_long(
    store: MemoryStore, manual_clock: ManualClock
) -> None:
    """After lock.wait seconds without a value we compute it ourselves."""
    other = _process(store, manual_clock)
    other.add(lock_key("k"), b"their-token", ttl=100)
    ours = _process(store, manual_clock)
    policy = LockPolicy(ttl=5, wait=2, poll=0.5)
    got = get_or_set(ours, "k", lambda: b"ours", lock=policy, clock=manual_clock)
    assert got == Success(b"ours")
    assert manual_clock.monotonic() == pytest.approx(2.0)
    assert other.get(lock_key("k")) == Success(b"their-token")


def test_a_lock_taken_over_after_expiry_is_not_released_by_the_old_owner(
    store: MemoryStore, manual_clock: ManualClock
) -> None:
    """Our lock expired mid-factory and another took it: our release leaves theirs."""
    ours = _process(store, manual_clock)
    other = _process(store, manual_clock)

    def slow_factory() -> bytes:
        manual_clock.advance(11)  # longer than the lock's TTL
        assert other.add(lock_key("k"), b"their-token", ttl=10) == Success(True)
        return b"late value"

    got = get_or_set(ours, "k", slow_factory, lock=LockPolicy(ttl=10), clock=manual_clock)
    assert got == Success(b"late value")
    assert other.get(lock_key("k")) == Success(b"their-token")


def test_a_failing_factory_releases_the_lock(store: MemoryStore, manual_clock: ManualClock) -> None:
    """The factory's exception propagates; the lock is freed for the next attempt."""
    cache = _process(store, manual_clock)

    def broken() -> bytes:
        raise RuntimeError("backend down")

    with pytest.raises(RuntimeError, match="backend down"):
        get_or_set(cache, "k", broken)
    assert cache.get(lock_key("k")) == Success(None)
    assert get_or_set(cache, "k", lambda: b"fine") == Success(b"fine")


def test_bad_input_is_refused(manual_clock: ManualClock) -> None:
    """A bad key, TTL or a factory returning text is InvalidRequest; nothing is stored."""
    cache = MemoryCache("gos", clock=manual_clock)
    assert isinstance(get_or_set(cache, "", lambda: b"x").failure(), InvalidRequest)
    bad_ttl = get_or_set(cache, "k", lambda: b"x", ttl=-1)
    text = get_or_set(cache, "k", lambda: "text")  # type: ignore[arg-type, return-value]
    for result in (bad_ttl, text):
        assert isinstance(result.failure(), InvalidRequest)
    assert len(cache) == 0
