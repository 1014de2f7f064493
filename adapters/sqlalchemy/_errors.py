"""The map from SQLAlchemy and DB-API errors to the taxonomy.

Messages name the constraint or the kind of failure, never the row's values (a
duplicate-key message from MySQL quotes the key, which may be personal data).
"""

from __future__ import annotations

import re
from typing import Final

import sqlalchemy.exc as sa_exc
import sqlalchemy.orm.exc as orm_exc

from portside.domain._errors import (
    Conflict,
    InvalidRequest,
    ServiceError,
    TimedOut,
    Unauthorized,
    Unavailable,
)

__all__ = ["SQL_ERRORS", "map_error"]

#: What a unit of work can raise for reasons outside the program: catch exactly these.
SQL_ERRORS: Final = (
    sa_exc.DBAPIError,
    orm_exc.StaleDataError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    sa_exc.PendingRollbackError,
    # A value SQLAlchemy could not bind (a type portside has no rule for).
    sa_exc.StatementError,
    # sqlite3 refuses to bind an int beyond 64 bits with a bare OverflowError.
    OverflowError,
)

# SQLSTATE classes and MySQL/MariaDB error numbers that mean "another transaction got in
# the way": serialization failure, deadlock, lock wait timeout, lock not available.
_PG_CONFLICT: Final = frozenset({"40001", "40P01", "55P03"})
_MYSQL_CONFLICT: Final = frozenset({1205, 1213})
_PG_UNIQUE: Final = "23505"
_MYSQL_UNIQUE: Final = frozenset({1062, 1586})

_SQLITE_CONSTRAINT = re.compile(r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?:: (.+))?")
_MYSQL_KEY = re.compile(r"for key '([^']+)'")
_MYSQL_COLUMN = re.compile(r"Column '([^']+)'")
_MYSQL_CONSTRAINT = re.compile(r"CONSTRAINT `([^`]+)`")


def _pg_state(orig: BaseException | None) -> tuple[str | None, str | None]:
    """SQLSTATE and constraint name of a psycopg error (``None`` for other drivers)."""
    state = getattr(orig, "sqlstate", None)
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "constraint_name", None) or getattr(diag, "column_name", None)
    return (state if isinstance(state, str) else None, name if isinstance(name, str) else None)


def _mysql_code(orig: BaseException | None) -> int | None:
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _integrity(exc: sa_exc.IntegrityError, service: str, operation: str) -> ServiceError:
    """Uniqueness violations are ``Conflict``; other constraints are ``InvalidRequest``."""
    orig = exc.orig
    text = str(orig)
    state, name = _pg_state(orig)
    code = _mysql_code(orig)
    unique = state == _PG_UNIQUE or code in _MYSQL_UNIQUE
    if state is None and code is None:
        match = _SQLITE_CONSTRAINT.search(text)
        if match is not None:
            unique = match.group(1) == "UNIQUE"
            name = f"{match.group(1)} {match.group(2) or ''}".strip()
    elif code is not None:
        found = (
            _MYSQL_KEY.search(text) or _MYSQL_COLUMN.search(text) or _MYSQL_CONSTRAINT.search(text)
        )
        name = found.group(1) if found else None
    constraint = name or "unnamed"
    if unique:
        return Conflict(
            service=service,
            operation=operation,
            message=f"a row with this key already exists (constraint {constraint})",
        )
    return InvalidRequest(
        service=service, operation=operation, message=f"constraint {constraint} violated"
    )


def map_error(exc: BaseException, *, service: str, operation: str) -> ServiceError:
    """The taxonomy error for a SQLAlchemy or DB-API exception, with ``exc`` as cause."""
    error: ServiceError
    if isinstance(exc, orm_exc.StaleDataError):
        error = Conflict(
            service=service,
            operation=operation,
            message="the row was changed or removed by another unit of work",
        )
    elif isinstance(exc, OverflowError):
        error = InvalidRequest(
            service=service,
            operation=operation,
            message="a value is beyond what the database can store",
        )
    elif isinstance(exc, sa_exc.PendingRollbackError):
        error = Unavailable(
            service=service,
            operation=operation,
            message="the transaction was broken by an earlier error; roll back first",
        )
    elif isinstance(exc, sa_exc.TimeoutError):
        error = TimedOut(
            service=service, operation=operation, message="no database connection was free"
        )
    elif isinstance(exc, sa_exc.IntegrityError):
        error = _integrity(exc, service, operation)
    elif isinstance(exc, sa_exc.DBAPIError):
        error = _dbapi(exc, service, operation)
        if exc.connection_invalidated and type(error) in {Unavailable, InvalidRequest}:
            error = Unavailable(
                service=service, operation=operation, message="the database connection was lost"
            )
    elif isinstance(exc, sa_exc.DisconnectionError):
        error = Unavailable(
            service=service, operation=operation, message="the database connection was lost"
        )
    elif isinstance(exc, sa_exc.StatementError):
        error = InvalidRequest(
            service=service,
            operation=operation,
            message=f"a value could not be sent to the database ({type(exc.orig).__name__})",
        )
    else:
        error = Unavailable(
            service=service, operation=operation, message=f"database error: {type(exc).__name__}"
        )
    return error.caused_by(exc)


