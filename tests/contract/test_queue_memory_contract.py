"""The queue contract kit against the in-memory queue, and the kit's negative controls."""

from __future__ import annotations

import math
from collections import deque

import pytest
from hypothesis import Phase, settings
from returns.result import Result

from portside.adapters.memory._queue import MemoryQueue, _Group, _Lease, _Topic
from portside.adapters.testing import MemoryQueueFaults, check_queue_contract
from portside.domain import ServiceError
from portside.ports import Clock, QueuePort
from portside.ports.queue_rules import CheckedHeaders, QueueOptions, check_headers

_NO_SHRINK = settings(phases=[Phase.explicit, Phase.reuse, Phase.generate], database=None)


def _memory(clock: Clock, options: QueueOptions) -> QueuePort:
    return MemoryQueue(clock, options)


def test_memory_queue_meets_the_contract() -> None:
    """A fresh MemoryQueue behaves exactly like the model (the kit runs cleanly)."""
    check_queue_contract(_memory, faults=MemoryQueueFaults(), max_examples=60, steps=40)


class _NoRedelivery(MemoryQueue):
    """Forgets the visibility timeout: only nacked messages ever come back."""

    def _due(self, lease: _Lease, now: float) -> bool:
        return lease.receipt is None and lease.due <= now


class _LostAttempt(MemoryQueue):
    """Redelivers without counting the delivery."""

    def _next_attempt(self, lease: _Lease) -> int:
        return lease.attempt


class _BuriedTwice(MemoryQueue):
    """Adds the dead letter but leaves the message pending, so it is buried again."""

    def _bury(
        self,
        state: _Topic,
        group_name: str,
        group: _Group,
        message_id: str,
        lease: _Lease,
        reason: str,
        now: float,
    ) -> None:
        from portside.domain import DeadLetter

        message = state.messages[message_id].message
        group.dead.append(DeadLetter(message, group_name, reason, lease.attempt, now))


class _AckKeepsLease(MemoryQueue):
    """Ack answers Success but only invalidates the receipt; the lease runs out later."""

    def _settle(self, state: _Topic, group: _Group, message_id: str, lease: _Lease) -> None:
        lease.receipt = None


class _FirstGroupStartsAtTheEnd(MemoryQueue):
    """Keeps messages published before any group, but never hands them to the first one."""

    def _backlog(self, state: _Topic) -> deque[str]:
        return deque()


class _TextOrderedIds(MemoryQueue):
    """Orders due messages by id compared as text, as Redis leases once were (10 before 6)."""

    @staticmethod
    def _order(item: tuple[str, _Lease]) -> tuple[float, str]:  # type: ignore[override]
        return (item[1].due, str(item[1].seq))


class _AdoptsOnlyAtStartUp(MemoryQueue):
    """Recovers messages whose lease was lost only in a new process, never while running."""

    def simulate_lost_leases(self, topic: str, group: str) -> None:
        super().simulate_lost_leases(topic, group)
        found = self._topics[topic].groups.get(group) if topic in self._topics else None
        for lease in found.pending.values() if found is not None else ():
            lease.due = math.inf


class _UnboundedHeaders(MemoryQueue):
    """Checks header names and values but not their size: a 50 MB header is taken."""

    def _check_headers(
        self, headers: object, operation: str
    ) -> Result[CheckedHeaders, ServiceError]:
        roomy = QueueOptions(max_body_bytes=1 << 40)
        checked = check_headers(headers, roomy, operation=operation, service="memory-queue")
        return checked.map(lambda found: CheckedHeaders(found.values, 0))


class _EveryGroupGetsTheBacklog(MemoryQueue):
    """Hands whatever is still stored to every new group, not only the first."""

    def _backlog(self, state: _Topic) -> deque[str]:
        for stored in state.messages.values():
            stored.needed_by += 1
        return deque(state.messages)


@pytest.mark.parametrize(
    "broken",
    [
        _NoRedelivery,
        _LostAttempt,
        _BuriedTwice,
        _AckKeepsLease,
        _FirstGroupStartsAtTheEnd,
        _EveryGroupGetsTheBacklog,
        _UnboundedHeaders,
        _TextOrderedIds,
        _AdoptsOnlyAtStartUp,
    ],
    ids=[
        "no-redelivery",
        "lost-attempt",
        "dead-lettered-twice",
        "ack-keeps-message",
        "backlog-lost",
        "backlog-to-late-groups",
        "unbounded-headers",
        "text-ordered-ids",
        "adoption-only-at-start-up",
    ],
)
def test_kit_catches_a_broken_queue(broken: type[MemoryQueue]) -> None:
    """Each deliberately broken queue fails the contract kit."""

    def factory(clock: Clock, options: QueueOptions) -> QueuePort:
        return broken(clock, options)

    with pytest.raises(AssertionError):
        # Finding the bug is the point here; shrinking it would only cost time.
        check_queue_contract(
            factory, faults=MemoryQueueFaults(), max_examples=300, steps=40, extra=_NO_SHRINK
        )
