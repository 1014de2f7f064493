"""``UnitOfWork`` over SQLAlchemy 2.x: SQLite (the embedded default), PostgreSQL, MariaDB.

SQLAlchemy is a core dependency; the PostgreSQL and MySQL drivers come with the
``postgres`` and ``mysql`` extras.
"""

from portside.adapters._extras import require

# SQLAlchemy is a core dependency; a broken install is repaired by any extra.
require("sqlalchemy", "all")

from portside.adapters.sqlalchemy._database import DEFAULT_URL, Database, make_engine  # noqa: E402
from portside.adapters.sqlalchemy._errors import SQL_ERRORS, map_error  # noqa: E402
from portside.adapters.sqlalchemy._uow import SqlAlchemyRepository, SqlAlchemyUnitOfWork  # noqa: E402

__all__ = [
    "DEFAULT_URL",
    "SQL_ERRORS",
    "Database",
    "SqlAlchemyRepository",
    "SqlAlchemyUnitOfWork",
    "make_engine",
    "map_error",
]
