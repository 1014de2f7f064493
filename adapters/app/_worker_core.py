"""What the sync and async workers share: backoff, counters and what to do after a handler.

``run_worker`` (threads) and ``run_async_worker`` (tasks) differ in how they wait and
send; the decisions are here once: the backoff after a failure (``RateLimited`` sets a
floor), whether a delivery is acked or nacked and whether that nack dead-letters it,
and what each outcome counts and logs.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

import attrs
from returns.result import Failure

from portside.domain._errors import RateLimited
from portside.domain._queue import Delivery
from portside.ports.queue_rules import QueueOptions

__all__ = [
    "LOG",
    "Backoff",
    "Settlement",
    "Tally",
    "WorkerReport",
    "check_worker_arguments",
    "max_deliveries_of",
    "plan_settlement",
    "record_ack",
    "record_nack",
]

LOG: Final = logging.getLogger("portside.queue.worker")


@attrs.frozen
class Backoff:
    """Exponential backoff: ``base * factor ** (attempt - 1)`` seconds, at most ``maximum``."""

    base: float = 1.0
    factor: float = 2.0
    maximum: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before delivery number ``attempt + 1``."""
        return min(self.maximum, self.base * self.factor ** max(0, attempt - 1))

    def delay_after(self, attempt: int, error: object) -> float:
        """The delay after a handler failed with ``error`` (an exception or a failure value).

        ``RateLimited.retry_after`` is a floor the service asked for: it wins over a
        shorter backoff and is not capped by ``maximum`` (retrying earlier would only be
        refused again).
        """
        delay = self.delay(attempt)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay


@attrs.frozen
class WorkerReport:
    """What a worker did before it stopped.

    ``retried`` counts handler failures given back for another try; ``dead_lettered``
    those that were the message's last allowed delivery (the queue dead-lettered them).
    """

    handled: int = 0
    acked: int = 0
    retried: int = 0
    dead_lettered: int = 0
    given_back: int = 0
    ack_failures: int = 0
    receive_failures: int = 0


@attrs.define
class Tally:
    """The counters, shared by the handler threads (or tasks)."""

    handled: int = 0
    acked: int = 0
    retried: int = 0
    dead_lettered: int = 0
    given_back: int = 0
    ack_failures: int = 0
    receive_failures: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def report(self) -> WorkerReport:
        with self._lock:
            return WorkerReport(
                self.handled,
                self.acked,
                self.retried,
                self.dead_lettered,
                self.given_back,
                self.ack_failures,
                self.receive_failures,
            )


@attrs.frozen
class Settlement:
    """What to do with a delivery once its handler returned: ack, or nack after ``delay``.

    ``last``: the nack is the message's last allowed delivery (the queue dead-letters
    it). ``error`` is the handler's failure, for the log line. Shared by the sync and
    async workers, which differ only in how they send the ack or nack.
    """

    ack: bool
    delay: float = 0.0
    last: bool = False
    error: object = None


_ACK: Final = Settlement(ack=True)


def plan_settlement(
    backoff: Backoff, max_deliveries: int | None, delivery: Delivery, outcome: object
) -> Settlement:
    """Ack unless ``outcome`` is a ``Failure``; then nack with ``backoff.delay_after``."""
    if not isinstance(outcome, Failure):
        return _ACK
    error = outcome.failure()
    last = max_deliveries is not None and delivery.attempt >= max_deliveries
    return Settlement(False, backoff.delay_after(delivery.attempt, error), last, error)


def record_ack(tally: Tally, delivery: Delivery, acked: object) -> None:
    """Count (and on failure log) the ack of ``delivery``."""
    if isinstance(acked, Failure):
        # The message will be delivered again: at-least-once, never lost.
        tally.add("ack_failures")
        LOG.warning("ack of %s failed: %s", delivery.message.id, acked.failure())
    else:
        tally.add("acked")


def record_nack(tally: Tally, delivery: Delivery, plan: Settlement, nacked: object) -> None:
    """Count and log the nack of ``delivery``: a retry, a dead letter, or a failed nack."""
    message = delivery.message
    if isinstance(nacked, Failure):
        LOG.warning("nack of %s failed: %s", message.id, nacked.failure())
    elif plan.last:
        tally.add("dead_lettered")
        LOG.error(
            "dead-lettered message %s (topic %r, group %r) after attempt %d: %s",
            message.id,
            message.topic,
            delivery.group,
            delivery.attempt,
            plan.error,
        )
    else:
        tally.add("retried")
        LOG.warning(
            "retrying message %s (topic %r, group %r) after attempt %d in %.3g s: %s",
            message.id,
            message.topic,
            delivery.group,
            delivery.attempt,
            plan.delay,
            plan.error,
        )


def check_worker_arguments(
    batch: int,
    concurrency: int,
    wait: float,
    idle: float,
    shutdown: float,
    heartbeat: float,
    lease_extension: float,
) -> None:
    """Raise ``ValueError`` for settings no worker can run with (both workers' rule)."""
    if batch < 1 or concurrency < 1 or min(wait, idle, shutdown) < 0:
        raise ValueError("batch and concurrency must be >= 1; wait, idle, shutdown_timeout >= 0")
    if heartbeat <= 0 or lease_extension <= 0:
        raise ValueError("heartbeat and lease_extension must be > 0")


def max_deliveries_of(queue: object, given: int | None) -> int | None:
    """``given``, else the queue's own ``options.max_deliveries`` when it has options."""
    if given is not None:
        return given
    options = getattr(queue, "options", None)
    return options.max_deliveries if isinstance(options, QueueOptions) else None
