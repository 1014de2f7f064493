"""One DATABASE_URL serves the sync and the async unit of work: sync drivers map to async twins."""

from __future__ import annotations

import pytest

from portside.adapters.sqlalchemy import make_async_engine
from portside.adapters.sqlalchemy._connect import server_options


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///x.sqlite3", "sqlite+aiosqlite"),
        ("sqlite+pysqlite:///x.sqlite3", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.sqlite3", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("mysql+pymysql://u@h/db", "mysql+asyncmy"),
        ("mariadb+pymysql://u@h/db", "mariadb+asyncmy"),
        ("mysql+asyncmy://u@h/db", "mysql+asyncmy"),
    ],
)
def test_a_sync_driver_becomes_its_async_twin(url: str, driver: str) -> None:
    """make_async_engine picks the async driver of the URL's database, keeping an async one."""
    engine = make_async_engine(url)
    assert engine.url.drivername == driver
    assert engine.dialect.is_async


def test_the_password_query_argument_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ?password= argument becomes the URL's password, masked in the engine's repr."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    engine = make_async_engine("postgresql+psycopg://u@h/db?password=s3cret")
    assert "s3cret" not in repr(engine)
    assert engine.url.password == "s3cret"


def test_asyncmy_gets_the_statement_bound_as_its_read_timeout() -> None:
    """Asyncmy has no write timeout and cannot change its read timeout: it is the statement's."""
    assert server_options("mysql", 2, 3, driver="asyncmy") == {
        "connect_timeout": 2,
        "init_command": "SET SESSION max_statement_time=3",
        "read_timeout": 3.5,
    }
    assert server_options("mysql", 2, 3, driver="pymysql")["write_timeout"] == 2
