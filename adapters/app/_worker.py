"""``run_worker``: the receive / handle / ack loop most queue users need.

The worker acks a message only after its handler returned normally; a handler that
raises or returns a ``Failure`` gets the message back later (nack with exponential
backoff on the attempt number), and after ``max_deliveries`` the queue dead-letters
it; a handler that reports ``RateLimited`` with a ``retry_after`` waits at least that
long. While a handler runs, a heartbeat thread extends the lease so a slow handler does
not see its message handed to another consumer. Stopping (a signal, or the ``stop``
event) finishes the handler in progress and gives back the messages of the batch not
yet started, so no message the worker has not acked is ever lost: at worst it is
delivered again. Given the services' ``worker_relay``, the worker also runs the outbox
relay loop in a thread beside its handlers, stopped with them.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Final

import attrs
from returns.result import Failure

from portside.adapters.app._worker_core import (
    LOG,
    Backoff,
    Tally,
    WorkerReport,
    check_worker_arguments,
    max_deliveries_of,
    plan_settlement,
    record_ack,
    record_nack,
)
from portside.domain._queue import Delivery
from portside.ports._queue import QueuePort

if TYPE_CHECKING:
    from portside.adapters.outbox import RelayLoop

__all__ = ["Backoff", "Handler", "WorkerReport", "run_worker", "stop_on_signals"]

_LOG: Final = LOG

#: Handles one delivery. Raising, or returning a ``returns`` ``Failure``, means "retry later";
#: raising or returning ``RateLimited(retry_after=s)`` means "not before ``s`` seconds".
Handler = Callable[[Delivery], object]


@contextmanager
def stop_on_signals(stop: threading.Event, enabled: bool) -> Iterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while the worker runs (main thread only)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        _LOG.info("signal %d: stopping after the messages in progress", signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _beside(run: Callable[[threading.Event], object], name: str) -> Iterator[None]:
    """Run ``run(done)`` in a thread while the block runs; set ``done`` and join at exit."""
    done = threading.Event()
    thread = threading.Thread(target=run, args=(done,), name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def _heartbeat(queue: QueuePort, delivery: Delivery, every: float, by: float) -> Iterator[None]:
    """Extend ``delivery``'s lease by ``by`` seconds every ``every`` seconds until exit."""

    def beat(done: threading.Event) -> None:
        current = delivery
        while not done.wait(every):
            extended = queue.extend(current, by=by)
            if isinstance(extended, Failure):
                # Lost the lease (or the server): the handler goes on; its ack will
                # tell, and the message is redelivered either way.
                _LOG.warning("could not extend lease of %s: %s", current.message.id, extended)
                return
            current = extended.unwrap()

    with _beside(beat, f"lease-{delivery.message.id}"):
        yield


