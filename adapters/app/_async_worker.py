"""``run_async_worker``: ``run_worker`` for asyncio, on an ``AsyncQueuePort``.

The same contract as the thread worker, with tasks instead of threads: up to
``concurrency`` handlers run at once on the event loop; a message is acked only after its
handler returned normally; a failure (raised or returned) is nacked with the shared
backoff, and the message's last allowed delivery is dead-lettered (the decisions and
counters are ``_worker_core``'s, shared with ``run_worker``). A heartbeat task per
delivery extends its lease while the handler runs. Stopping (the ``stop`` event, or
SIGTERM/SIGINT) stops receiving at once (a receive that is waiting is cancelled, which the
async queues allow), lets the handlers in progress finish for ``shutdown_timeout``
seconds, then cancels the late ones and gives their messages back, so no message the
worker did not ack is lost: at worst it is delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

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
from portside.ports._queue import AsyncQueuePort

__all__ = ["AsyncHandler", "run_async_worker"]

#: Handles one delivery, awaited. Raising, or returning a ``returns`` ``Failure``, means
#: "retry later"; ``RateLimited(retry_after=s)`` means "not before ``s`` seconds".
AsyncHandler = Callable[[Delivery], Awaitable[object]]


@attrs.frozen
class _Settings:
    """What ``_handle`` needs besides the delivery."""

    queue: AsyncQueuePort
    handler: AsyncHandler
    heartbeat: float
    lease_extension: float
    backoff: Backoff
    max_deliveries: int | None
    tally: Tally


async def run_async_worker(
    queue: AsyncQueuePort,
    topic: str,
    group: str,
    handler: AsyncHandler,
    *,
    consumer: str = "worker",
    stop: asyncio.Event | None = None,
    concurrency: int = 1,
    wait: float = 1.0,
    heartbeat: float = 10.0,
    lease_extension: float = 30.0,
    backoff: Backoff | None = None,
    handle_signals: bool = True,
    limit: int | None = None,
    drain: bool = False,
    shutdown_timeout: float = 30.0,
    idle: float = 0.5,
    max_deliveries: int | None = None,
) -> WorkerReport:
    """Receive from ``topic`` as ``consumer`` of ``group`` and handle until stopped.

    ``run_worker``'s arguments and answers, on the event loop: stops when ``stop`` is
    set, on SIGTERM/SIGINT (``handle_signals``, from the main thread's loop), after
    ``limit`` handled messages, or with ``drain`` once nothing is ready and nothing is in
    progress. ``concurrency`` handler tasks run at once; the worker receives only as
    many messages as it has free handlers, so nothing it holds waits unstarted. On stop,
    handlers in progress get ``shutdown_timeout`` seconds, then are cancelled and their
    messages given back (``nack``). Queue errors are logged and counted, never raised;
    a receive failure that cannot succeed (``InvalidRequest``, ``Unauthorized``) ends the
    loop. A ``BaseException`` from a handler that is not an ``Exception`` gives every
    message in progress back and propagates; so does the worker's own cancellation.

    Raises ``ValueError`` for a ``concurrency`` under 1, a negative ``wait``, ``idle``
    or ``shutdown_timeout``, or a non-positive ``heartbeat`` or ``lease_extension``.
    """
    check_worker_arguments(1, concurrency, wait, idle, shutdown_timeout, heartbeat, lease_extension)
    stop = stop or asyncio.Event()
    max_deliveries = max_deliveries_of(queue, max_deliveries)
    tally = Tally()
    settings = _Settings(
        queue, handler, heartbeat, lease_extension, backoff or Backoff(), max_deliveries, tally
    )
    running: dict[asyncio.Task[None], Delivery] = {}
    started = idle_errors = 0
    loop = asyncio.get_running_loop()
    stopped = asyncio.ensure_future(stop.wait())
    try:
        async with _stop_on_signals(stop, handle_signals):
            while not stop.is_set():
                _reap(running)
                if limit is not None and started >= limit:
                    break
                room = concurrency - len(running)
                if room <= 0:
                    await asyncio.wait([*running, stopped], return_when=asyncio.FIRST_COMPLETED)
                    continue
                if limit is not None:
                    room = min(room, limit - started)
                began = loop.time()
                received = await _until_stopped(
                    queue.receive(topic, group, consumer, max_messages=room, wait=wait), stopped
                )
                if received is None:
                    break  # stopped while waiting for messages: nothing was taken
                if isinstance(received, Failure):
                    tally.add("receive_failures")
                    error = received.failure()
                    if not error.retryable:
                        # Bad names or refused credentials: asking again cannot succeed.
                        LOG.error("receive failed for good, stopping: %s", error)
                        break
                    idle_errors += 1
                    LOG.warning("receive failed: %s", error)
                    await _pause(settings.backoff.delay_after(idle_errors, error), stopped)
                    continue
                idle_errors = 0
                deliveries = received.unwrap()
                for delivery in deliveries:
                    started += 1
                    running[asyncio.ensure_future(_handle(settings, delivery))] = delivery
                if deliveries:
                    continue
                if drain:
                    if not running:
                        break
                    await asyncio.wait([*running, stopped], return_when=asyncio.FIRST_COMPLETED)
                    continue
                # Nothing ready: never spin, even on a queue that answers at once.
                await _pause(max(0.0, idle - (loop.time() - began)), stopped)
            await _shut_down(running, queue, tally, shutdown_timeout)
    except BaseException:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await _give_back(queue, list(running.values()), tally)
        raise
    finally:
        stopped.cancel()
    return tally.report()


async def _until_stopped(call: Awaitable[Any], stopped: asyncio.Future[Any]) -> Any:
    """``await call``, or ``None`` (the call cancelled) once ``stopped`` is done."""
    task = asyncio.ensure_future(call)
    await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    try:
        return await task  # it may have finished before the cancellation landed
    except asyncio.CancelledError:
        return None


async def _pause(seconds: float, stopped: asyncio.Future[Any]) -> None:
    """Wait ``seconds``, or less if the worker is stopped meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(stopped), timeout=seconds)


