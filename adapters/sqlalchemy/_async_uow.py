"""The async SQLAlchemy unit of work: the sync unit, run on ``AsyncSession``'s bridge.

``AsyncSqlAlchemyUnitOfWork`` holds a ``SqlAlchemyUnitOfWork`` whose session is the sync
side of one ``AsyncSession`` per outermost block, and runs each call that may talk to
the database with ``AsyncSession.run_sync``: SQLAlchemy runs it in a greenlet in which
the async driver's every wait is awaited on the event loop. So the reads, the staged
changes merged in Python, the column checks, the FK-ordered flush, the constraint and
error mapping and the outbox write are the sync adapter's own code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import attrs
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from portside.adapters._async_unit import AsyncUnit
from portside.adapters.entities import Entities
from portside.adapters.sqlalchemy._uow import SqlAlchemyUnitOfWork

__all__ = ["AsyncSqlAlchemyUnitOfWork"]

T = TypeVar("T")
P = ParamSpec("P")


@attrs.define
class _Sessions:
    """Opens the ``AsyncSession`` of each outermost block and remembers the current one."""

    factory: async_sessionmaker[AsyncSession] = attrs.field(repr=False)
    current: AsyncSession | None = attrs.field(default=None, repr=False)

    def open(self) -> Session:
        """A new ``AsyncSession``; its sync side, for the sync unit of work."""
        self.current = self.factory()
        return self.current.sync_session


def _call(_session: Session, call: Callable[[], T]) -> T:
    return call()


@attrs.define
class AsyncSqlAlchemyUnitOfWork(AsyncUnit):
    """An async unit of work over one ``AsyncSession`` per outermost block.

    Results and errors are ``SqlAlchemyUnitOfWork``'s: ``commit()`` returns
    ``Failure(Conflict)`` on a version clash, a uniqueness violation or a serialization
    failure, ``Failure(InvalidRequest)`` naming any other violated constraint, and
    ``Failure(Unavailable)``/``Failure(TimedOut)`` when the database cannot answer;
    nothing is ever half-written. Build one with ``AsyncDatabase.unit_of_work()``.
    """

    _sessions: _Sessions = attrs.field(repr=False, alias="sessions")

    @classmethod
    def over(
        cls, session_factory: async_sessionmaker[AsyncSession], entities: Entities
    ) -> AsyncSqlAlchemyUnitOfWork:
        """A unit of work whose blocks open sessions from ``session_factory``."""
        sessions = _Sessions(session_factory)
        return cls(SqlAlchemyUnitOfWork(sessions.open, entities), sessions=sessions)

    @property
    def session(self) -> AsyncSession:
        """The ``AsyncSession`` of the open block (``RuntimeError`` outside one)."""
        self.unit.ensure_open()
        assert self._sessions.current is not None  # opened by the block's __enter__
        return self._sessions.current

    async def _io(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        session = self._sessions.current
        if session is None:  # before the first block: nothing to talk to yet
            return fn(*args, **kwargs)
        return await session.run_sync(_call, functools.partial(fn, *args, **kwargs))
