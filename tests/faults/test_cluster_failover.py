"""The cache and the queue on Redis Cluster while one primary is SIGKILLed under load.

A throwaway cluster (three primaries, three replicas) whose nodes judge a peer failed
after 1 s (``--cluster-node-timeout 1000``; Redis's default is 15 s), keep serving the
slots they hold when another primary's are uncovered (``--cluster-require-full-coverage
no``) and keep an append-only file synced on every write. Cache threads work on keys of
the primary about to die and, separately, on keys of the other primaries; producers
publish durably (``WAIT 1`` on the topic's primary) with the id as dedupe key, retrying
until acknowledged; consumers receive and ack. Each cycle SIGKILLs the primary holding
the topic, waits for its replica to take its slots over, and restarts the killed node
(it rejoins as a replica of the one that replaced it).
"""

from __future__ import annotations

import time

import pytest
from redis.cluster import RedisCluster
from returns.result import Result, Success

from portside.adapters.redis import RedisCache, RedisOptions, RedisQueue
from portside.adapters.testing import ThrowawayCluster, throwaway_cluster
from portside.domain import ServiceError
from portside.ports.queue_rules import QueueOptions
from tests.faults._failover import GROUP, TOPIC, Ledger, outage_figures, record
from tests.faults._load import Load, Step
from tests.faults.conftest import Campaign

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SOCKET_TIMEOUT = 0.5
#: A failed call returns within two attempts of a socket timeout each, plus a margin.
CALL_BOUND = 2 * SOCKET_TIMEOUT + 1.5
#: Calls on the dead primary's slots succeed again within this many seconds of the
#: SIGKILL (documented bound): the node timeout (1 s), the replica's election, and for a
#: durable publish the restarted node's full sync, on a loaded 2-core machine.
RECOVERY_BOUND = 10.0
CYCLES = 3
LEASE = 1.0
NAMESPACE = "cfail"
NODE_ARGS = (
    "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no",
    "--appendonly", "yes", "--appendfsync", "always",
    # A replica that never synced cannot take over: sync at once, not after 5 s.
    "--repl-diskless-sync-delay", "0",
)  # fmt: skip


def _wait_for_replicas(cluster: ThrowawayCluster) -> None:
    """Wait until every replica has synced with its primary (its link is up)."""
    deadline = time.monotonic() + 30
    for port in cluster.ports:
        while True:
            info = cluster.ask(port, "INFO", "replication")
            if "role:master" in info or "master_link_status:up" in info:
                break
            assert time.monotonic() < deadline, f"replica {port} never synced"
            time.sleep(0.05)


class _Keys:
    """The cache keys of the primary about to die and of the others (updated per cycle)."""

    def __init__(self) -> None:
        self.doomed: list[str] = []
        self.others: list[str] = []

    def split(self, raw: RedisCluster, victim: int) -> None:
        doomed: list[str] = []
        others: list[str] = []
        for n in range(600):
            key = f"k{n}"
            # RedisCache's documented cluster layout: <namespace>|{=<key>}<key>.
            node = raw.get_node_from_key(f"{NAMESPACE}|{{={key}}}{key}")  # type: ignore[no-untyped-call]
            (doomed if node.port == victim else others).append(key)
        self.doomed, self.others = doomed, others

    def step(self, cache: RedisCache, which: str) -> Step:
        def step(thread: int, n: int) -> Result[object, ServiceError]:
            keys = self.doomed if which == "doomed" else self.others
            key = keys[(thread * 7 + n) % len(keys)]
            if n % 2:
                return cache.get(key)
            return cache.set(key, str(n).encode(), ttl=60.0)

        return step


def _victim(cluster: ThrowawayCluster, queue: RedisQueue, keys: _Keys) -> int:
    """The port of the primary holding the topic now; splits the cache keys around it."""
    # A raw client reads a fresh slot map.
    raw = RedisCluster.from_url(cluster.url.replace("+cluster", ""))
    try:
        victim = int(raw.get_node_from_key(queue.stream_key(TOPIC)).port)  # type: ignore[no-untyped-call]
        keys.split(raw, victim)
    finally:
        raw.close()
    return victim


def test_a_cluster_failover_under_load_is_typed_bounded_and_loses_nothing(
    campaign: Campaign,
) -> None:
    """SIGKILL of a primary: its slots fail typed and recover, the others serve, no acked loss."""
    with throwaway_cluster(extra_args=NODE_ARGS) as cluster:
        _wait_for_replicas(cluster)
        options = RedisOptions(socket_timeout=SOCKET_TIMEOUT, connect_timeout=SOCKET_TIMEOUT)
        cache = RedisCache.from_url(cluster.url, namespace=NAMESPACE, options=options)
        queue = RedisQueue.from_url(
            cluster.url,
            options=QueueOptions(lease_timeout=LEASE, max_deliveries=1000),
            connection=options,
            durable_publish=True,
        )
        ledger, keys = Ledger(1), _Keys()
        for index in range(2):  # groups start at the end of the stream: join first
            assert isinstance(queue.receive(TOPIC, GROUP, f"c{index}"), Success)
        victim = _victim(cluster, queue, keys)
        loads = {
            "cache, dead slots": Load(keys.step(cache, "doomed"), 2, pause=0.002).start(),
            "cache, other slots": Load(keys.step(cache, "others"), 2, pause=0.002).start(),
            "publish": Load(ledger.producer(queue), 1, pause=0).start(),
            "receive+ack": Load(ledger.consumer(queue), 2, pause=0).start(),
        }
        cycles: list[dict[str, float]] = []
        try:
            time.sleep(1.0)
            for _ in range(CYCLES):
                killed_at = time.monotonic()
                cluster.kill(victim)
                campaign.fault("SIGKILL a primary")
                cluster.wait_for_failover(victim)
                promoted = time.monotonic() - killed_at
                cluster.restart(victim)
                _wait_for_replicas(cluster)
                time.sleep(max(0.0, RECOVERY_BOUND - (time.monotonic() - killed_at)))
                figures = {"promoted": promoted, **outage_figures(loads, killed_at)}
                cycles.append(figures)
                # Next: the replica that took over the topic's slots.
                victim = _victim(cluster, queue, keys)
        finally:
            for name in ("cache, dead slots", "cache, other slots", "publish"):
                loads[name].stop()
        ledger.drain(20 * LEASE)
        loads["receive+ack"].stop()
        cache.close()
        queue.close()

    name = "cluster: SIGKILL a primary under load (AOF fsync always, WAIT 1)"
    failures = record(campaign, name, loads, cycles, ledger)
    scores = [load.score for load in loads.values()]
    lost = ledger.published - ledger.delivered
    others = loads["cache, other slots"].score
    campaign.notes += f"; other slots: {others.calls} calls, {sum(others.failures.values())} failed"

    assert all(score.exceptions == [] for score in scores), [s.exceptions for s in scores]
    assert set(failures) <= {"Unavailable", "TimedOut", "InvalidRequest"}, failures
    assert loads["cache, dead slots"].score.failures, "the kills were never noticed"
    assert max(score.slowest_failure for score in scores) < CALL_BOUND
    for figures in cycles:
        assert "cache, dead slots recovered" in figures, figures
        recovered = [v for k, v in figures.items() if k.endswith("recovered")]
        assert max(recovered) < RECOVERY_BOUND, figures
    assert len(ledger.published) > 50
    assert lost == set(), f"{len(lost)} acknowledged publishes never delivered"
