"""RedisQueue producers and consumers keep going while Redis is SIGKILLed and restarted.

The server here keeps an append-only file synced on every write: a queue on a Redis
without persistence loses every message on a restart by definition, so only a durable
server can show that nothing acknowledged is lost.
"""

from __future__ import annotations

import threading
import time

import pytest
from returns.result import Failure, Result, Success

from portside.adapters.testing import ThrowawayRedis
from portside.domain import ServiceError
from portside.ports import QueuePort
from tests.faults._load import Load, Step
from tests.faults.conftest import Campaign

pytestmark = pytest.mark.faults

queue_module = pytest.importorskip("portside.adapters.redis._queue")
QueueOptions = pytest.importorskip("portside.ports.queue_rules").QueueOptions
RedisOptions = pytest.importorskip("portside.adapters.redis._client").RedisOptions

SOCKET_TIMEOUT = 0.5
BOUND = 3 * SOCKET_TIMEOUT + 1.5
RECOVERY = 2.0
PRODUCERS = 2
CYCLES = 2
CONSUMERS = 3
LEASE = 1.0
TOPIC = "orders"
AUDIT = "audit"
GROUP = "workers"


def _queue(url: str) -> QueuePort:
    queue: QueuePort = queue_module.RedisQueue.from_url(
        url,
        options=QueueOptions(lease_timeout=LEASE, max_deliveries=1000),
        connection=RedisOptions(socket_timeout=SOCKET_TIMEOUT, connect_timeout=SOCKET_TIMEOUT),
    )
    return queue


