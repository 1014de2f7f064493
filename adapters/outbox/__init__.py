"""The transactional outbox relay: messages a unit of work committed, to any queue.

``uow.publish(...)`` stores a message in the outbox table in the unit's own
transaction; an ``OutboxRelay`` moves committed messages to a ``QueuePort``.
"""

from portside.adapters.outbox._relay import OutboxRelay, RelayReport, dedupe_key_of

__all__ = ["OutboxRelay", "RelayReport", "dedupe_key_of"]
