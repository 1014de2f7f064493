"""A queue whose publishes fail on demand, for the outbox kit and fault tests.

Part of the outbox contract kit (``portside.adapters.testing`` re-exports it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal

import attrs
from returns.result import Failure, Result

from portside.domain._errors import ServiceError, TimedOut, Unavailable
from portside.domain._queue import DeadLetter, Delivery
from portside.ports._queue import QueuePort

__all__ = ["OutageMode", "OutageQueue"]

_SERVICE: Final = "outage-queue"

#: ``up``: every call goes through; ``down``: a publish is refused and nothing is
#: stored (``Unavailable``); ``reply_lost``: a publish is stored, then reported as
#: ``TimedOut``, as when the server's reply is lost on the way back.
OutageMode = Literal["up", "down", "reply_lost"]


@attrs.define
class OutageQueue(QueuePort):
    """``inner`` with publishes that fail while an outage lasts. For tests.

    ``fail(mode, after=n)`` lets ``n`` more publishes through, then fails every one in
    ``mode`` until ``restore()``. Receiving, acking and the rest always reach ``inner``
    (consumers are not behind the outage, only the producer is).
    """

    inner: QueuePort
    mode: OutageMode = "up"
    #: Publishes still let through before the outage starts.
    after: int = 0

    def fail(self, mode: OutageMode, *, after: int = 0) -> None:
        """Start an outage in ``mode`` after ``after`` more publishes."""
        self.mode, self.after = mode, after

    def restore(self) -> None:
        """End the outage."""
        self.mode, self.after = "up", 0

    @property
    def failing(self) -> bool:
        """Whether an outage is on (started, or to start after ``after`` publishes)."""
        return self.mode != "up"

    def _outage(self, operation: str) -> ServiceError | None:
        """The error this call meets (``None``: it goes through untouched)."""
        if self.mode == "up":
            return None
        if self.after > 0:
            self.after -= 1
            return None
        if self.mode == "down":
            return Unavailable(service=_SERVICE, operation=operation, message="the queue is down")
        return TimedOut(service=_SERVICE, operation=operation, message="the reply was lost")

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        """``inner.publish``, or the outage's error (stored first when the reply is lost)."""
        problem = self._outage("publish")
        if problem is None or self.mode == "reply_lost":
            sent = self.inner.publish(
                topic, body, headers=headers, dedupe_key=dedupe_key, delay=delay
            )
            if problem is None:
                return sent
        return Failure(problem)

    def publish_many(
        self,
        topic: str,
        bodies: Iterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Result[list[str], ServiceError]:
        """``inner.publish_many``, or the outage's error, as ``publish``."""
        problem = self._outage("publish_many")
        if problem is None or self.mode == "reply_lost":
            sent = self.inner.publish_many(topic, bodies, headers=headers)
            if problem is None:
                return sent
        return Failure(problem)

    def receive(
        self,
        topic: str,
        group: str,
        consumer: str,
        *,
        max_messages: int = 1,
        wait: float = 0.0,
    ) -> Result[list[Delivery], ServiceError]:
        """``inner.receive``."""
        return self.inner.receive(topic, group, consumer, max_messages=max_messages, wait=wait)

    def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """``inner.ack``."""
        return self.inner.ack(delivery)

    def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """``inner.ack_many``."""
        return self.inner.ack_many(deliveries)

    def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """``inner.nack``."""
        return self.inner.nack(delivery, delay=delay)

    def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """``inner.extend``."""
        return self.inner.extend(delivery, by=by)

    def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """``inner.dead_letters``."""
        return self.inner.dead_letters(topic, group)

    def close(self) -> None:
        """``inner.close``."""
        self.inner.close()