class _Ledger:
    """Which ids were published (acknowledged by Redis), delivered and acked."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next = [0] * PRODUCERS
        self.published: set[str] = set()
        self.deliveries = 0
        self.delivered: set[str] = set()
        self.acked: set[str] = set()
        self.ack_failed: set[str] = set()
        self.redelivered = 0

    def producer(self, queue: QueuePort) -> Step:
        def step(thread: int, _n: int) -> Result[object, ServiceError]:
            ident = f"p{thread}-{self.next[thread]}"
            # The same dedupe key on every retry: an ambiguous failure never doubles it.
            result = queue.publish(TOPIC, ident.encode(), dedupe_key=ident)
            if isinstance(result, Success):
                with self.lock:
                    self.published.add(ident)
                self.next[thread] += 1
            time.sleep(0.004)
            return result

        return step

    def consumer(self, queue: QueuePort) -> Step:
        def step(thread: int, _n: int) -> Result[object, ServiceError]:
            received = queue.receive(TOPIC, GROUP, f"c{thread}", max_messages=10, wait=0.1)
            if isinstance(received, Failure):
                return received
            for delivery in received.unwrap():
                ident = delivery.message.body.decode()
                with self.lock:
                    self.deliveries += 1
                    self.redelivered += delivery.attempt > 1
                    self.delivered.add(ident)
                acked = queue.ack(delivery)
                if isinstance(acked, Failure):
                    # The server died before or after applying the ack: if before, the
                    # message comes back after its lease; if after, it is done.
                    with self.lock:
                        self.ack_failed.add(ident)
                    return acked
                with self.lock:
                    self.acked.add(ident)
            return Success(None)

        return step


def test_queue_loses_nothing_acknowledged_through_sigkill_and_restart(
    durable_redis_server: ThrowawayRedis, campaign: Campaign
) -> None:
    """Everything published is acked in the end; failures are typed and bounded; service resumes."""
    server = durable_redis_server
    queue = _queue(server.url)
    ledger = _Ledger()
    for index in range(CONSUMERS):  # groups start at the end of the stream: join first
        assert isinstance(queue.receive(TOPIC, GROUP, f"c{index}"), Success)
    for cycle in range(CYCLES):  # one audit topic per kill, so leases never mix
        assert isinstance(queue.receive(f"{AUDIT}{cycle}", GROUP, "holder"), Success)
    held: list[str] = []
    producers = Load(ledger.producer(queue), PRODUCERS, pause=0).start()
    consumers = Load(ledger.consumer(queue), CONSUMERS, pause=0).start()
    recoveries: list[float | None] = []
    try:
        time.sleep(0.4)
        for cycle in range(CYCLES):
            # Deliveries leased but not acked when the server dies must come back.
            for n in range(5):
                assert isinstance(queue.publish(f"{AUDIT}{cycle}", f"a{n}".encode()), Success)
            leased = queue.receive(f"{AUDIT}{cycle}", GROUP, "holder", max_messages=5)
            held += [f"{cycle}:{d.message.body.decode()}" for d in leased.unwrap()]
            server.kill()
            campaign.fault("SIGKILL redis-server")
            time.sleep(0.4)
            server.restart()
            restarted = time.monotonic()
            time.sleep(RECOVERY + 0.2)
            recoveries.append(
                max(
                    producers.score.first_success_after(restarted) or RECOVERY * 10,
                    consumers.score.first_success_after(restarted) or RECOVERY * 10,
                )
            )
    finally:
        producers.stop()
    # Drain: every published message must be delivered; deliveries whose ack failed
    # come back once their lease expires, unless the ack had been applied.
    deadline = time.monotonic() + 10 * LEASE
    while time.monotonic() < deadline:
        with ledger.lock:
            if ledger.published <= ledger.acked | ledger.ack_failed:
                break
        time.sleep(0.05)
    time.sleep(1.5 * LEASE)
    consumers.stop()
    # Nothing may be left behind: a fresh consumer finds no message, new or expired.
    leftover: list[str] = []
    deadline = time.monotonic() + 1.5 * LEASE
    while time.monotonic() < deadline:
        # Short waits: one blocking read must stay under the socket timeout.
        found = queue.receive(TOPIC, GROUP, "auditor", max_messages=100, wait=0.2)
        leftover += [d.message.body.decode() for d in found.unwrap()]
    back: list[tuple[str, int]] = []
    deadline = time.monotonic() + 10 * LEASE
    while len(back) < len(held) and time.monotonic() < deadline:
        for cycle in range(CYCLES):
            received = queue.receive(f"{AUDIT}{cycle}", GROUP, "rescuer", max_messages=10)
            for delivery in received.value_or([]):
                back.append((f"{cycle}:{delivery.message.body.decode()}", delivery.attempt))
                assert queue.ack(delivery) == Success(None)
        time.sleep(0.05)
    dead = queue.dead_letters(TOPIC, GROUP)
    queue.close()

    lost = ledger.published - ledger.delivered
    failures = producers.score.failures + consumers.score.failures
    campaign.name = "redis queue: SIGKILL + restart (AOF fsync always)"
    campaign.threads = PRODUCERS + CONSUMERS
    campaign.count(producers.score.calls + consumers.score.calls)
    campaign.failures.update(failures)
    for recovery in recoveries:
        campaign.recovered(recovery or 0.0)
    campaign.data_lost = len(lost)
    campaign.notes = (
        f"{len(ledger.published)} published, {len(ledger.acked)} acked, "
        f"{ledger.deliveries - len(ledger.acked)} duplicate deliveries, "
        f"{ledger.redelivered} redeliveries, {len(ledger.ack_failed - ledger.acked)} acks "
        f"applied with the reply lost; {len(held)} leased-unacked at a kill all redelivered"
    )

    assert producers.score.exceptions == []
    assert consumers.score.exceptions == []
    # InvalidRequest is the documented answer to acking a lease another consumer took
    # over, which a 1 s lease allows while the server is down; nothing else may appear.
    assert set(failures) <= {"Unavailable", "TimedOut", "InvalidRequest"}, failures
    assert sum(failures.values()) > 0, "the kills were never noticed"
    assert max(producers.score.slowest_failure, consumers.score.slowest_failure) < BOUND
    assert all(r is not None and r <= RECOVERY for r in recoveries), recoveries
    assert len(ledger.published) > 100
    assert lost == set(), f"{len(lost)} published messages never delivered"
    assert leftover == [], leftover
    assert dead == Success([])
    assert len(held) == 10
    assert sorted(body for body, _ in back) == sorted(held)
    assert all(attempt >= 2 for _, attempt in back)
