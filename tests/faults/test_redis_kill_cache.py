"""RedisCache under sustained traffic while its server is SIGKILLed and restarted."""

from __future__ import annotations

import threading
import time

import pytest
from returns.result import Failure, Result, Success

from portside.adapters.testing import TcpFaultProxy, ThrowawayRedis
from portside.domain import NotFound, ServiceError
from portside.ports import CachePort
from tests.faults._load import Load, Step
from tests.faults.conftest import Campaign

pytestmark = pytest.mark.faults

cache_module = pytest.importorskip("portside.adapters.redis._cache")
RedisCache = cache_module.RedisCache
RedisOptions = pytest.importorskip("portside.adapters.redis._client").RedisOptions

SOCKET_TIMEOUT = 0.25
# A read may be retried once on a fresh connection: two timeouts plus a connect, plus
# scheduling slack on a shared 2-core machine. A hung call would take far longer.
BOUND = 3 * SOCKET_TIMEOUT + 1.5
RECOVERY = 2.0
THREADS = 4
CYCLES = 2


def _cache(url: str) -> CachePort:
    options = RedisOptions(socket_timeout=SOCKET_TIMEOUT, connect_timeout=SOCKET_TIMEOUT)
    cache: CachePort = RedisCache.from_url(url, namespace="faults", options=options)
    return cache


def _traffic(cache: CachePort, written: list[dict[str, bytes]], lock: threading.Lock) -> Step:
    """One step of mixed cache traffic; thread ``t`` owns keys ``t:*``."""

    def step(thread: int, n: int) -> Result[object, ServiceError]:
        key = f"{thread}:{n % 50}"
        choice = n % 7
        if choice == 0:
            value = f"{n}".encode()
            result = cache.set(key, value, ttl=60)
            if isinstance(result, Success):
                with lock:
                    written[thread][key] = value
            return result
        if choice == 1:
            return cache.get_many([f"{thread}:{i}" for i in range(10)])
        if choice == 2:
            return cache.incr(f"counter:{thread}")
        if choice == 3:
            return cache.add(f"add:{thread}:{n}", b"x", ttl=5)
        if choice == 4:
            items = {f"many:{thread}:{i}": b"v" * 100 for i in range(5)}
            return cache.set_many(items, ttl=60)
        if choice == 5:
            ttl = cache.ttl(key)
            # An absent key is NotFound by contract: an answer, not a fault.
            missing = isinstance(ttl, Failure) and isinstance(ttl.failure(), NotFound)
            return Success(None) if missing else ttl
        return cache.get(key)

    return step


def test_cache_survives_sigkill_and_restart_under_load(
    redis_server: ThrowawayRedis, campaign: Campaign
) -> None:
    """Killing Redis mid-traffic gives only typed Failures in time; service resumes within 2 s."""
    cache = _cache(redis_server.url)
    written: list[dict[str, bytes]] = [{} for _ in range(THREADS)]
    lock = threading.Lock()
    load = Load(_traffic(cache, written, lock), THREADS).start()
    recoveries: list[float | None] = []
    try:
        time.sleep(0.4)
        for _ in range(CYCLES):
            redis_server.kill()
            campaign.fault("SIGKILL redis-server")
            time.sleep(0.4)  # traffic keeps hitting the dead server
            with lock:  # the server restarts empty: what was written before is gone by design
                for own in written:
                    own.clear()
            redis_server.restart()
            restarted = time.monotonic()
            time.sleep(RECOVERY + 0.2)
            recoveries.append(load.score.first_success_after(restarted))
    finally:
        load.stop()
    score = load.score
    lost = 0
    for own in written:
        for key, value in own.items():
            read = cache.get(key)
            lost += read != Success(value)
    cache.close()

    campaign.name = "redis cache: SIGKILL + restart"
    campaign.threads = THREADS
    campaign.count(score.calls)
    for kind, count in score.failures.items():
        campaign.failures[kind] += count
    for recovery in recoveries:
        if recovery is not None:
            campaign.recovered(recovery)
    campaign.data_lost = lost
    campaign.notes = "writes acknowledged after the last restart read back"

    assert score.exceptions == []
    assert set(score.failures) <= {"Unavailable", "TimedOut"}, score.failures
    assert score.failures, "the kills were never noticed: the test did not test anything"
    assert score.slowest_failure < BOUND
    assert all(r is not None and r <= RECOVERY for r in recoveries), recoveries
    assert lost == 0


@pytest.mark.parametrize("fault", ["cut", "stall", "blackhole", "close_after"])
def test_cache_behind_a_faulty_proxy_fails_typed_and_recovers(
    fault: str, redis_server: ThrowawayRedis, campaign: Campaign
) -> None:
    """Each proxy fault gives Unavailable/TimedOut in time; after heal the cache serves."""
    with TcpFaultProxy("127.0.0.1", redis_server.port) as proxy:
        cache = _cache(f"redis://127.0.0.1:{proxy.port}/0")
        try:
            assert cache.set("k", b"v") == Success(None)
            getattr(proxy, fault)(*([30] if fault == "close_after" else []))
            outcomes: list[Result[object, ServiceError]] = []
            for n in range(6):
                started = time.monotonic()
                outcomes.append(cache.get("k") if n % 2 else cache.set(f"k{n}", b"x" * 64))
                assert time.monotonic() - started < BOUND
            failures = [o.failure() for o in outcomes if isinstance(o, Failure)]
            assert all(f.kind in ("Unavailable", "TimedOut") for f in failures), failures
            if fault in ("stall", "blackhole"):
                assert len(failures) == len(outcomes)  # nothing can succeed through them
            proxy.heal()
            healed_at = time.monotonic()
            deadline = healed_at + RECOVERY
            while cache.get("k") != Success(b"v") and time.monotonic() < deadline:
                time.sleep(0.02)
            recovery = time.monotonic() - healed_at
            assert cache.get("k") == Success(b"v")
        finally:
            cache.close()
    campaign.name = "redis cache behind a faulty proxy"
    campaign.fault(fault)
    campaign.count(len(outcomes) + 2)
    for failure in failures:
        campaign.failures[failure.kind] += 1
    campaign.recovered(recovery)
