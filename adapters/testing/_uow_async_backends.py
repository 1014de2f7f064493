"""Async units of work as systems under the unit-of-work kit, through the sync bridge.

Part of the contract kit: each backend hands the kit a ``BlockingUnitOfWork`` over an
async unit, whose calls run as tasks on one event loop in a thread, so the kit's state
machine and model are exactly the sync kit's.
"""

from __future__ import annotations

import attrs

from portside.adapters.entities import Entities
from portside.adapters.memory._uow import MemoryDatabase
from portside.adapters.testing._async_bridge import EventLoopThread
from portside.adapters.testing._async_uow_bridge import BlockingUnitOfWork
from portside.adapters.testing._uow_backends import UowBackend
from portside.ports._uow import UnitOfWork

__all__ = ["AsyncMemoryBackend", "async_memory_backend"]


@attrs.define
class AsyncMemoryBackend(UowBackend):
    """A ``MemoryDatabase``'s async units of work (or a subclass's, under test)."""

    database: MemoryDatabase
    runner: EventLoopThread = attrs.field(factory=EventLoopThread, repr=False)

    def unit_of_work(self) -> UnitOfWork:
        """A new async unit of work over the database, bridged."""
        return BlockingUnitOfWork(self.database.async_unit_of_work(), self.runner)

    def reset(self) -> None:
        """Forget every committed entity."""
        self.database.clear()

    def close(self) -> None:
        """Forget every committed entity and stop the event loop."""
        self.database.clear()
        self.runner.close()


def async_memory_backend(entities: Entities) -> UowBackend:
    """The async in-memory fake as a system under test."""
    return AsyncMemoryBackend(MemoryDatabase(entities))
