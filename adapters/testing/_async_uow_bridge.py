"""A sync bridge to async units of work, so the sync contract kit checks them unchanged.

``BlockingUnitOfWork`` wraps an ``AsyncUnitOfWork`` as a ``UnitOfWork`` whose every
awaited call runs on an ``EventLoopThread`` and is waited for; its repositories and
savepoints are bridged the same way. The kit's state machine, rules and model are the
sync kit's own: only the calls cross to the event loop.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import attrs
from returns.result import Result

from portside.adapters.testing._async_bridge import EventLoopThread
from portside.domain._errors import ServiceError
from portside.ports._query import Ordering, Where
from portside.ports._uow import AsyncRepository, AsyncUnitOfWork, Repository, UnitOfWork

__all__ = ["BlockingRepository", "BlockingUnitOfWork"]

E = TypeVar("E")


@attrs.define
class BlockingUnitOfWork(UnitOfWork):
    """An ``AsyncUnitOfWork`` seen as a ``UnitOfWork``: each call awaited on ``runner``."""

    inner: AsyncUnitOfWork
    runner: EventLoopThread = attrs.field(repr=False)

    def __enter__(self) -> Self:
        """``await inner.__aenter__()``; ``self`` when it returns ``inner`` (a join)."""
        entered = self.runner.run(self.inner.__aenter__())
        if entered is not self.inner:
            raise AssertionError("__aenter__ must return the unit of work itself")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """``await inner.__aexit__(...)``."""
        self.runner.run(self.inner.__aexit__(exc_type, exc, tb))

    def commit(self) -> Result[None, ServiceError]:
        """``await inner.commit()``."""
        return self.runner.run(self.inner.commit())

    def rollback(self) -> None:
        """``await inner.rollback()``."""
        self.runner.run(self.inner.rollback())

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """``async with inner.savepoint():`` around the body, entered and left on the loop."""
        mark = self.inner.savepoint()
        self.runner.run(mark.__aenter__())
        try:
            yield
        except BaseException as error:
            if not self.runner.run(mark.__aexit__(type(error), error, error.__traceback__)):
                raise
        else:
            self.runner.run(mark.__aexit__(None, None, None))

    def repository(self, entity_type: type[E]) -> Repository[E]:
        """``inner.repository(entity_type)``, bridged."""
        return BlockingRepository(self.inner.repository(entity_type), self.runner)

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
    ) -> Result[None, ServiceError]:
        """``inner.publish(...)`` (not awaited: staging needs no I/O)."""
        return self.inner.publish(topic, body, headers=headers, dedupe_key=dedupe_key)


@attrs.define
class BlockingRepository(Repository[E], Generic[E]):
    """An ``AsyncRepository`` seen as a ``Repository``: each call awaited on ``runner``."""

    inner: AsyncRepository[E]
    runner: EventLoopThread = attrs.field(repr=False)

    def add(self, entity: E) -> Result[None, ServiceError]:
        """``await inner.add(entity)``."""
        return self.runner.run(self.inner.add(entity))

    def get(self, key: Any) -> Result[E, ServiceError]:
        """``await inner.get(key)``."""
        return self.runner.run(self.inner.get(key))

    def list(
        self,
        *,
        where: Where | None = None,
        order_by: Sequence[Ordering | str] | Ordering | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Result[builtins.list[E], ServiceError]:
        """``await inner.list(...)``."""
        return self.runner.run(
            self.inner.list(where=where, order_by=order_by, limit=limit, offset=offset)
        )

    def count(self, *, where: Where | None = None) -> Result[int, ServiceError]:
        """``await inner.count(where=where)``."""
        return self.runner.run(self.inner.count(where=where))

    def remove(self, entity: E) -> Result[None, ServiceError]:
        """``await inner.remove(entity)``."""
        return self.runner.run(self.inner.remove(entity))
