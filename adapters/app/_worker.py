"""``run_worker``: the receive / handle / ack loop most queue users need.

The worker acks a message only after its handler returned normally; a handler that
raises or returns a ``Failure`` gets the message back later (nack with exponential
backoff on the attempt number), and after ``max_deliveries`` the queue dead-letters
it; a handler that reports ``RateLimited`` with a ``retry_after`` waits at least that
long. While a handler runs, a heartbeat thread extends the lease so a slow handler does
not see its message handed to another consumer. Stopping (a signal, or the ``stop``
event) finishes the handler in progress and gives back the messages of the batch not
yet started, so no message the worker has not acked is ever lost: at worst it is
delivered again.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final

import attrs
from returns.result import Failure

from portside.domain._errors import RateLimited
from portside.domain._queue import Delivery
from portside.ports._queue import QueuePort

__all__ = ["Backoff", "Handler", "WorkerReport", "run_worker"]

_LOG: Final = logging.getLogger("portside.queue.worker")

#: Handles one delivery. Raising, or returning a ``returns`` ``Failure``, means "retry later";
#: raising or returning ``RateLimited(retry_after=s)`` means "not before ``s`` seconds".
Handler = Callable[[Delivery], object]


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
    """What a worker did before it stopped."""

    handled: int = 0
    acked: int = 0
    retried: int = 0
    given_back: int = 0
    ack_failures: int = 0
    receive_failures: int = 0


@attrs.define
class _Tally:
    handled: int = 0
    acked: int = 0
    retried: int = 0
    given_back: int = 0
    ack_failures: int = 0
    receive_failures: int = 0

    def report(self) -> WorkerReport:
        return WorkerReport(**attrs.asdict(self))


@contextmanager
def _stop_on_signals(stop: threading.Event, enabled: bool) -> Iterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while the worker runs (main thread only)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        _LOG.info("signal %d: stopping after the current message", signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _heartbeat(queue: QueuePort, delivery: Delivery, every: float, by: float) -> Iterator[None]:
    """Extend ``delivery``'s lease by ``by`` seconds every ``every`` seconds until exit."""
    done = threading.Event()

    def beat() -> None:
        current = delivery
        while not done.wait(every):
            extended = queue.extend(current, by=by)
            if isinstance(extended, Failure):
                # Lost the lease (or the server): the handler goes on; its ack will
                # tell, and the message is redelivered either way.
                _LOG.warning("could not extend lease of %s: %s", current.message.id, extended)
                return
            current = extended.unwrap()

    thread = threading.Thread(target=beat, name=f"lease-{delivery.message.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def run_worker(
    queue: QueuePort,
    topic: str,
    group: str,
    handler: Handler,
    *,
    consumer: str = "worker",
    stop: threading.Event | None = None,
    batch: int = 1,
    wait: float = 1.0,
    heartbeat: float = 10.0,
    lease_extension: float = 30.0,
    backoff: Backoff | None = None,
    handle_signals: bool = True,
    limit: int | None = None,
) -> WorkerReport:
    """Receive from ``topic`` as ``consumer`` of ``group`` and handle until stopped.

    Stops when ``stop`` is set, on SIGTERM/SIGINT (when called from the main thread
    with ``handle_signals``), or after ``limit`` handled messages. Give each process a
    stable ``consumer`` name: a restarted consumer gets its own unacked messages first.
    ``heartbeat`` must be well under the queue's lease timeout. Errors from the queue
    are logged and counted, never raised: a retryable ``receive`` failure is retried
    with backoff, one that cannot succeed (``InvalidRequest``, ``Unauthorized``) ends
    the loop. A handler failure is nacked with ``backoff.delay_after``: at least the
    ``retry_after`` of a ``RateLimited`` it raised or returned. An exception that is not
    an ``Exception`` (``KeyboardInterrupt``) gives the message back and propagates.
    Messages given back count as a delivery: one given back on its last allowed
    delivery is dead-lettered.

    Raises ``ValueError`` for a ``batch`` under 1, a negative ``wait`` or a
    non-positive ``heartbeat`` or ``lease_extension``.
    """
    if batch < 1 or wait < 0 or heartbeat <= 0 or lease_extension <= 0:
        raise ValueError("batch must be >= 1, wait >= 0, heartbeat and lease_extension > 0")
    stop = stop or threading.Event()
    backoff = backoff or Backoff()
    tally = _Tally()
    idle_errors = 0
    with _stop_on_signals(stop, handle_signals):
        while not stop.is_set() and (limit is None or tally.handled < limit):
            room = batch if limit is None else min(batch, limit - tally.handled)
            received = queue.receive(topic, group, consumer, max_messages=room, wait=wait)
            if isinstance(received, Failure):
                tally.receive_failures += 1
                error = received.failure()
                if not error.retryable:
                    # Bad names or refused credentials: asking again cannot succeed.
                    _LOG.error("receive failed for good, stopping: %s", error)
                    break
                idle_errors += 1
                _LOG.warning("receive failed: %s", error)
                stop.wait(backoff.delay_after(idle_errors, error))
                continue
            idle_errors = 0
            deliveries = received.unwrap()
            for index, delivery in enumerate(deliveries):
                if stop.is_set():
                    _give_back(queue, deliveries[index:], tally)
                    break
                try:
                    _handle(queue, delivery, handler, heartbeat, lease_extension, backoff, tally)
                except BaseException:
                    _give_back(queue, deliveries[index:], tally)
                    raise
    return tally.report()


def _handle(
    queue: QueuePort,
    delivery: Delivery,
    handler: Handler,
    heartbeat: float,
    lease_extension: float,
    backoff: Backoff,
    tally: _Tally,
) -> None:
    tally.handled += 1
    try:
        with _heartbeat(queue, delivery, heartbeat, lease_extension):
            outcome = handler(delivery)
    except Exception as exc:
        _LOG.exception("handler failed on message %s", delivery.message.id)
        outcome = Failure(exc)
    if isinstance(outcome, Failure):
        tally.retried += 1
        delay = backoff.delay_after(delivery.attempt, outcome.failure())
        nacked = queue.nack(delivery, delay=delay)
        if isinstance(nacked, Failure):
            _LOG.warning("nack of %s failed: %s", delivery.message.id, nacked.failure())
        return
    acked = queue.ack(delivery)
    if isinstance(acked, Failure):
        # The message will be delivered again: at-least-once, never lost.
        tally.ack_failures += 1
        _LOG.warning("ack of %s failed: %s", delivery.message.id, acked.failure())
    else:
        tally.acked += 1


def _give_back(queue: QueuePort, deliveries: list[Delivery], tally: _Tally) -> None:
    """Return unstarted (or interrupted) deliveries at once instead of at lease expiry."""
    for delivery in deliveries:
        if isinstance(queue.nack(delivery, delay=0.0), Failure):
            continue  # its lease will run out and it comes back then
        tally.given_back += 1