@contextlib.asynccontextmanager
async def _stop_on_signals(stop: asyncio.Event, enabled: bool) -> AsyncIterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while the worker runs (the main thread's loop only)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    installed = []

    def on_signal(signum: int) -> None:
        LOG.info("signal %d: stopping after the messages in progress", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not on this platform or loop
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _reap(running: dict[asyncio.Task[None], Delivery]) -> None:
    """Forget finished handlers; one that raised a ``BaseException`` re-raises it here."""
    for task in [t for t in running if t.done()]:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            # Only a BaseException leaves _handle: the caller gives this message (still
            # in ``running``) and the rest back.
            raise error
        running.pop(task)


async def _shut_down(
    running: dict[asyncio.Task[None], Delivery],
    queue: AsyncQueuePort,
    tally: Tally,
    timeout: float,
) -> None:
    """Let what runs finish until ``timeout``; then cancel it and give its messages back."""
    if running:
        _done, late = await asyncio.wait(running, timeout=timeout)
        if late:
            LOG.warning(
                "%d handlers still running after the %.3g s shutdown deadline: cancelled, "
                "their messages are given back",
                len(late),
                timeout,
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            await _give_back(queue, [running.pop(task) for task in late], tally)
    _reap(running)


async def _heartbeat(settings: _Settings, delivery: Delivery) -> None:
    """Extend ``delivery``'s lease every ``heartbeat`` seconds until cancelled."""
    current = delivery
    while True:
        await asyncio.sleep(settings.heartbeat)
        extended = await settings.queue.extend(current, by=settings.lease_extension)
        if isinstance(extended, Failure):
            # Lost the lease (or the server): the handler goes on; its ack will tell,
            # and the message is redelivered either way.
            LOG.warning("could not extend lease of %s: %s", current.message.id, extended)
            return
        current = extended.unwrap()


async def _handle(settings: _Settings, delivery: Delivery) -> None:
    queue, tally = settings.queue, settings.tally
    tally.add("handled")
    beat = asyncio.ensure_future(_heartbeat(settings, delivery))
    try:
        outcome = await settings.handler(delivery)
    except Exception as exc:
        LOG.exception("handler failed on message %s", delivery.message.id)
        outcome = Failure(exc)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    plan = plan_settlement(settings.backoff, settings.max_deliveries, delivery, outcome)
    if plan.ack:
        record_ack(tally, delivery, await queue.ack(delivery))
    else:
        record_nack(tally, delivery, plan, await queue.nack(delivery, delay=plan.delay))


async def _give_back(queue: AsyncQueuePort, deliveries: list[Delivery], tally: Tally) -> None:
    """Return interrupted deliveries at once instead of at lease expiry."""
    for delivery in deliveries:
        if isinstance(await queue.nack(delivery, delay=0.0), Failure):
            continue  # its lease will run out and it comes back then
        tally.add("given_back")
