"""Engines and session factories: where a unit of work gets its connections."""

from __future__ import annotations

import os
from typing import Any, Final

import attrs
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

from portside.adapters.entities import Entities
from portside.adapters.sqlalchemy._connect import (
    CONNECT_TIMEOUT,
    STATEMENT_TIMEOUT,
    async_driver_url,
    bound_connections,
    password_in_authority,
    server_options,
)
from portside.adapters.sqlalchemy._uow import SqlAlchemyUnitOfWork

__all__ = ["DEFAULT_URL", "Database", "engine_arguments", "make_engine", "prepare_engine"]

#: The embedded default: an SQLite file in the working directory.
DEFAULT_URL: Final = "sqlite:///portside.db"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while a writer commits; SQLite leaves foreign keys off
    # unless every connection asks for them.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def engine_arguments(
    url: str | URL | None,
    connect_timeout: float,
    statement_timeout: float,
    options: dict[str, Any],
    *,
    asynchronous: bool = False,
) -> tuple[URL, dict[str, Any]]:
    """The URL and keyword arguments an engine (sync or async) is created with.

    The shared defaults, then ``options`` (see ``make_engine``).
    """
    parsed = password_in_authority(url or os.environ.get("DATABASE_URL") or DEFAULT_URL)
    if asynchronous:
        parsed = async_driver_url(parsed)
    kw: dict[str, Any] = {"pool_pre_ping": True}
    dialect = parsed.get_backend_name()
    if dialect in {"mysql", "mariadb"}:
        kw["isolation_level"] = "READ COMMITTED"
    connect_args = server_options(
        dialect, connect_timeout, statement_timeout, driver=parsed.get_driver_name()
    )
    connect_args.update(options.pop("connect_args", {}))
    if connect_args:
        kw["connect_args"] = connect_args
    kw.update(options)
    return parsed, kw


def prepare_engine(engine: Engine, statement_timeout: float) -> None:
    """Install the per-connection set-up on ``engine`` (an async engine's ``sync_engine``)."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    bound_connections(engine, statement_timeout)


def make_engine(
    url: str | None = None,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    statement_timeout: float = STATEMENT_TIMEOUT,
    **options: Any,
) -> Engine:
    """An engine for ``url`` (else ``DATABASE_URL``, else ``DEFAULT_URL``).

    Connections are checked before use (``pool_pre_ping``); SQLite runs in WAL mode
    with foreign keys on; MySQL/MariaDB run at READ COMMITTED like PostgreSQL, so every
    backend shows a unit of work the same committed data. On PostgreSQL and MariaDB
    every call is bounded: ``connect_timeout`` seconds (default 5) to connect and
    ``statement_timeout`` seconds (default 30) per statement or COMMIT, after which the
    call is ``TimedOut`` (see ``portside.adapters.sqlalchemy._connect``). A
    ``?password=`` query argument becomes the URL's password, which SQLAlchemy masks in
    every repr. ``options`` go to ``create_engine`` and win over these defaults
    (``connect_args`` key by key). No connection is made here.
    """
    parsed, kw = engine_arguments(url, connect_timeout, statement_timeout, options)
    engine = create_engine(parsed, **kw)
    prepare_engine(engine, statement_timeout)
    return engine


@attrs.define
class Database:
    """Where units of work come from: an engine or a session factory, and the entities.

    Build it from a URL (``from_url``), from an engine the application already has
    (``from_engine``, e.g. Flask-SQLAlchemy's ``db.engine``), or from a session factory
    (``from_session_factory``). Sessions are used with ``autoflush`` and
    ``expire_on_commit`` off: a unit writes only at commit, and objects stay readable
    after it.
    """

    entities: Entities
    session_factory: sessionmaker[Session] = attrs.field(repr=False)
    engine: Engine | None = None
    _owns_engine: bool = attrs.field(default=False, repr=False, alias="owns_engine")

    @classmethod
    def from_url(cls, entities: Entities, url: str | None = None, **options: Any) -> Database:
        """A database over a new engine (see ``make_engine``); ``close()`` disposes it."""
        engine = make_engine(url, **options)
        return cls(entities, _factory(engine), engine, owns_engine=True)

    @classmethod
    def from_engine(cls, entities: Entities, engine: Engine) -> Database:
        """A database over the application's own engine, which it never disposes."""
        return cls(entities, _factory(engine), engine)

    @classmethod
    def from_session_factory(
        cls, entities: Entities, session_factory: sessionmaker[Session]
    ) -> Database:
        """A database over the application's session factory."""
        bind = session_factory.kw.get("bind")
        return cls(entities, session_factory, bind if isinstance(bind, Engine) else None)

    def unit_of_work(self) -> SqlAlchemyUnitOfWork:
        """A new unit of work; nothing connects until ``with uow:``."""
        return SqlAlchemyUnitOfWork(self.session_factory, self.entities)

    def create_all(self) -> None:
        """Create the registered entities' tables that do not exist yet (needs ``engine``)."""
        if self.engine is None:
            raise RuntimeError("this Database was given no engine")
        self.entities.create_all(self.engine)

    def close(self) -> None:
        """Dispose the engine if this database created it."""
        if self._owns_engine and self.engine is not None:
            self.engine.dispose()


def _factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, autoflush=False, expire_on_commit=False)
