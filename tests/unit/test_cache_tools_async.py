"""AsyncTypedCache and async_get_or_set: the sync tools' answers, single-flight across tasks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import attrs
import pytest
from returns.result import Result, Success

from portside.adapters.cache_tools import (
    AsyncTypedCache,
    LockPolicy,
    TypedCache,
    async_get_or_set,
    get_or_set,
    lock_key,
)
from portside.adapters.memory import AsyncMemoryCache, ManualClock, MemoryCache, MemoryStore
from portside.domain import InvalidRequest, SerializationError, ServiceError, Usage

TASKS = 20


@attrs.define
class _Plain:
    """An async cache with only the plain methods: the fill steps are composed."""

    inner: AsyncMemoryCache

    @property
    def namespace(self) -> str:
        """The inner cache's namespace."""
        return self.inner.namespace

    async def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """The inner cache's value, after one turn of the loop (a real await point)."""
        await asyncio.sleep(0)
        return await self.inner.get(key)

    async def set(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Stored in the inner cache."""
        await asyncio.sleep(0)
        return await self.inner.set(key, value, ttl)

    async def add(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[bool, ServiceError]:
        """Added to the inner cache."""
        await asyncio.sleep(0)
        return await self.inner.add(key, value, ttl)

    async def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """Compare-and-delete in the inner cache."""
        await asyncio.sleep(0)
        return await self.inner.delete_if_equal(key, expected)


SHAPES = pytest.mark.parametrize("shape", ["native", "composed"])


def _cache(shape: str, clock: ManualClock) -> tuple[Any, AsyncMemoryCache]:
    """The native fake, or the composed-steps wrapper over one; and the backing fake."""
    backing = AsyncMemoryCache("gos", clock=clock)
    return (backing if shape == "native" else _Plain(backing)), backing


def test_typed_values_round_trip_as_in_the_sync_typed_cache(manual_clock: ManualClock) -> None:
    """Every AsyncTypedCache method answers what TypedCache answers on the same store."""
    store = MemoryStore()
    sync = TypedCache(MemoryCache("typed", clock=manual_clock, store=store), Usage)
    typed = AsyncTypedCache(AsyncMemoryCache("typed", clock=manual_clock, store=store), Usage)

    async def scenario() -> None:
        assert await typed.set("u", Usage(1, 2, 3), ttl=5) == Success(None)
        assert sync.get("u") == Success(Usage(1, 2, 3))
        assert await typed.get("u") == Success(Usage(1, 2, 3))
        assert await typed.get("missing") == Success(None)
        assert await typed.add("u", Usage(9, 9)) == Success(False)
        assert await typed.set_many({"a": Usage(1, 1), "b": Usage(2, 2)}) == Success(None)
        assert await typed.get_many(["a", "b", "c"]) == sync.get_many(["a", "b", "c"])
        assert await typed.delete("u") == Success(True)

    asyncio.run(scenario())


def test_undecodable_is_a_logged_miss_and_unencodable_writes_nothing(
    manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored value of another shape reads as a miss; a value the codec refuses fails."""
    raw = AsyncMemoryCache("typed", clock=manual_clock)
    typed = AsyncTypedCache(raw, Usage)

    async def scenario() -> None:
        await raw.set("u", b"not an envelope")
        with caplog.at_level(logging.WARNING, logger="portside.cache"):
            assert await typed.get("u") == Success(None)
            assert await typed.get_many(["u"]) == Success({})
        assert "does not decode" in caplog.text
        bad = AsyncTypedCache(raw, object)
        refused = await bad.set_many({"a": Usage(1, 1), "b": object()})
        assert isinstance(refused.failure(), SerializationError)
        assert await raw.get("a") == Success(None)
        assert isinstance((await bad.add("c", object())).failure(), SerializationError)

    asyncio.run(scenario())


@SHAPES
def test_many_tasks_missing_one_key_await_the_factory_once(
    shape: str, manual_clock: ManualClock
) -> None:
    """N tasks that miss together share one factory call, native and composed alike."""
    cache, backing = _cache(shape, manual_clock)
    calls = 0

    async def factory() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return b"value"

    async def scenario() -> list[Result[bytes, ServiceError]]:
        return await asyncio.gather(
            *(async_get_or_set(cache, "k", factory, ttl=30) for _ in range(TASKS))
        )

    assert asyncio.run(scenario()) == [Success(b"value")] * TASKS
    assert calls == 1
    assert backing.sync.ttl("k") == Success(30.0)
    assert backing.sync.get(lock_key("k")) == Success(None)


def test_a_locked_key_waits_for_the_other_process(manual_clock: ManualClock) -> None:
    """While another process holds the lock, we poll for its value instead of computing."""
    store = MemoryStore()
    other = MemoryCache("gos", clock=manual_clock, store=store)
    ours = AsyncMemoryCache("gos", clock=manual_clock, store=store)
    assert other.add(lock_key("k"), b"their-token", ttl=10) == Success(True)

    async def their_fill() -> None:
        await asyncio.sleep(0)
        other.set("k", b"from the other process")

    async def never() -> bytes:
        raise AssertionError("the factory must not run")

    async def scenario() -> Result[bytes, ServiceError]:
        filler = asyncio.ensure_future(their_fill())
        got = await async_get_or_set(ours, "k", never, clock=manual_clock)
        await filler
        return got

    assert asyncio.run(scenario()) == Success(b"from the other process")
    assert other.get(lock_key("k")) == Success(b"their-token")  # not ours to release


def test_a_lock_that_never_delivers_is_waited_for_only_so_long(manual_clock: ManualClock) -> None:
    """After lock.wait seconds (on the clock) without a value we compute it ourselves."""
    store = MemoryStore()
    other = MemoryCache("gos", clock=manual_clock, store=store)
    other.add(lock_key("k"), b"their-token", ttl=100)
    ours = AsyncMemoryCache("gos", clock=manual_clock, store=store)
    policy = LockPolicy(ttl=5, wait=2, poll=0.5)

    async def factory() -> bytes:
        return b"ours"

    got = asyncio.run(async_get_or_set(ours, "k", factory, lock=policy, clock=manual_clock))
    assert got == Success(b"ours")
    assert manual_clock.monotonic() == pytest.approx(2.0)
    assert other.get(lock_key("k")) == Success(b"their-token")


@SHAPES
def test_a_failing_factory_releases_the_lock(shape: str, manual_clock: ManualClock) -> None:
    """The factory's exception reaches the caller and the lock is freed."""
    cache, backing = _cache(shape, manual_clock)

    async def broken() -> bytes:
        raise RuntimeError("backend down")

    async def fine() -> bytes:
        return b"fine"

    with pytest.raises(RuntimeError, match="backend down"):
        asyncio.run(async_get_or_set(cache, "k", broken))
    assert backing.sync.get(lock_key("k")) == Success(None)
    assert asyncio.run(async_get_or_set(cache, "k", fine)) == Success(b"fine")


@SHAPES
def test_a_cancelled_filler_releases_its_lock_and_a_waiting_task_fills(
    shape: str, manual_clock: ManualClock
) -> None:
    """Cancelling the task that fills frees the lock; the task waiting on it fills instead."""
    cache, backing = _cache(shape, manual_clock)
    calls: list[str] = []

    async def quick() -> bytes:
        calls.append("quick")
        return b"quick"

    async def scenario() -> Result[bytes, ServiceError]:
        gate = asyncio.Event()

        async def slow() -> bytes:
            calls.append("slow")
            gate.set()
            await asyncio.sleep(60)
            return b"never"

        leader = asyncio.ensure_future(async_get_or_set(cache, "k", slow))
        await gate.wait()
        assert backing.sync.get(lock_key("k")).unwrap() is not None  # the lock is held
        follower = asyncio.ensure_future(async_get_or_set(cache, "k", quick))
        await asyncio.sleep(0)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await follower

    assert asyncio.run(scenario()) == Success(b"quick")
    assert calls == ["slow", "quick"]
    assert backing.sync.get(lock_key("k")) == Success(None)
    assert backing.sync.get("k") == Success(b"quick")


def test_bad_input_is_refused_like_the_sync_get_or_set(manual_clock: ManualClock) -> None:
    """A bad key, TTL or a factory returning text is the sync twin's InvalidRequest."""
    cache = AsyncMemoryCache("gos", clock=manual_clock)
    sync = MemoryCache("sync", clock=manual_clock)

    async def value() -> bytes:
        return b"x"

    async def text() -> bytes:
        return "text"  # type: ignore[return-value]

    for key, ttl in (("", None), ("k", -1.0)):
        got = asyncio.run(async_get_or_set(cache, key, value, ttl))
        expected = get_or_set(sync, key, lambda: b"x", ttl)
        assert isinstance(got.failure(), InvalidRequest)
        assert got.failure().message == expected.failure().message
    got = asyncio.run(async_get_or_set(cache, "k", text))
    expected = get_or_set(sync, "k", lambda: "text")  # type: ignore[arg-type, return-value]
    assert got.failure().message == expected.failure().message
    assert len(cache.sync) == 0


def test_typed_get_or_set_runs_the_factory_once_and_refuses_unencodable(
    manual_clock: ManualClock,
) -> None:
    """Typed get_or_set decodes the shared value; an unencodable value is a failure."""
    typed = AsyncTypedCache(AsyncMemoryCache("typed", clock=manual_clock), Usage)
    calls = 0

    async def factory() -> Usage:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return Usage(3, 4)

    async def unencodable() -> Usage:
        return object()  # type: ignore[return-value]

    async def scenario() -> None:
        got = await asyncio.gather(*(typed.get_or_set("u", factory) for _ in range(5)))
        assert got == [Success(Usage(3, 4))] * 5
        refused = await typed.get_or_set("other", unencodable)
        assert isinstance(refused.failure(), SerializationError)

    asyncio.run(scenario())
    assert calls == 1
