"""Negative controls: deliberately broken units and relays that the outbox kit must reject."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from returns.result import Failure, Result, Success

from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryDatabase, MemoryQueue
from portside.adapters.memory._uow import MemoryUnitOfWork
from portside.adapters.outbox import OutboxRelay, RelayReport, RelayStep
from portside.adapters.testing import (
    MemoryBackend,
    OutageQueue,
    RelayLike,
    check_outbox,
    memory_backend,
    outbox_relay,
)
from portside.domain import ServiceError
from portside.ports import QueuePort

HUNT = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    database=None,
    report_multiple_bugs=False,
    # Finding the bug is the point; shrinking it would only cost time.
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_queues: list[QueuePort] = []


def _fresh_queue() -> QueuePort:
    """A new MemoryQueue per example, remembered so a broken unit can reach it."""
    _queues.append(MemoryQueue())
    return _queues[-1]


class EagerUnit(MemoryUnitOfWork):
    """Publishes straight to the queue when asked, before (and whether or not) it commits."""

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
    ) -> Result[None, ServiceError]:
        self.ensure_open()
        return _queues[-1].publish(topic, body, headers=headers).map(lambda _: None)


class EagerDatabase(MemoryDatabase):
    def unit_of_work(self) -> MemoryUnitOfWork:
        return EagerUnit(self)


def _eager_backend(entities: Entities) -> MemoryBackend:
    return MemoryBackend(EagerDatabase(entities))


class _Taken(MemoryQueue):
    """Takes what a relay publishes without delivering it, to be sent later."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, bytes, dict[str, str], str | None]] = []

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        self.sent.append((topic, body, dict(headers or {}), dedupe_key))
        return Success(str(len(self.sent)))


@attrs.define
class MarksBeforePublishing:
    """Removes the messages from the outbox first, then publishes them."""

    database: Any
    queue: QueuePort
    clock: Callable[[], float]
    on_step: Callable[[RelayStep], None]

    def relay_once(self, *, max_messages: int = 100) -> Result[RelayReport, ServiceError]:
        taken = _Taken()
        removed = OutboxRelay(self.database, taken, clock=self.clock).relay_once(
            max_messages=max_messages
        )
        if isinstance(removed, Failure):
            return removed
        self.on_step("claimed")
        for topic, body, headers, dedupe_key in taken.sent:
            sent = self.queue.publish(topic, body, headers=headers, dedupe_key=dedupe_key)
            if isinstance(sent, Failure):
                return Failure(sent.failure())
            self.on_step("published")
        self.on_step("marked")
        return removed


class WithoutDedupe(OutageQueue):
    """Drops the dedupe key of every publish (a relay that sends none)."""

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        return super().publish(topic, body, headers=headers, delay=delay)


def _without_dedupe(
    database: Any,
    queue: QueuePort,
    clock: Callable[[], float],
    on_step: Callable[[RelayStep], None],
) -> RelayLike:
    return outbox_relay(database, WithoutDedupe(queue), clock, on_step)


def test_publishing_before_commit_fails_the_kit() -> None:
    """A unit that sends its message to the queue before committing fails the kit."""
    with pytest.raises(AssertionError, match=r"did not commit|before its unit committed"):
        check_outbox(_eager_backend, _fresh_queue, hypothesis_settings=HUNT)


@pytest.mark.slow
def test_marking_before_publishing_fails_the_kit() -> None:
    """A relay that removes messages before publishing them loses some: the kit fails."""
    # A lost message shows as a gap in its topic's order, or as missing at the end.
    with pytest.raises(AssertionError, match=r"never delivered|committed in order"):
        check_outbox(
            memory_backend, MemoryQueue, make_relay=MarksBeforePublishing, hypothesis_settings=HUNT
        )


def test_a_relay_without_dedupe_keys_fails_the_kit() -> None:
    """A relay that publishes without a dedupe key delivers twice after a crash: it fails."""
    with pytest.raises(AssertionError, match="in the queue twice"):
        check_outbox(
            memory_backend, MemoryQueue, make_relay=_without_dedupe, hypothesis_settings=HUNT
        )
