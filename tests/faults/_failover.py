"""What the failover tests share: the queue ledger, the per-cycle figures, the record."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter

from returns.result import Failure, Result, Success

from portside.domain import ServiceError
from portside.ports import QueuePort
from tests.faults._load import Load, Step
from tests.faults.conftest import Campaign

TOPIC = "orders"
GROUP = "workers"


class Ledger:
    """Which ids were published (acknowledged once a replica had them) and acked."""

    def __init__(self, producers: int) -> None:
        self.lock = threading.Lock()
        self.next = [0] * producers
        self.published: set[str] = set()
        self.delivered: set[str] = set()
        self.acked: set[str] = set()
        self.deliveries = 0

    def producer(self, queue: QueuePort) -> Step:
        """Publish the thread's next id, with the id as dedupe key, until acknowledged."""

        def step(thread: int, _n: int) -> Result[object, ServiceError]:
            ident = f"p{thread}-{self.next[thread]}"
            # The same dedupe key on every retry: an ambiguous failure never doubles it.
            result = queue.publish(TOPIC, ident.encode(), dedupe_key=ident)
            if isinstance(result, Success):
                with self.lock:
                    self.published.add(ident)
                self.next[thread] += 1
            time.sleep(0.005)
            return result

        return step

    def consumer(self, queue: QueuePort) -> Step:
        """Receive up to ten messages and ack each."""

        def step(thread: int, _n: int) -> Result[object, ServiceError]:
            received = queue.receive(TOPIC, GROUP, f"c{thread}", max_messages=10, wait=0.1)
            if isinstance(received, Failure):
                return received
            for delivery in received.unwrap():
                with self.lock:
                    self.deliveries += 1
                    self.delivered.add(delivery.message.body.decode())
                acked = queue.ack(delivery)
                if isinstance(acked, Failure):
                    return acked  # comes back after its lease unless the ack was applied
                with self.lock:
                    self.acked.add(delivery.message.body.decode())
            return Success(None)

        return step

    def drain(self, seconds: float) -> None:
        """Wait (bounded) until every acknowledged publish has been acked by a consumer."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if self.published <= self.acked:
                    return
            time.sleep(0.05)


def outage_figures(loads: dict[str, Load], killed_at: float) -> dict[str, float]:
    """Each load's first failure, recovery (seconds after the kill) and failed calls."""
    figures: dict[str, float] = {}
    for name, load in loads.items():
        outage = load.score.outage_after(killed_at, time.monotonic())
        if outage is not None:
            figures[f"{name} first failure"] = outage[0]
            figures[f"{name} recovered"] = outage[1]
            figures[f"{name} failed calls"] = outage[2]
    return figures


def medians(cycles: list[dict[str, float]]) -> str:
    """``name: median (min-max)`` for every figure over the cycles."""
    names = sorted({name for figures in cycles for name in figures})
    parts = []
    for name in names:
        values = [figures[name] for figures in cycles if name in figures]
        unit = "" if name.endswith("calls") else " s"
        parts.append(
            f"{name}: {statistics.median(values):.2f}{unit} "
            f"({min(values):.2f}-{max(values):.2f}, {len(values)} of {len(cycles)} cycles)"
        )
    return "; ".join(parts)


def record(
    campaign: Campaign,
    name: str,
    loads: dict[str, Load],
    cycles: list[dict[str, float]],
    ledger: Ledger,
) -> Counter[str]:
    """Fill the campaign record (figures in its notes, printed too); the failures by kind."""
    scores = [load.score for load in loads.values()]
    failures: Counter[str] = Counter()
    for score in scores:
        failures.update(score.failures)
    campaign.name = name
    campaign.threads = sum(load.threads for load in loads.values())
    campaign.count(sum(score.calls for score in scores))
    campaign.failures.update(failures)
    for figures in cycles:
        campaign.recovered(max(v for k, v in figures.items() if k.endswith("recovered")))
    campaign.data_lost = len(ledger.published - ledger.delivered)
    campaign.notes = medians(cycles) + (
        f"; {len(ledger.published)} published, {len(ledger.acked)} acked, "
        f"{ledger.deliveries - len(ledger.acked)} duplicate deliveries"
    )
    print(campaign.notes)  # the figures docs/reliability.md reports
    return failures
