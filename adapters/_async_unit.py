"""The async unit of work: the sync life cycle and repositories, driven from asyncio.

Every rule of a unit of work (nesting, dooming, savepoints, the identity map, staging,
the column checks, the flush order, the error mapping, ``publish``) lives in the sync
unit (``UnitLifecycle`` and its subclasses). An async unit holds one and differs only
where I/O happens: each call that may wait for the database goes through ``_io``, which
the fake implements as a scheduling point and the SQLAlchemy adapter as
``AsyncSession.run_sync`` (SQLAlchemy's own bridge from sync ORM code to an async
driver). So an async unit cannot drift from its sync twin: there is no second copy of
any rule to drift.

Leaving the block runs to completion even when the task is cancelled meanwhile (the
cancellation is raised once it has), so no transaction or connection outlives the
block.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Generic, ParamSpec, Self, TypeVar

import attrs
from returns.result import Result

from portside.adapters._unit import UnitLifecycle
from portside.domain._errors import ServiceError
from portside.ports._query import Ordering, Where
from portside.ports._uow import AsyncRepository, AsyncUnitOfWork, Repository

__all__ = ["AsyncUnit", "AsyncUnitRepository", "run_to_completion"]

E = TypeVar("E")
T = TypeVar("T")
P = ParamSpec("P")


async def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a task of its own and wait for it, even if the caller is cancelled.

    For clean-up that must not stop half-way (ending a transaction, returning a
    connection): a cancellation received meanwhile is raised once ``coro`` is done,
    so the caller never returns while its clean-up still runs in the background.
    """
    task = asyncio.ensure_future(coro)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as error:
            if task.done():
                raise
            cancelled = error
        else:
            break
    if cancelled is not None:
        raise cancelled
    return result


@attrs.define
class AsyncUnit(AsyncUnitOfWork):
    """Base of portside's async units of work: a sync unit, and how to do its I/O."""

    _unit: UnitLifecycle = attrs.field(repr=False, alias="unit")

    @property
    def unit(self) -> UnitLifecycle:
        """The sync unit of work that holds this unit's state and rules."""
        return self._unit

    @abstractmethod
    async def _io(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the sync ``fn`` where it may wait for the database without blocking."""

    async def __aenter__(self) -> Self:
        """Begin the unit of work, or join the block already open.

        Nothing connects yet (the first read or the commit does), so this never waits.
        """
        self._unit.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave the block; the outermost exit rolls back whatever was not committed.

        Runs to completion even when the task is cancelled meanwhile.
        """
        await run_to_completion(self._io(self._unit.__exit__, exc_type, exc, tb))

    async def commit(self) -> Result[None, ServiceError]:
        """Make every staged change durable at once, or none of them.

        Results and errors as ``UnitOfWork.commit``; raises ``RuntimeError`` outside
        ``async with uow:``.
        """
        return await self._io(self._unit.commit)

    async def rollback(self) -> None:
        """Discard everything staged since the last commit."""
        await self._io(self._unit.rollback)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A part of the unit that an exception undoes alone (then the exception goes on).

        As ``UnitOfWork.savepoint``: nothing is written before ``commit()``, so taking and
        undoing a savepoint needs no I/O.
        """
        with self._unit.savepoint():
            yield

    def repository(self, entity_type: type[E]) -> AsyncRepository[E]:
        """The async repository of ``entity_type`` in this block.

        Raises ``TypeError`` for a class that is not a registered entity and
        ``RuntimeError`` outside ``async with uow:``.
        """
        return AsyncUnitRepository(self, self._unit.repository(entity_type))

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
    ) -> Result[None, ServiceError]:
        """Stage a message for ``topic``, stored in the outbox by this unit's commit.

        As ``UnitOfWork.publish`` (the queue's rules; nothing staged on a failure).
        """
        return self._unit.publish(topic, body, headers=headers, dedupe_key=dedupe_key)


@attrs.define
class AsyncUnitRepository(AsyncRepository[E], Generic[E]):
    """A sync repository's methods, each awaited through its async unit's I/O."""

    _uow: AsyncUnit
    _repository: Repository[E]

    async def add(self, entity: E) -> Result[None, ServiceError]:
        """Stage ``entity`` for insertion (results as the sync repository's ``add``).

        Staging never waits: the fake stores nothing before commit, and SQLAlchemy's
        ``Session.add`` (autoflush off) emits no SQL, its save-update cascade never
        loads. So no greenlet is started for it (measured: that was most of a batch's
        extra cost). ``remove`` does wait: a delete cascade may load related rows.
        """
        return self._repository.add(entity)

    async def get(self, key: Any) -> Result[E, ServiceError]:
        """The entity with identity ``key``; ``Failure(NotFound)`` when absent."""
        return await self._uow._io(self._repository.get, key)

    async def list(
        self,
        *,
        where: Where | None = None,
        order_by: Sequence[Ordering | str] | Ordering | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Result[list[E], ServiceError]:
        """Entities matching ``where``, in ``order_by`` order then by key, paginated."""
        return await self._uow._io(
            self._repository.list, where=where, order_by=order_by, limit=limit, offset=offset
        )

    async def count(self, *, where: Where | None = None) -> Result[int, ServiceError]:
        """How many entities match ``where``, the unit's own changes included."""
        return await self._uow._io(self._repository.count, where=where)

    async def remove(self, entity: E) -> Result[None, ServiceError]:
        """Stage the removal of ``entity``, which must have been loaded or added here."""
        return await self._uow._io(self._repository.remove, entity)
