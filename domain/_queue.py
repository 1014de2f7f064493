"""Values the queue port exchanges: messages, deliveries and dead letters."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["DeadLetter", "Delivery", "QueueMessage"]


@attrs.frozen
class QueueMessage:
    """A published message. ``id`` is assigned by the queue and unique per topic."""

    id: str
    topic: str
    body: bytes
    headers: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    published_at: float = 0.0
    dedupe_key: str | None = None


@attrs.frozen
class Delivery:
    """One delivery of a message to one consumer of one group.

    ``attempt`` counts deliveries of this message to this group, starting at 1.
    ``receipt`` is the adapter's handle for ``ack``/``nack``/``extend``.
    ``lease_expires_at`` is on the queue's clock (seconds since the epoch).
    """

    message: QueueMessage
    group: str
    consumer: str
    attempt: int
    receipt: str
    lease_expires_at: float = 0.0


@attrs.frozen
class DeadLetter:
    """A message that a group gave up on, with the reason and the attempts made."""

    message: QueueMessage
    group: str
    reason: str
    attempts: int
    dead_at: float = 0.0
