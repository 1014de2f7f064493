"""Engines built by portside time out instead of waiting forever on a silent server."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy

from portside.adapters.sqlalchemy import _database, make_engine

captured: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _capture_create_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record what make_engine passes to create_engine (no driver, no connection)."""

    def fake_create_engine(url: str, **kw: Any) -> sqlalchemy.Engine:
        captured.clear()
        captured.update(kw)
        return sqlalchemy.create_engine("sqlite://")

    monkeypatch.setattr(_database, "create_engine", fake_create_engine)


def _connect_args(url: str, **options: Any) -> dict[str, Any]:
    make_engine(url, **options).dispose()
    return dict(captured.get("connect_args", {}))


def test_postgres_connections_detect_a_vanished_peer() -> None:
    """PostgreSQL engines get a connect timeout, TCP keepalives and tcp_user_timeout."""
    args = _connect_args("postgresql+psycopg://app@db.internal/app?sslmode=require")
    assert args["connect_timeout"] == 5
    assert args["keepalives"] == 1
    assert args["tcp_user_timeout"] == 30_000


def test_mariadb_connections_have_read_and_write_timeouts() -> None:
    """MariaDB engines open with every socket timeout at the connect bound (the handshake)."""
    args = _connect_args("mysql+pymysql://root@127.0.0.1:3306/test")
    assert (args["connect_timeout"], args["read_timeout"], args["write_timeout"]) == (5, 5, 5)
    assert args["init_command"] == "SET SESSION max_statement_time=30"


def test_statement_and_connect_timeouts_can_be_set() -> None:
    """connect_timeout and statement_timeout reach the server options of each dialect."""
    pg = _connect_args("postgresql+psycopg://app@db/app", connect_timeout=3, statement_timeout=2)
    assert (pg["connect_timeout"], pg["options"]) == (3, "-c statement_timeout=2000")
    my = _connect_args("mysql+pymysql://app@db/app", connect_timeout=3, statement_timeout=1.5)
    assert (my["read_timeout"], my["init_command"]) == (3, "SET SESSION max_statement_time=1.5")


def test_a_password_in_the_query_is_masked_like_the_authority_password() -> None:
    """?password= moves into the URL's password, which SQLAlchemy masks in repr and str."""
    from portside.adapters.entities import Entities
    from portside.adapters.sqlalchemy import Database

    database = Database(
        Entities(),
        sqlalchemy.orm.sessionmaker(),
        sqlalchemy.create_engine(
            _database.password_in_authority("postgresql+psycopg://app@db/app?password=s3cret")
        ),
    )
    assert database.engine is not None
    for text in (repr(database), repr(database.engine), str(database.engine.url)):
        assert "s3cret" not in text
        assert "***" in text
    assert database.engine.url.password == "s3cret"


def test_callers_override_connect_args_key_by_key() -> None:
    """connect_args given by the caller win over the defaults, key by key."""
    args = _connect_args("postgresql+psycopg://app@db/app", connect_args={"connect_timeout": 1})
    assert args["connect_timeout"] == 1
    assert args["keepalives"] == 1
