"""AsyncFailOpenCache over a throwaway Redis that is cut and killed: misses, a breaker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
import redis
from returns.result import Success

from portside.adapters.cache_tools import async_get_or_set
from portside.adapters.memory import ManualClock
from portside.adapters.redis import AsyncRedisCache, RedisCache, RedisOptions, connect
from portside.adapters.resilience import AsyncFailOpenCache, CircuitBreaker, FailOpenCache
from portside.adapters.testing import TcpFaultProxy, ThrowawayRedis, free_port, throwaway_redis
from portside.domain import NotFound, Unavailable

pytestmark = pytest.mark.faults

QUICK = RedisOptions(socket_timeout=0.3, connect_timeout=0.3)


def _portside_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "portside.cache"]


@pytest.fixture(name="server")
def _server() -> Iterator[ThrowawayRedis]:
    with throwaway_redis() as server:
        yield server


def test_unreachable_redis_answers_what_the_sync_fail_open_cache_answers(
    manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Every method falls back as FailOpenCache does, and the outage is logged once."""
    url = f"redis://127.0.0.1:{free_port()}/0"

    sync = FailOpenCache(
        RedisCache.from_url(url, namespace="down", options=QUICK), clock=ManualClock()
    )
    expected = [
        sync.get("k"),
        sync.get_many(["a", "b"]),
        sync.set("k", b"v", ttl=5),
        sync.set_many({"k": b"v"}),
        sync.add("lock", b"token", ttl=1),
        sync.delete("k"),
        sync.delete_if_equal("lock", b"token"),
        sync.clear(),
    ]
    sync.close()
    caplog.clear()

    async def scenario() -> None:
        inner = AsyncRedisCache.from_url(url, namespace="down", options=QUICK)
        cache = AsyncFailOpenCache(inner, clock=manual_clock)
        with caplog.at_level(logging.WARNING, logger="portside.cache"):
            got = [
                await cache.get("k"),
                await cache.get_many(["a", "b"]),
                await cache.set("k", b"v", ttl=5),
                await cache.set_many({"k": b"v"}),
                await cache.add("lock", b"token", ttl=1),
                await cache.delete("k"),
                await cache.delete_if_equal("lock", b"token"),
                await cache.clear(),
            ]
            assert got == expected
            assert isinstance((await cache.ttl("k")).failure(), NotFound)
            assert isinstance((await cache.incr("n")).failure(), Unavailable)
            assert (await cache.get_or_lock("k", "k:l", b"t", 5.0)).unwrap().locked
            assert await cache.set_and_unlock("k", b"v", None, "k:l", b"t") == Success(False)
            assert cache.is_down
        # Bad input is still refused: fail-open hides outages, not programming errors.
        fresh = AsyncFailOpenCache(inner, clock=manual_clock)
        assert (await fresh.get("")).failure().kind == "InvalidRequest"
        assert fresh.breaker.consecutive_failures == 0
        await cache.aclose()

    asyncio.run(scenario())
    records = _portside_records(caplog)
    assert len(records) == 1
    assert "unavailable" in records[0]


def test_a_cut_connection_fails_open_then_the_breaker_probes_and_recovers(
    server: ThrowawayRedis, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Cut: misses and skipped writes; open after the threshold, no I/O; a probe heals."""
    raw: redis.Redis = connect(server.url)
    with TcpFaultProxy("127.0.0.1", server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"

        async def scenario() -> None:
            inner = AsyncRedisCache.from_url(url, namespace="cut", options=QUICK)
            breaker = CircuitBreaker(manual_clock, failure_threshold=3, reset_timeout=5.0)
            cache = AsyncFailOpenCache(inner, clock=manual_clock, breaker=breaker)
            assert await cache.set("k", b"before") == Success(None)
            proxy.blackhole()
            for _ in range(3):
                assert await cache.get("k") == Success(None)
            assert breaker.state == "open"
            proxy.heal()
            # The path is back, but the breaker is open: this write must not reach Redis.
            assert await cache.set("skipped", b"v") == Success(None)
            assert raw.get("cut|skipped") is None
            manual_clock.advance(5.0)
            assert await cache.set("probe", b"v") == Success(None)  # the half-open probe
            assert breaker.state == "closed"
            assert raw.get("cut|probe") == b"v"
            assert await cache.get("k") == Success(b"before")
            assert not cache.is_down
            await cache.aclose()

        with caplog.at_level(logging.WARNING, logger="portside.cache"):
            asyncio.run(scenario())
    records = _portside_records(caplog)
    assert len(records) == 2
    assert "available again" in records[1]
    raw.close()


def test_get_or_set_serves_the_factory_while_redis_is_killed(
    server: ThrowawayRedis, manual_clock: ManualClock
) -> None:
    """With Redis killed, async_get_or_set through the fail-open cache still answers."""

    async def factory() -> bytes:
        return b"fresh"

    async def scenario() -> None:
        inner = AsyncRedisCache.from_url(server.url, namespace="killed", options=QUICK)
        plain = await async_get_or_set(inner, "k", factory)
        assert plain == Success(b"fresh")
        server.kill()
        assert isinstance((await async_get_or_set(inner, "k2", factory)).failure(), Unavailable)
        cache = AsyncFailOpenCache(inner, clock=manual_clock)
        got = await asyncio.gather(
            *(async_get_or_set(cache, "k2", factory, clock=manual_clock) for _ in range(10))
        )
        assert got == [Success(b"fresh")] * 10
        await cache.aclose()

    asyncio.run(scenario())
