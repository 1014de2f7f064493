"""``UnitOfWork`` over SQLAlchemy 2.x: SQLite (the embedded default), PostgreSQL, MariaDB.

SQLAlchemy is a core dependency; the PostgreSQL and MySQL drivers come with the
``postgres`` and ``mysql`` extras. The async unit of work (``AsyncDatabase``) needs the
``sqlalchemy-async`` extra (greenlet, aiosqlite, asyncmy; psycopg is sync and async); its
names load SQLAlchemy's asyncio extension only when first used.
"""

from typing import TYPE_CHECKING

from portside.adapters._extras import require
from portside.domain._lazy import lazy_names

# SQLAlchemy is a core dependency; a broken install is repaired by any extra.
require("sqlalchemy", "all")

from portside.adapters.sqlalchemy._database import DEFAULT_URL, Database, make_engine  # noqa: E402
from portside.adapters.sqlalchemy._errors import SQL_ERRORS, map_error  # noqa: E402
from portside.adapters.sqlalchemy._uow import SqlAlchemyRepository, SqlAlchemyUnitOfWork  # noqa: E402

if TYPE_CHECKING:
    from portside.adapters.sqlalchemy._async_database import AsyncDatabase, make_async_engine
    from portside.adapters.sqlalchemy._async_uow import AsyncSqlAlchemyUnitOfWork

__all__ = [
    "DEFAULT_URL",
    "SQL_ERRORS",
    "AsyncDatabase",
    "AsyncSqlAlchemyUnitOfWork",
    "Database",
    "SqlAlchemyRepository",
    "SqlAlchemyUnitOfWork",
    "make_async_engine",
    "make_engine",
    "map_error",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "AsyncDatabase": "portside.adapters.sqlalchemy._async_database",
        "AsyncSqlAlchemyUnitOfWork": "portside.adapters.sqlalchemy._async_uow",
        "make_async_engine": "portside.adapters.sqlalchemy._async_database",
    },
)
