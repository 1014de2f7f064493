"""Async engines and session factories: where an async unit of work gets its connections."""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from portside.adapters.entities import Entities
from portside.adapters.sqlalchemy._async_uow import AsyncSqlAlchemyUnitOfWork
from portside.adapters.sqlalchemy._connect import CONNECT_TIMEOUT, STATEMENT_TIMEOUT
from portside.adapters.sqlalchemy._database import engine_arguments, prepare_engine

__all__ = ["AsyncDatabase", "make_async_engine"]


def make_async_engine(
    url: str | None = None,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    statement_timeout: float = STATEMENT_TIMEOUT,
    **options: Any,
) -> AsyncEngine:
    """An ``AsyncEngine`` for ``url`` (else ``DATABASE_URL``, else the SQLite default).

    Everything ``make_engine`` says holds, with the async driver of the URL's database:
    a sync driver is replaced by its async twin (``sqlite`` -> ``sqlite+aiosqlite``,
    ``postgresql+psycopg`` stays, psycopg is both; ``mysql+pymysql`` ->
    ``mysql+asyncmy``), so one ``DATABASE_URL`` serves the sync and the async adapter.
    Needs the ``sqlalchemy-async`` extra (greenlet, aiosqlite, asyncmy). No connection is made here.
    """
    parsed, kw = engine_arguments(
        url, connect_timeout, statement_timeout, options, asynchronous=True
    )
    engine = create_async_engine(parsed, **kw)
    prepare_engine(engine.sync_engine, statement_timeout)
    return engine


@attrs.define
class AsyncDatabase:
    """Where async units of work come from: an async engine or session factory, and entities.

    The async twin of ``Database``: build it from a URL (``from_url``), from the
    application's ``AsyncEngine`` (``from_engine``) or from its ``async_sessionmaker``
    (``from_session_factory``). Sessions are used with ``autoflush`` and
    ``expire_on_commit`` off, as in ``Database``.
    """

    entities: Entities
    session_factory: async_sessionmaker[AsyncSession] = attrs.field(repr=False)
    engine: AsyncEngine | None = None
    _owns_engine: bool = attrs.field(default=False, repr=False, alias="owns_engine")

    @classmethod
    def from_url(cls, entities: Entities, url: str | None = None, **options: Any) -> AsyncDatabase:
        """A database over a new async engine (see ``make_async_engine``).

        ``await close()`` disposes it.
        """
        engine = make_async_engine(url, **options)
        return cls(entities, _factory(engine), engine, owns_engine=True)

    @classmethod
    def from_engine(cls, entities: Entities, engine: AsyncEngine) -> AsyncDatabase:
        """A database over the application's own async engine, which it never disposes."""
        return cls(entities, _factory(engine), engine)

    @classmethod
    def from_session_factory(
        cls, entities: Entities, session_factory: async_sessionmaker[AsyncSession]
    ) -> AsyncDatabase:
        """A database over the application's async session factory."""
        bind = session_factory.kw.get("bind")
        return cls(entities, session_factory, bind if isinstance(bind, AsyncEngine) else None)

    def unit_of_work(self) -> AsyncSqlAlchemyUnitOfWork:
        """A new async unit of work; nothing connects until ``async with uow:`` needs it."""
        return AsyncSqlAlchemyUnitOfWork.over(self.session_factory, self.entities)

    async def create_all(self) -> None:
        """Create the registered entities' tables that do not exist yet (needs ``engine``)."""
        if self.engine is None:
            raise RuntimeError("this AsyncDatabase was given no engine")
        async with self.engine.begin() as connection:
            await connection.run_sync(self.entities.create_all)

    async def close(self) -> None:
        """Dispose the engine if this database created it."""
        if self._owns_engine and self.engine is not None:
            await self.engine.dispose()


def _factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, autoflush=False, expire_on_commit=False)
