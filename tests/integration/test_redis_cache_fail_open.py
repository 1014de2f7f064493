"""FailOpenCache over an unreachable and a killed Redis: misses, skipped writes, a breaker."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis
from returns.result import Success

from portside.adapters.cache_tools import get_or_set
from portside.adapters.memory import ManualClock
from portside.adapters.redis import RedisCache, connect
from portside.adapters.resilience import CircuitBreaker, FailOpenCache
from portside.adapters.testing import ThrowawayRedis, free_port, throwaway_redis
from portside.domain import NotFound, Unavailable


def _portside_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "portside.cache"]


@pytest.fixture(name="nowhere")
def _nowhere() -> Iterator[RedisCache]:
    cache = RedisCache.from_url(f"redis://127.0.0.1:{free_port()}/0", namespace="down")
    yield cache
    cache.close()


def test_with_redis_unreachable_reads_miss_and_writes_are_skipped(
    nowhere: RedisCache, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Every read is a miss, every write is skipped, and the outage is logged once."""
    cache = FailOpenCache(nowhere, clock=manual_clock)
    with caplog.at_level(logging.WARNING, logger="portside.cache"):
        assert cache.get("k") == Success(None)
        assert cache.get_many(["a", "b"]) == Success({})
        assert cache.set("k", b"v", ttl=5) == Success(None)
        assert cache.set_many({"k": b"v"}) == Success(None)
        assert cache.add("lock", b"token", ttl=1) == Success(True)
        assert cache.delete("k") == Success(False)
        assert cache.clear() == Success(None)
        assert isinstance(cache.ttl("k").failure(), NotFound)
        assert isinstance(cache.incr("n").failure(), Unavailable)
    assert cache.is_down
    records = _portside_records(caplog)
    assert len(records) == 1
    assert "unavailable" in records[0]


def test_bad_input_is_still_refused_while_failing_open(
    nowhere: RedisCache, manual_clock: ManualClock
) -> None:
    """Fail-open hides outages, not programming errors: bad keys stay InvalidRequest."""
    cache = FailOpenCache(nowhere, clock=manual_clock)
    assert cache.get("").failure().kind == "InvalidRequest"
    assert cache.breaker.consecutive_failures == 0


def test_get_or_set_works_through_an_outage(nowhere: RedisCache, manual_clock: ManualClock) -> None:
    """Without fail-open an outage is a Failure; with it, the factory's value is served."""
    assert isinstance(get_or_set(nowhere, "k", lambda: b"v").failure(), Unavailable)
    cache = FailOpenCache(nowhere, clock=manual_clock)
    assert get_or_set(cache, "k", lambda: b"fresh", clock=manual_clock) == Success(b"fresh")


@pytest.fixture(name="server")
def _server() -> Iterator[ThrowawayRedis]:
    with throwaway_redis() as server:
        yield server


@pytest.mark.faults
def test_the_breaker_stops_calling_a_dead_redis_and_probes_after_the_cool_down(
    server: ThrowawayRedis, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Open after the threshold, no I/O while open, one probe after reset_timeout, recovered."""
    inner = RedisCache.from_url(server.url, namespace="breaker")
    breaker = CircuitBreaker(manual_clock, failure_threshold=3, reset_timeout=5.0, name="cache")
    cache = FailOpenCache(inner, clock=manual_clock, breaker=breaker)
    raw: redis.Redis = connect(server.url)
    with caplog.at_level(logging.WARNING, logger="portside.cache"):
        assert cache.set("k", b"before") == Success(None)
        server.kill()
        for _ in range(3):
            assert cache.get("k") == Success(None)
        opened: str = breaker.state
        assert opened == "open"
        server.start()
        # The server is back, but the breaker is open: this write must not reach it.
        assert cache.set("skipped", b"v") == Success(None)
        assert raw.get("breaker|skipped") is None
        manual_clock.advance(5.0)
        assert cache.set("probe", b"v") == Success(None)  # the half-open probe
        assert breaker.state == "closed"
        assert raw.get("breaker|probe") == b"v"
        assert cache.get("probe") == Success(b"v")
    assert not cache.is_down
    records = _portside_records(caplog)
    assert len(records) == 2
    assert "unavailable" in records[0]
    assert "available again" in records[1]
    raw.close()
    cache.close()
