"""run_worker over the in-memory queue: ack, retry with backoff, heartbeat, stopping."""

from __future__ import annotations

import logging
import os
import signal
import threading

import pytest
from returns.result import Failure, Result, Success

from portside.adapters.app import Backoff, run_worker
from portside.adapters.memory import ManualClock, MemoryQueue
from portside.domain import Delivery, RateLimited, ServiceError
from portside.ports.queue_rules import QueueOptions


@pytest.fixture(name="queue")
def _queue(manual_clock: ManualClock) -> MemoryQueue:
    queue = MemoryQueue(manual_clock, QueueOptions(lease_timeout=30.0, max_deliveries=3))
    queue.receive("t", "g", "probe").unwrap()
    return queue


def test_backoff_grows_exponentially_up_to_the_maximum() -> None:
    """Backoff doubles per attempt and is capped."""
    backoff = Backoff(base=1.0, factor=2.0, maximum=5.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_retry_after_is_a_floor_that_the_maximum_does_not_cap() -> None:
    """A RateLimited retry_after longer than the backoff wins; a shorter one does not."""
    backoff = Backoff(base=1.0, factor=2.0, maximum=5.0)
    slow = RateLimited(service="s", operation="o", message="m", retry_after=42.0)
    quick = RateLimited(service="s", operation="o", message="m", retry_after=0.5)
    unknown = RateLimited(service="s", operation="o", message="m")
    assert backoff.delay_after(2, slow) == 42.0
    assert backoff.delay_after(2, quick) == 2.0
    assert backoff.delay_after(2, unknown) == 2.0
    assert backoff.delay_after(2, RuntimeError("boom")) == 2.0


@pytest.mark.parametrize("how", ["returned", "raised"])
def test_rate_limited_handler_waits_for_retry_after(queue: MemoryQueue, how: str) -> None:
    """A handler reporting RateLimited(retry_after=60) gets its message back after 60 s."""
    queue.publish("t", b"x").unwrap()
    limited = RateLimited(service="api", operation="call", message="slow down", retry_after=60.0)

    def handler(_: Delivery) -> Result[None, ServiceError]:
        if how == "raised":
            raise limited
        return Failure(limited)

    report = run_worker(queue, "t", "g", handler, wait=0, limit=1, backoff=Backoff(base=1.0))
    assert report.retried == 1
    queue.clock.sleep(59.0)
    assert queue.receive("t", "g", "c").unwrap() == []
    queue.clock.sleep(1.0)
    assert [d.attempt for d in queue.receive("t", "g", "c").unwrap()] == [2]


def test_handled_messages_are_acked(queue: MemoryQueue) -> None:
    """Messages whose handler returns are acked and gone from the queue."""
    queue.publish_many("t", [b"a", b"b", b"c"]).unwrap()
    seen: list[bytes] = []
    report = run_worker(
        queue, "t", "g", lambda d: seen.append(d.message.body), batch=2, wait=0, limit=3
    )
    assert seen == [b"a", b"b", b"c"]
    assert (report.handled, report.acked) == (3, 3)
    assert queue.stored("t") == 0


def test_handler_error_nacks_with_backoff(queue: MemoryQueue) -> None:
    """A raising handler's message comes back only after the backoff delay."""
    queue.publish("t", b"x").unwrap()

    def fail(_: Delivery) -> None:
        raise RuntimeError("boom")

    report = run_worker(queue, "t", "g", fail, wait=0, limit=1, backoff=Backoff(base=7.0))
    assert report.retried == 1
    assert queue.receive("t", "g", "c").unwrap() == []
    queue.clock.sleep(7.0)
    assert [d.attempt for d in queue.receive("t", "g", "c").unwrap()] == [2]


def test_handler_failure_value_nacks(queue: MemoryQueue) -> None:
    """A handler returning Failure is retried like one that raised, until dead-lettered."""
    queue.publish("t", b"x").unwrap()

    def refuse(_: Delivery) -> Result[None, ServiceError]:
        return Failure(ServiceError(message="no"))

    report = run_worker(queue, "t", "g", refuse, wait=0, limit=3, backoff=Backoff(base=0.0))
    assert (report.retried, report.dead_lettered, report.acked) == (2, 1, 0)
    assert [dl.attempts for dl in queue.dead_letters("t", "g").unwrap()] == [3]


def test_stop_gives_back_the_rest_of_the_batch(queue: MemoryQueue) -> None:
    """When stopped mid-batch, unstarted messages are returned at once, not lost."""
    queue.publish_many("t", [b"a", b"b", b"c"]).unwrap()
    stop = threading.Event()

    def first_then_stop(_: Delivery) -> None:
        stop.set()

    report = run_worker(queue, "t", "g", first_then_stop, batch=3, wait=0, stop=stop)
    assert (report.acked, report.given_back) == (1, 2)
    again = queue.receive("t", "g", "worker", max_messages=5).unwrap()
    assert [(d.message.body, d.attempt) for d in again] == [(b"b", 2), (b"c", 2)]


def test_interrupt_gives_the_message_back_and_propagates(queue: MemoryQueue) -> None:
    """A KeyboardInterrupt in the handler returns the message and is re-raised."""
    queue.publish("t", b"x").unwrap()

    def interrupted(_: Delivery) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_worker(queue, "t", "g", interrupted, wait=0, limit=1, handle_signals=False)
    assert [d.message.body for d in queue.receive("t", "g", "c").unwrap()] == [b"x"]


def test_sigterm_stops_after_the_current_message(queue: MemoryQueue) -> None:
    """SIGTERM lets the running handler finish and ack, then the worker returns."""
    queue.publish_many("t", [b"a", b"b"]).unwrap()
    before = signal.getsignal(signal.SIGTERM)

    def terminate(_: Delivery) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    report = run_worker(queue, "t", "g", terminate, wait=0)
    assert (report.handled, report.acked) == (1, 1)
    assert signal.getsignal(signal.SIGTERM) is before


class _CountingExtends(MemoryQueue):
    """Counts lease extensions so a test can wait for the heartbeat."""

    extended: threading.Semaphore

    def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        result = super().extend(delivery, by=by)
        if isinstance(result, Success):
            self.extended.release()
        return result


def test_heartbeat_extends_the_lease_of_a_long_handler(manual_clock: ManualClock) -> None:
    """While a handler runs, its lease keeps being pushed forward, and the ack succeeds."""
    queue = _CountingExtends(manual_clock, QueueOptions(lease_timeout=30.0))
    queue.extended = threading.Semaphore(0)
    queue.receive("t", "g", "probe").unwrap()
    queue.publish("t", b"slow").unwrap()
    beats: list[bool] = []

    def slow(delivery: Delivery) -> None:
        beats.extend(queue.extended.acquire(timeout=10) for _ in range(2))
        # Past the original lease: without the heartbeat another consumer takes it.
        manual_clock.advance(45.0)
        assert queue.receive("t", "g", "thief").unwrap() == []

    report = run_worker(
        queue, "t", "g", slow, wait=0, limit=1, heartbeat=0.005, lease_extension=60.0
    )
    assert beats == [True, True]
    assert report.acked == 1


def test_a_receive_error_that_cannot_succeed_ends_the_loop(queue: MemoryQueue) -> None:
    """An InvalidRequest from receive (a bad topic name) stops the worker instead of spinning."""
    report = run_worker(queue, "", "g", lambda _: None, wait=0, limit=5)
    assert (report.receive_failures, report.handled) == (1, 0)


def test_impossible_worker_settings_raise(queue: MemoryQueue) -> None:
    """A batch of zero is a programming error, raised before anything is received."""
    with pytest.raises(ValueError, match="batch"):
        run_worker(queue, "t", "g", lambda _: None, batch=0)


def test_drain_mode_stops_once_the_queue_is_empty(queue: MemoryQueue) -> None:
    """With drain=True the worker handles what is ready and returns, without a stop event."""
    queue.publish_many("t", [b"a", b"b", b"c"]).unwrap()
    report = run_worker(queue, "t", "g", lambda _: None, batch=2, wait=0, drain=True)
    assert (report.handled, report.acked) == (3, 3)


class _CountingReceives(MemoryQueue):
    """Counts receive calls, to tell a waiting worker from a spinning one."""

    receives: int = 0

    def receive(self, *args: object, **kwargs: object) -> Result[list[Delivery], ServiceError]:
        self.receives += 1
        return super().receive(*args, **kwargs)  # type: ignore[arg-type]


def test_an_empty_queue_is_polled_at_the_idle_pace_not_in_a_busy_loop() -> None:
    """wait=0 on an empty queue: a receive about every `idle` seconds, not thousands."""
    queue = _CountingReceives()
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    report = run_worker(queue, "t", "g", lambda _: None, wait=0, idle=0.1, stop=stop)
    assert report.handled == 0
    assert 2 <= queue.receives <= 10


def test_retries_and_dead_letters_are_logged_and_counted_apart(
    queue: MemoryQueue, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry is a WARNING and the dead letter an ERROR, naming topic, group, id, attempt."""
    message_id = queue.publish("t", b"x").unwrap()

    def refuse(_: Delivery) -> Result[None, ServiceError]:
        return Failure(ServiceError(message="no"))

    with caplog.at_level(logging.WARNING, logger="portside.queue.worker"):
        report = run_worker(queue, "t", "g", refuse, wait=0, limit=3, backoff=Backoff(base=0.0))
    assert (report.retried, report.dead_lettered) == (2, 1)
    retries = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    dead = [r for r in caplog.records if r.getMessage().startswith("dead-lettered")]
    assert [r.levelno for r in retries] == [logging.WARNING] * 2
    assert [r.levelno for r in dead] == [logging.ERROR]
    for record, attempt in zip([*retries, *dead], (1, 2, 3), strict=True):
        text = record.getMessage()
        for words in (message_id, "'t'", "'g'", f"attempt {attempt}"):
            assert words in text


def test_handlers_run_on_several_threads_sharing_one_queue(queue: MemoryQueue) -> None:
    """concurrency=4 runs four handlers at once (they meet at a barrier) and acks them all."""
    queue.publish_many("t", [b"1", b"2", b"3", b"4"]).unwrap()
    barrier = threading.Barrier(4, timeout=10)
    report = run_worker(
        queue, "t", "g", lambda _: barrier.wait(), batch=4, wait=0, concurrency=4, drain=True
    )
    assert (report.handled, report.acked) == (4, 4)
    assert queue.stored("t") == 0


def test_stopping_gives_a_handler_until_the_deadline_then_gives_its_message_back(
    queue: MemoryQueue,
) -> None:
    """A handler still running at the shutdown deadline has its message returned at once."""
    queue.publish("t", b"slow").unwrap()
    stop, release = threading.Event(), threading.Event()

    def slow(_: Delivery) -> None:
        stop.set()
        release.wait(10)

    report = run_worker(queue, "t", "g", slow, wait=0, stop=stop, shutdown_timeout=0.1)
    assert (report.handled, report.acked, report.given_back) == (1, 0, 1)
    [again] = queue.receive("t", "g", "other").unwrap()
    assert (again.message.body, again.attempt) == (b"slow", 2)
    release.set()