@attrs.frozen
class _Settings:
    """What ``_handle`` needs besides the delivery."""

    queue: QueuePort
    handler: Handler
    heartbeat: float
    lease_extension: float
    backoff: Backoff
    max_deliveries: int | None
    tally: Tally


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
    drain: bool = False,
    concurrency: int = 1,
    shutdown_timeout: float = 30.0,
    idle: float = 0.5,
    max_deliveries: int | None = None,
    relay: RelayLoop | None = None,
) -> WorkerReport:
    """Receive from ``topic`` as ``consumer`` of ``group`` and handle until stopped.

    Stops when ``stop`` is set, on SIGTERM/SIGINT (when called from the main thread
    with ``handle_signals``), after ``limit`` handled messages, or with ``drain`` as
    soon as nothing is ready and nothing is in progress. Give each process a stable
    ``consumer`` name: a restarted consumer gets its own unacked messages first.
    ``concurrency`` handler threads share the queue; on stop, messages in progress get
    ``shutdown_timeout`` seconds to finish, then are given back (``nack``), as are
    received messages not yet started. When nothing is ready the worker waits (``wait``
    on the queue, and at least ``idle`` seconds between empty receives): it never spins.
    ``heartbeat`` must be well under the queue's lease timeout. Errors from the queue
    are logged and counted, never raised: a retryable ``receive`` failure is retried
    with backoff, one that cannot succeed (``InvalidRequest``, ``Unauthorized``) ends
    the loop. A handler failure is logged (topic, group, message id, attempt) and
    nacked with ``backoff.delay_after``: at least the ``retry_after`` of a
    ``RateLimited`` it raised or returned. On the message's last allowed delivery
    (``max_deliveries``, by default the queue's ``options.max_deliveries`` when it has
    them) the nack dead-letters it: logged at ERROR and counted as ``dead_lettered``.
    An exception that is not an ``Exception`` (``KeyboardInterrupt``) gives the message
    back and propagates. Messages given back count as a delivery: one given back on its
    last allowed delivery is dead-lettered. ``relay`` (``services.worker_relay``) runs
    in a thread for as long as the worker does; the worker stops it and waits for its
    round in progress before returning.

    Raises ``ValueError`` for a ``batch`` or ``concurrency`` under 1, a negative
    ``wait``, ``idle`` or ``shutdown_timeout``, or a non-positive ``heartbeat`` or
    ``lease_extension``.
    """
    check_worker_arguments(
        batch, concurrency, wait, idle, shutdown_timeout, heartbeat, lease_extension
    )
    stop = stop or threading.Event()
    max_deliveries = max_deliveries_of(queue, max_deliveries)
    tally = Tally()
    settings = _Settings(
        queue, handler, heartbeat, lease_extension, backoff or Backoff(), max_deliveries, tally
    )
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix=f"{consumer}-handler")
    running: dict[Future[None], Delivery] = {}
    backlog: deque[Delivery] = deque()
    started = idle_errors = 0
    try:
        with stop_on_signals(stop, handle_signals), _relaying(relay):
            while True:
                _reap(running, backlog, queue, tally)
                if stop.is_set():
                    break
                if backlog:
                    if len(running) < concurrency:
                        delivery = backlog.popleft()
                        started += 1
                        running[pool.submit(_handle, settings, delivery)] = delivery
                    else:
                        futures.wait(running, timeout=0.5, return_when=futures.FIRST_COMPLETED)
                    continue
                if limit is not None and started >= limit:
                    break
                if len(running) >= concurrency:
                    futures.wait(running, timeout=0.5, return_when=futures.FIRST_COMPLETED)
                    continue
                room = batch if limit is None else min(batch, limit - started)
                began = time.monotonic()
                received = queue.receive(topic, group, consumer, max_messages=room, wait=wait)
                if isinstance(received, Failure):
                    tally.add("receive_failures")
                    error = received.failure()
                    if not error.retryable:
                        # Bad names or refused credentials: asking again cannot succeed.
                        _LOG.error("receive failed for good, stopping: %s", error)
                        break
                    idle_errors += 1
                    _LOG.warning("receive failed: %s", error)
                    stop.wait(settings.backoff.delay_after(idle_errors, error))
                    continue
                idle_errors = 0
                backlog.extend(received.unwrap())
                if backlog:
                    continue
                if drain:
                    if not running:
                        break
                    futures.wait(running, return_when=futures.FIRST_COMPLETED)
                    continue
                # Nothing ready: never spin, even on a queue that answers at once.
                stop.wait(max(0.0, idle - (time.monotonic() - began)))
            _shut_down(running, backlog, queue, tally, shutdown_timeout)
    except BaseException:
        _give_back(queue, [*backlog, *running.values()], tally)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return tally.report()


@contextmanager
def _relaying(relay: RelayLoop | None) -> Iterator[None]:
    """Run ``relay``'s loop in a thread while the block runs (nothing when ``None``)."""
    if relay is None:
        yield
        return
    with _beside(relay.run, "worker-outbox-relay"):
        yield


def _reap(
    running: dict[Future[None], Delivery],
    backlog: deque[Delivery],
    queue: QueuePort,
    tally: Tally,
) -> None:
    """Forget finished handlers; one that raised a ``BaseException`` re-raises it here."""
    for future in [f for f in running if f.done()]:
        delivery = running.pop(future)
        error = future.exception()
        if error is not None:
            # Only a BaseException leaves _handle: give this message and the rest back.
            _give_back(queue, [delivery], tally)
            raise error


def _shut_down(
    running: dict[Future[None], Delivery],
    backlog: deque[Delivery],
    queue: QueuePort,
    tally: Tally,
    timeout: float,
) -> None:
    """Give back what was not started; let what runs finish until ``timeout``, then give it back."""
    _give_back(queue, list(backlog), tally)
    backlog.clear()
    late = futures.wait(running, timeout=timeout).not_done
    if late:
        _LOG.warning(
            "%d handlers still running after the %.3g s shutdown deadline: their messages "
            "are given back (their acks will be refused)",
            len(late),
            timeout,
        )
        _give_back(queue, [running.pop(future) for future in late], tally)
    _reap(running, backlog, queue, tally)


def _handle(settings: _Settings, delivery: Delivery) -> None:
    queue, tally, message = settings.queue, settings.tally, delivery.message
    tally.add("handled")
    try:
        with _heartbeat(queue, delivery, settings.heartbeat, settings.lease_extension):
            outcome = settings.handler(delivery)
    except Exception as exc:
        _LOG.exception("handler failed on message %s", message.id)
        outcome = Failure(exc)
    plan = plan_settlement(settings.backoff, settings.max_deliveries, delivery, outcome)
    if plan.ack:
        record_ack(tally, delivery, queue.ack(delivery))
    else:
        record_nack(tally, delivery, plan, queue.nack(delivery, delay=plan.delay))


def _give_back(queue: QueuePort, deliveries: list[Delivery], tally: Tally) -> None:
    """Return unstarted (or interrupted) deliveries at once instead of at lease expiry."""
    for delivery in deliveries:
        if isinstance(queue.nack(delivery, delay=0.0), Failure):
            continue  # its lease will run out and it comes back then
        tally.add("given_back")