# What the server or driver said, by SQLSTATE, MySQL/MariaDB error number or, for the
# failures before a session exists (psycopg reports no SQLSTATE for those), by the words
# of libpq's message. Each is told apart so a caller knows whether to retry.
_UNAUTHORIZED: Final = "the database refused the credentials"
_NO_DATABASE: Final = "the database named in the URL does not exist"
_TIMED_OUT: Final = "the database did not answer within the timeout"
_PG_STATES: Final = {
    "28P01": (Unauthorized, _UNAUTHORIZED),
    "28000": (Unauthorized, _UNAUTHORIZED),
    "3D000": (InvalidRequest, _NO_DATABASE),
    "57014": (TimedOut, "the statement ran past the statement timeout"),
    "57P01": (Unavailable, "the database server is shutting down"),
    "53300": (Unavailable, "the database server has no free connection slot"),
}
_MYSQL_CODES: Final = {
    1044: (Unauthorized, _UNAUTHORIZED),
    1045: (Unauthorized, _UNAUTHORIZED),
    1049: (InvalidRequest, _NO_DATABASE),
    1969: (TimedOut, "the statement ran past the statement timeout"),
    3024: (TimedOut, "the statement ran past the statement timeout"),
    1040: (Unavailable, "the database server has no free connection slot"),
}
# Values the server refused (wrong type, out of range, too long, invalid date, ...).
_MYSQL_BAD_VALUE: Final = frozenset({1264, 1265, 1292, 1366, 1367, 1406, 1411, 1690, 4025})
# How the MySQL drivers word a read that ran past their timeout (error 2013): PyMySQL's
# socket timeout "(timed out)", asyncmy's "(read timeout)".
_MYSQL_TIMEOUTS: Final = ("timed out", "read timeout")
_PG_WORDS: Final = (
    ("password authentication failed", Unauthorized, _UNAUTHORIZED),
    ("no password supplied", Unauthorized, _UNAUTHORIZED),
    ('role "', Unauthorized, _UNAUTHORIZED),
    ("pg_hba.conf", Unauthorized, _UNAUTHORIZED),
    ('database "', InvalidRequest, _NO_DATABASE),
    ("timed out", TimedOut, _TIMED_OUT),
    ("timeout expired", TimedOut, _TIMED_OUT),
    ("connection refused", Unavailable, "the database server refused the connection"),
)


def _dbapi(exc: sa_exc.DBAPIError, service: str, operation: str) -> ServiceError:
    orig = exc.orig
    state, _ = _pg_state(orig)
    code = _mysql_code(orig)
    kind = type(orig).__name__
    text = str(orig).lower()
    if state in _PG_CONFLICT or code in _MYSQL_CONFLICT or "database is locked" in text:
        return Conflict(
            service=service,
            operation=operation,
            message=f"a concurrent transaction got in the way ({kind})",
        )
    known = _PG_STATES.get(state or "") or _MYSQL_CODES.get(code or 0)
    if known is None and code is None:
        known = next(((cls, msg) for words, cls, msg in _PG_WORDS if words in text), None)
    if known is None and code is not None and any(words in text for words in _MYSQL_TIMEOUTS):
        known = (TimedOut, _TIMED_OUT)
    if known is not None:
        cls, message = known
        return cls(service=service, operation=operation, message=message)
    if code in _MYSQL_BAD_VALUE or isinstance(exc, sa_exc.DataError | sa_exc.ProgrammingError):
        return InvalidRequest(
            service=service, operation=operation, message=f"the database rejected it ({kind})"
        )
    return Unavailable(service=service, operation=operation, message=f"database error ({kind})")
