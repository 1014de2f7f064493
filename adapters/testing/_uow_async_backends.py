"""Async units of work as systems under the unit-of-work kit, through the sync bridge.

Part of the contract kit: each backend hands the kit a ``BlockingUnitOfWork`` over an
async unit, whose calls run as tasks on one event loop in a thread, so the kit's state
machine and model are exactly the sync kit's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from portside.adapters.entities import Entities
from portside.adapters.memory._uow import MemoryDatabase
from portside.adapters.sqlalchemy._async_database import AsyncDatabase
from portside.adapters.testing._async_bridge import EventLoopThread
from portside.adapters.testing._async_uow_bridge import BlockingUnitOfWork
from portside.adapters.testing._uow_backends import UowBackend, delete_rows
from portside.ports._uow import UnitOfWork

__all__ = [
    "AsyncMemoryBackend",
    "AsyncSqlBackend",
    "async_memory_backend",
    "async_sqlalchemy_backend",
]


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


@attrs.define
class AsyncSqlBackend(UowBackend):
    """An ``AsyncDatabase``'s units of work, bridged; it creates and drops the kit's tables."""

    database: AsyncDatabase
    runner: EventLoopThread = attrs.field(factory=EventLoopThread, repr=False)

    def unit_of_work(self) -> UnitOfWork:
        """A new async SQLAlchemy unit of work, bridged."""
        return BlockingUnitOfWork(self.database.unit_of_work(), self.runner)

    def reset(self) -> None:
        """Delete every row of the kit's tables."""
        self.runner.run(self._run(delete_rows))

    async def _run(self, work: Callable[[Any, Entities], None]) -> None:
        assert self.database.engine is not None
        async with self.database.engine.begin() as connection:
            await connection.run_sync(work, self.database.entities)

    def close(self) -> None:
        """Drop the kit's tables, dispose the engine and stop the event loop."""
        try:
            self.runner.run(self._run(lambda connection, entities: entities.drop_all(connection)))
            self.runner.run(self.database.close())
        finally:
            self.runner.close()


def async_sqlalchemy_backend(url: str, **engine_options: Any) -> Callable[[Entities], UowBackend]:
    """A factory of async SQLAlchemy backends on ``url`` (a sync driver's URL works too).

    Each creates the kit's tables on its event loop and drops them when closed.
    """

    def make(entities: Entities) -> UowBackend:
        backend = AsyncSqlBackend(AsyncDatabase.from_url(entities, url, **engine_options))
        backend.runner.run(backend.database.create_all())
        return backend

    return make
