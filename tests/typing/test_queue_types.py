"""Type-level checks of the queue API (run by mypy --strict, and imported by pytest)."""

from __future__ import annotations

from typing import assert_type

from returns.result import Result

from portside.adapters.app import WorkerReport, run_worker
from portside.adapters.memory import ManualClock, MemoryQueue
from portside.domain import DeadLetter, Delivery, ServiceError
from portside.ports import QueuePort


def test_queue_methods_return_precise_results() -> None:
    """Every QueuePort method returns a Result of the documented value type."""
    queue: QueuePort = MemoryQueue(ManualClock())
    assert_type(queue.publish("t", b"x"), Result[str, ServiceError])
    assert_type(queue.publish_many("t", [b"x"]), Result[list[str], ServiceError])
    received = queue.receive("t", "g", "c", max_messages=2)
    assert_type(received, Result[list[Delivery], ServiceError])
    assert_type(queue.ack_many([]), Result[int, ServiceError])
    assert_type(queue.dead_letters("t", "g"), Result[list[DeadLetter], ServiceError])
    report = run_worker(queue, "t", "g", lambda d: None, wait=0, limit=0)
    assert_type(report, WorkerReport)
    assert report.handled == 0
