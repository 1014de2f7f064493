"""How SQLAlchemy and driver errors map to the taxonomy (no database needed)."""

from __future__ import annotations

import sqlite3

import psycopg.errors as pg
import pymysql.err as my
import pytest
import sqlalchemy.exc as sa_exc
import sqlalchemy.orm.exc as orm_exc

from portside.adapters.sqlalchemy import map_error


def _wrap(kind: type[sa_exc.DBAPIError], orig: Exception) -> sa_exc.DBAPIError:
    return kind("INSERT ...", {"secret": "value"}, orig)


@pytest.mark.parametrize(
    ("exc", "kind", "message"),
    [
        (orm_exc.StaleDataError("0 rows"), "Conflict", "changed or removed"),
        (
            _wrap(sa_exc.IntegrityError, sqlite3.IntegrityError("UNIQUE constraint failed: t.id")),
            "Conflict",
            "constraint UNIQUE t.id",
        ),
        (
            _wrap(
                sa_exc.IntegrityError, sqlite3.IntegrityError("NOT NULL constraint failed: t.name")
            ),
            "InvalidRequest",
            "constraint NOT NULL t.name violated",
        ),
        (
            _wrap(
                sa_exc.IntegrityError,
                my.IntegrityError(1062, "Duplicate entry 'x' for key 'PRIMARY'"),
            ),
            "Conflict",
            "constraint PRIMARY",
        ),
        (
            _wrap(sa_exc.IntegrityError, my.IntegrityError(1048, "Column 'name' cannot be null")),
            "InvalidRequest",
            "constraint name violated",
        ),
        (_wrap(sa_exc.OperationalError, pg.SerializationFailure("no")), "Conflict", "concurrent"),
        (_wrap(sa_exc.OperationalError, pg.DeadlockDetected("no")), "Conflict", "concurrent"),
        (_wrap(sa_exc.OperationalError, my.OperationalError(1213, "deadlock")), "Conflict", ""),
        (
            _wrap(sa_exc.OperationalError, sqlite3.OperationalError("database is locked")),
            "Conflict",
            "",
        ),
        (_wrap(sa_exc.DataError, pg.InvalidTextRepresentation("bad")), "InvalidRequest", ""),
        (_wrap(sa_exc.OperationalError, OSError("reset")), "Unavailable", ""),
        (sa_exc.TimeoutError("pool"), "TimedOut", "no database connection"),
        (sa_exc.PendingRollbackError("rb"), "Unavailable", "roll back first"),
    ],
)
def test_errors_map_to_the_taxonomy(exc: BaseException, kind: str, message: str) -> None:
    """Each database failure becomes the taxonomy error that says what to do about it."""
    error = map_error(exc, service="uow", operation="commit")
    assert error.kind == kind
    assert message in error.message
    assert error.__cause__ is exc


def test_messages_never_quote_row_values() -> None:
    """A duplicate-key message names the constraint, not the duplicated value."""
    orig = my.IntegrityError(1062, "Duplicate entry 'ada@example.org' for key 'email'")
    error = map_error(_wrap(sa_exc.IntegrityError, orig), service="uow", operation="commit")
    assert "ada@example.org" not in str(error)
    assert "email" in error.message


def test_a_lost_connection_is_unavailable() -> None:
    """An error SQLAlchemy flags as a disconnect is Unavailable (retryable)."""
    exc = sa_exc.OperationalError("SELECT 1", {}, OSError("gone"), connection_invalidated=True)
    error = map_error(exc, service="uow", operation="get")
    assert (error.kind, error.retryable) == ("Unavailable", True)


def test_a_missing_sqlalchemy_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing the adapter without SQLAlchemy names the extra to install."""
    import importlib
    import sys

    from portside.adapters import MissingExtraError

    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    monkeypatch.delitem(sys.modules, "portside.adapters.sqlalchemy")
    with pytest.raises(MissingExtraError, match=r"pip install 'portside\[all\]'"):
        importlib.import_module("portside.adapters.sqlalchemy")


def test_database_repr_hides_the_password() -> None:
    """A Database built from a URL with a password never shows it."""
    from portside.adapters.entities import Entities
    from portside.adapters.sqlalchemy import Database

    database = Database.from_url(Entities(), "postgresql+psycopg://app:s3cret@127.0.0.1:1/x")
    try:
        assert "s3cret" not in repr(database)
        assert "app" in repr(database)
    finally:
        database.close()
