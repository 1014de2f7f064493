"""The cache and the queue through Sentinel while the primary is SIGKILLed under load.

A throwaway Sentinel set (one primary, one replica, three sentinels judging a server
down after 1 s) with the append-only file synced on every write on both servers. Cache
threads set and get; queue producers publish durably (each publish waits for the
replica, ``WAIT 1``) with the message id as dedupe key, retrying until acknowledged;
consumers receive and ack; two more threads set and get through AsyncRedisCache on a
running event loop. Each cycle SIGKILLs the current primary, waits for the
sentinels to promote the replica, and starts the killed server again as a replica of the
new primary (as a supervisor would), so the next cycle has a replica to fail over to.
"""

from __future__ import annotations

import time

import pytest
from returns.result import Result, Success

from portside.adapters.redis import AsyncRedisCache, RedisCache, RedisOptions, RedisQueue
from portside.adapters.testing import EventLoopThread, ThrowawaySentinel, throwaway_sentinel
from portside.domain import ServiceError
from portside.ports import CachePort
from portside.ports.queue_rules import QueueOptions
from tests.faults._failover import GROUP, TOPIC, Ledger, outage_figures, record
from tests.faults._load import Load, Step
from tests.faults.conftest import Campaign

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SOCKET_TIMEOUT = 0.5
#: A failed call returns within two attempts of a socket timeout each, plus a margin.
CALL_BOUND = 2 * SOCKET_TIMEOUT + 1.5
#: Calls succeed again within this many seconds of the SIGKILL (documented bound):
#: the sentinels' down-after-milliseconds (1 s), their election and promotion, and for
#: a durable publish the restarted replica's full sync, on a loaded 2-core machine.
RECOVERY_BOUND = 10.0
CYCLES = 3
LEASE = 1.0
PRODUCERS = 2
CONSUMERS = 2
CACHE_THREADS = 2


def _cache_step(cache: CachePort) -> Step:
    def step(thread: int, n: int) -> Result[object, ServiceError]:
        key = f"k{thread}-{n % 200}"
        if n % 2:
            return cache.get(key)
        return cache.set(key, str(n).encode(), ttl=60.0)

    return step


def _queue(url: str) -> RedisQueue:
    return RedisQueue.from_url(
        url,
        options=QueueOptions(lease_timeout=LEASE, max_deliveries=1000),
        connection=RedisOptions(socket_timeout=SOCKET_TIMEOUT, connect_timeout=SOCKET_TIMEOUT),
        durable_publish=True,
    )


def _cycle(
    sentinel: ThrowawaySentinel, loads: dict[str, Load], campaign: Campaign
) -> dict[str, float]:
    """One SIGKILL of the primary under load; the figures of every load for it."""
    killed_at = time.monotonic()
    old = sentinel.kill_primary()
    campaign.fault("SIGKILL the primary")
    sentinel.wait_for_failover(old)
    promoted = time.monotonic() - killed_at
    sentinel.restart(old)
    time.sleep(max(0.0, RECOVERY_BOUND - (time.monotonic() - killed_at)))
    return {"promoted": promoted, **outage_figures(loads, killed_at)}


async def _async_cache(url: str, options: RedisOptions) -> AsyncRedisCache:
    return AsyncRedisCache.from_url(url, namespace="failover-async", options=options)


def test_a_sentinel_failover_under_load_is_typed_bounded_and_loses_nothing(
    campaign: Campaign,
) -> None:
    """SIGKILL of the primary: typed failures only, recovery within the bound, no acked loss."""
    with throwaway_sentinel(durable=True) as sentinel:
        options = RedisOptions(socket_timeout=SOCKET_TIMEOUT, connect_timeout=SOCKET_TIMEOUT)
        cache = RedisCache.from_url(sentinel.url, namespace="failover", options=options)
        # AsyncRedisCache on a running loop, called from the load's threads.
        runner = EventLoopThread()
        aio_cache = runner.run(_async_cache(sentinel.url, options))
        queue = _queue(sentinel.url)
        ledger = Ledger(PRODUCERS)
        for index in range(CONSUMERS):  # groups start at the end of the stream: join first
            assert isinstance(queue.receive(TOPIC, GROUP, f"c{index}"), Success)
        loads = {
            "cache": Load(_cache_step(cache), CACHE_THREADS, pause=0.002).start(),
            "async cache": Load(
                _cache_step(runner.blocking(aio_cache)), CACHE_THREADS, pause=0.002
            ).start(),
            "publish": Load(ledger.producer(queue), PRODUCERS, pause=0).start(),
            "receive+ack": Load(ledger.consumer(queue), CONSUMERS, pause=0).start(),
        }
        cycles: list[dict[str, float]] = []
        try:
            time.sleep(1.0)
            for _ in range(CYCLES):
                cycles.append(_cycle(sentinel, loads, campaign))
        finally:
            for name in ("cache", "async cache", "publish"):
                loads[name].stop()
        ledger.drain(20 * LEASE)
        loads["receive+ack"].stop()
        cache.close()
        runner.run(aio_cache.aclose())
        runner.close()
        queue.close()

    name = "sentinel: SIGKILL the primary under load (AOF fsync always, WAIT 1)"
    failures = record(campaign, name, loads, cycles, ledger)
    scores = [load.score for load in loads.values()]
    lost = ledger.published - ledger.delivered

    assert all(score.exceptions == [] for score in scores), [s.exceptions for s in scores]
    # InvalidRequest is the documented answer to acking a lease another consumer took
    # over meanwhile (a 1 s lease, a 2 s outage); nothing else may appear.
    assert set(failures) <= {"Unavailable", "TimedOut", "InvalidRequest"}, failures
    assert sum(failures.values()) > 0, "the kills were never noticed"
    assert max(score.slowest_failure for score in scores) < CALL_BOUND
    for figures in cycles:
        recovered = [v for k, v in figures.items() if k.endswith("recovered")]
        assert recovered, figures
        assert max(recovered) < RECOVERY_BOUND, figures
    assert len(ledger.published) > 100
    assert lost == set(), f"{len(lost)} acknowledged publishes never delivered"
