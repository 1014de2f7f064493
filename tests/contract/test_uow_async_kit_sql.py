"""The unit-of-work contract kit against the async SQLAlchemy unit of work on every database."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from portside.adapters.testing import async_sqlalchemy_backend, check_unit_of_work


def test_async_sqlite_passes_the_kit(tmp_path: Path) -> None:
    """The async unit of work on SQLite (aiosqlite) behaves exactly like the fake."""
    check_unit_of_work(
        async_sqlalchemy_backend(f"sqlite:///{tmp_path / 'kit.sqlite3'}"),
        max_examples=60,
        stateful_step_count=30,
    )


def _run_and_check_clean(url: str) -> None:
    table = f"ps_kit_{uuid.uuid4().hex[:12]}"
    check_unit_of_work(
        async_sqlalchemy_backend(url), max_examples=30, stateful_step_count=30, table_name=table
    )
    engine = create_engine(url)
    try:
        assert table not in inspect(engine).get_table_names(), "the kit left its table behind"
    finally:
        engine.dispose()


@pytest.mark.services
@pytest.mark.slow
def test_async_postgres_passes_the_kit(postgres_url: str) -> None:
    """The async unit of work on PostgreSQL (psycopg async) behaves exactly like the fake."""
    _run_and_check_clean(postgres_url)


@pytest.mark.services
@pytest.mark.slow
def test_async_mariadb_passes_the_kit(mariadb_url: str) -> None:
    """The async unit of work on MariaDB (asyncmy) behaves exactly like the fake."""
    _run_and_check_clean(mariadb_url)
