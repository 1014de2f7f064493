"""The unit-of-work port: transactions that really roll back, and repositories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from returns.result import Result

from portside.domain._errors import ServiceError
from portside.ports._query import Ordering, Where

__all__ = ["AsyncRepository", "AsyncUnitOfWork", "Repository", "UnitOfWork"]

E = TypeVar("E")


class Repository(Protocol[E]):
    """Entities of one type inside one unit of work.

    Usable only inside ``with uow:``; outside it every method raises ``RuntimeError``
    (a programming error).
    """

    def add(self, entity: E) -> Result[None, ServiceError]:
        """Stage ``entity`` for insertion at the next commit."""
        ...

    def get(self, key: Any) -> Result[E, ServiceError]:
        """The entity with identity ``key``; ``Failure(NotFound)`` when absent.

        Within one unit of work the same key gives the same object.
        """
        ...

    def list(
        self,
        *,
        where: Where | None = None,
        order_by: Sequence[Ordering | str] | Ordering | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Result[list[E], ServiceError]:
        """Entities matching ``where``, in ``order_by`` order then by key, paginated.

        ``where`` is a mapping of field to value (equality), a ``Condition`` or a
        sequence of them (see ``portside.ports.field``); a field name in ``order_by``
        means ascending. ``Failure(InvalidRequest)`` naming the argument for an unknown
        field, a value its column cannot hold, or a bad page; ``Failure(Unavailable)``
        or ``Failure(TimedOut)`` when the database cannot answer.
        """
        ...

    def count(self, *, where: Where | None = None) -> Result[int, ServiceError]:
        """How many entities match ``where`` (the unit's own changes included).

        Errors as ``list``.
        """
        ...

    def remove(self, entity: E) -> Result[None, ServiceError]:
        """Stage ``entity`` for deletion at the next commit."""
        ...


class UnitOfWork(Protocol):
    """A transaction boundary: ``with uow:`` ... ``uow.commit()``.

    1. leaving the block without ``commit()`` discards adds, changes and removals;
    2. an exception in the block rolls back and propagates;
    3. mutating a loaded entity without commit changes nothing durable;
    4. ``get(k)`` twice in one unit of work returns the same object;
    5. reads inside the unit of work see its own writes;
    6. another unit of work does not see uncommitted data;
    7. of two units that loaded version 1 of an entity, the second commit is
       ``Failure(Conflict)`` and writes nothing;
    8. ``commit()`` twice commits what changed in between; ``commit()`` after
       ``rollback()`` commits nothing staged before it; any use after the block has
       exited raises ``RuntimeError``;
    9. the cost of a commit grows with what it touched, not with the store's size.

    A nested ``with uow:`` joins the outer block; only the outermost exit ends the
    transaction, and an exception in an inner block dooms the outer commit (even when
    the caller catches it). To recover from a failed part, use ``savepoint()``.
    """

    def __enter__(self) -> Self:
        """Begin the unit of work (or join the one already open)."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the block; roll back anything not committed."""
        ...

    def commit(self) -> Result[None, ServiceError]:
        """Make every staged change durable at once, or none of them.

        ``Failure(Conflict)`` on a version clash or uniqueness violation (nothing
        written). ``Failure(Unavailable)`` when the connection was lost: before the
        commit was sent nothing was written; if the reply to the commit itself was
        lost, the transaction may have been applied. Either way it is whole or absent,
        never partial; load the entities again to find out which.
        """
        ...

    def rollback(self) -> None:
        """Discard everything staged since the last commit."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """``with uow.savepoint():`` — an exception leaving it undoes only its part.

        The exception propagates; everything staged before the savepoint stays, and the
        unit can still commit. ``commit()`` inside a savepoint is ``Failure(InvalidRequest)``.
        """
        ...

    def repository(self, entity_type: type[E]) -> Repository[E]:
        """The repository of ``entity_type`` bound to this unit of work."""
        ...

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
    ) -> Result[None, ServiceError]:
        """Stage a message in the outbox: stored by this unit's commit, or not at all.

        A relay (``portside.adapters.outbox``) later publishes it to a queue.
        ``Failure(InvalidRequest)`` naming the argument for input the queue rules refuse.
        """
        ...


class AsyncRepository(Protocol[E]):
    """``Repository`` for asyncio: the same methods, arguments, results and errors, awaited.

    Usable only inside ``async with uow:``; outside it every method raises
    ``RuntimeError`` (a programming error).
    """

    async def add(self, entity: E) -> Result[None, ServiceError]:
        """Stage ``entity`` for insertion at the next commit (as ``Repository.add``)."""
        ...

    async def get(self, key: Any) -> Result[E, ServiceError]:
        """The entity with identity ``key``; ``Failure(NotFound)`` when absent.

        Within one unit of work the same key gives the same object.
        """
        ...

    async def list(
        self,
        *,
        where: Where | None = None,
        order_by: Sequence[Ordering | str] | Ordering | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Result[list[E], ServiceError]:
        """Entities matching ``where``, in ``order_by`` order then by key, paginated.

        Arguments and errors as ``Repository.list``.
        """
        ...

    async def count(self, *, where: Where | None = None) -> Result[int, ServiceError]:
        """How many entities match ``where`` (the unit's own changes included)."""
        ...

    async def remove(self, entity: E) -> Result[None, ServiceError]:
        """Stage ``entity`` for deletion at the next commit."""
        ...


class AsyncUnitOfWork(Protocol):
    """``UnitOfWork`` for asyncio: ``async with uow:`` ... ``await uow.commit()``.

    The nine behaviours, the nesting rules, savepoints and every result are those of
    ``UnitOfWork``; only the calls that may wait for the database are awaited
    (entering, leaving, ``commit``, ``rollback`` and the repositories' methods).
    ``publish``, ``savepoint`` and ``repository`` stage or bind in memory and are plain
    calls (``async with uow.savepoint():``).

    Cancellation: a task cancelled at any await point leaves no transaction open, no
    connection checked out and nothing half-committed. Leaving the block always runs to
    completion (a cancellation that arrives meanwhile is raised once it has); a cancelled
    ``commit`` is whole or absent, like one whose reply was lost.
    """

    async def __aenter__(self) -> Self:
        """Begin the unit of work (or join the one already open)."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the block; roll back anything not committed."""
        ...

    async def commit(self) -> Result[None, ServiceError]:
        """Make every staged change durable at once, or none of them (as ``UnitOfWork``)."""
        ...

    async def rollback(self) -> None:
        """Discard everything staged since the last commit."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """``async with uow.savepoint():`` — an exception leaving it undoes only its part."""
        ...

    def repository(self, entity_type: type[E]) -> AsyncRepository[E]:
        """The async repository of ``entity_type`` bound to this unit of work."""
        ...

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
    ) -> Result[None, ServiceError]:
        """Stage a message in the outbox: stored by this unit's commit, or not at all.

        As ``UnitOfWork.publish``; staging needs no I/O, so it is not awaited.
        """
        ...
