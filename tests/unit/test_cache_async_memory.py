"""AsyncMemoryCache: the async fake is a view of MemoryCache's state, not a second model."""

from __future__ import annotations

import asyncio

from returns.result import Failure, Success

from portside.adapters.memory import AsyncMemoryCache, ManualClock, MemoryCache, MemoryStore
from portside.domain import InvalidRequest, NotFound
from portside.ports import AsyncCachePort


def test_async_and_sync_views_of_one_store_see_the_same_keys() -> None:
    """A key written through the async fake is read by a MemoryCache on the same store."""
    store = MemoryStore()
    clock = ManualClock()
    sync = MemoryCache("ns", clock=clock, store=store)
    cache = AsyncMemoryCache("ns", clock=clock, store=store)

    async def scenario() -> None:
        assert await cache.set("k", b"v", ttl=2) == Success(None)
        assert sync.get("k") == Success(b"v")
        sync.set("other", b"x")
        assert await cache.get_many(["k", "other", "absent"]) == Success({"k": b"v", "other": b"x"})
        clock.advance(3)
        assert await cache.get("k") == Success(None)
        assert sync.get("k") == Success(None)

    asyncio.run(scenario())


def test_async_fake_answers_what_the_sync_fake_answers() -> None:
    """Every method returns the MemoryCache answer, errors included."""
    cache = AsyncMemoryCache("ns", clock=ManualClock())

    async def scenario() -> None:
        assert await cache.add("k", b"1") == Success(True)
        assert await cache.add("k", b"2") == Success(False)
        assert await cache.incr("k", 4) == Success(5)
        assert await cache.ttl("k") == Success(None)
        assert isinstance((await cache.ttl("nope")).failure(), NotFound)
        bad = await cache.set("", b"v")
        assert isinstance(bad, Failure)
        assert isinstance(bad.failure(), InvalidRequest)
        assert await cache.set_many({"a": b"1", "b": b"2"}, ttl=1) == Success(None)
        assert await cache.delete("a") == Success(True)
        assert await cache.clear() == Success(None)
        assert await cache.get_many(["k", "b"]) == Success({})
        await cache.aclose()

    asyncio.run(scenario())
    assert cache.sync.namespace == cache.namespace == "ns"


def test_async_fake_is_an_async_cache_port() -> None:
    """AsyncMemoryCache satisfies AsyncCachePort (checked by mypy at this assignment)."""
    port: AsyncCachePort = AsyncMemoryCache("ns")
    assert port.namespace == "ns"
