"""The transactional outbox relay: messages a unit of work committed, to any queue.

``uow.publish(...)`` stores a message in the outbox table in the unit's own
transaction; an ``OutboxRelay`` moves committed messages to a ``QueuePort``; a
``RelayLoop`` runs it in rounds (in a worker, in ``portside relay``, or right after
each commit).
"""

from portside.adapters.outbox._loop import RelayLoop, RelayLoopReport
from portside.adapters.outbox._relay import OutboxRelay, RelayReport, RelayStep, dedupe_key_of

__all__ = [
    "OutboxRelay",
    "RelayLoop",
    "RelayLoopReport",
    "RelayReport",
    "RelayStep",
    "dedupe_key_of",
]
