"""The queue port: an at-least-once work queue with consumer groups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from returns.result import Result

from portside.domain._errors import ServiceError
from portside.domain._queue import DeadLetter, Delivery

__all__ = ["AsyncQueuePort", "QueuePort"]


class QueuePort(Protocol):
    """At-least-once delivery of messages on topics to consumer groups.

    - A group exists from its first ``receive`` on a topic. Messages published while
      the topic has no group are kept, and the topic's first group starts with them,
      so nothing is lost when producers start before consumers. A group created later
      starts at the end: it gets every message published after its first ``receive``.
      Within a group a message is leased to one consumer at a time.
    - A delivery not acked before its lease expires is delivered again, with
      ``attempt`` one higher. After ``max_deliveries`` attempts the message moves to
      the group's dead letters with the reason, exactly once.
    - Acked messages are removed, so storage stays bounded.
    - A consumer that restarts (same name) first gets its own unacked messages back.

    Topic, group and consumer names are 1 to 200 printable characters. Bad input is
    ``Failure(InvalidRequest)`` and changes nothing; a backend that cannot be reached
    is ``Failure(Unavailable)``, one that does not answer in time ``Failure(TimedOut)``.
    """

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        """Append a message; returns its id.

        With a ``dedupe_key`` seen on this topic within the dedupe window, nothing is
        stored and the first message's id is returned. Without one, a ``TimedOut``
        publish may have been stored: it is not retried automatically. With ``delay``
        (seconds, finite, not negative) no group gets the message before that much time
        has passed; once due it is delivered as any due message (attempt 1).
        """
        ...

    def publish_many(
        self,
        topic: str,
        bodies: Iterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Result[list[str], ServiceError]:
        """Append several messages in one round trip; returns their ids in order.

        Every body is validated first: one bad body is ``Failure(InvalidRequest)`` and
        nothing is published. A ``TimedOut`` batch may have been partly stored.
        """
        ...

    def receive(
        self,
        topic: str,
        group: str,
        consumer: str,
        *,
        max_messages: int = 1,
        wait: float = 0.0,
    ) -> Result[list[Delivery], ServiceError]:
        """Lease up to ``max_messages`` messages to ``consumer``.

        The consumer's own expired or returned deliveries come first, then others'
        expired leases, then new messages in publish order. Waits up to ``wait``
        seconds when nothing is ready; an empty list means nothing arrived.
        """
        ...

    def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """Mark the message done for the delivery's group; it is never delivered again.

        Acking a delivery whose lease was taken over by another consumer, or acking
        twice, is ``Failure(InvalidRequest)``.
        """
        ...

    def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """Ack several deliveries in one round trip; returns how many were acked.

        A delivery that ``ack`` would refuse (stale or already acked) is skipped and
        not counted; a malformed argument is ``Failure(InvalidRequest)``, nothing acked.
        """
        ...

    def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """Give the message back, to be delivered again after ``delay`` seconds.

        When the delivery was the last one ``max_deliveries`` allows, the message is
        dead-lettered instead. A negative delay, or a stale or acked delivery, is
        ``Failure(InvalidRequest)``.
        """
        ...

    def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """Push the lease ``by`` seconds past now; returns the delivery with its new lease.

        ``by`` must be positive; a stale, nacked or acked delivery is
        ``Failure(InvalidRequest)``.
        """
        ...

    def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """The messages ``group`` gave up on, oldest first."""
        ...

    def close(self) -> None:
        """Release connections; the queue must not be used afterwards."""
        ...


class AsyncQueuePort(Protocol):
    """``QueuePort`` for asyncio: the same methods, semantics and errors, awaited.

    Every method means exactly what the ``QueuePort`` method of the same name means
    (groups, leases, attempts, dead letters, dedupe, delays, the rules of
    ``portside.ports.queue_rules`` and the errors each can return are written once,
    there); only the I/O is awaited. ``receive(wait=)`` waits without blocking the event
    loop. A call cancelled at any await point leaves the queue as if it had not been
    made, or as if it had completed: a lease a cancelled ``receive`` took is never
    handed to the caller, so it falls due after ``lease_timeout`` and the message is
    delivered again (at least once); no connection is returned to the pool with an
    unread reply. ``aclose()`` replaces ``close()``.
    """

    async def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        """See ``QueuePort.publish``."""
        ...

    async def publish_many(
        self,
        topic: str,
        bodies: Iterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Result[list[str], ServiceError]:
        """See ``QueuePort.publish_many``."""
        ...

    async def receive(
        self,
        topic: str,
        group: str,
        consumer: str,
        *,
        max_messages: int = 1,
        wait: float = 0.0,
    ) -> Result[list[Delivery], ServiceError]:
        """See ``QueuePort.receive`` (a ``wait`` is awaited, never a blocked thread)."""
        ...

    async def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """See ``QueuePort.ack``."""
        ...

    async def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """See ``QueuePort.ack_many``."""
        ...

    async def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """See ``QueuePort.nack``."""
        ...

    async def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """See ``QueuePort.extend``."""
        ...

    async def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """See ``QueuePort.dead_letters``."""
        ...

    async def aclose(self) -> None:
        """Release connections; the queue must not be used afterwards."""
        ...
