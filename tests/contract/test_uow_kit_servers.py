"""The unit-of-work contract kit against SQLAlchemy on PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from adapters.testing.uow_kit import check_unit_of_work, sqlalchemy_backend


def _kit_tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {t for t in inspect(engine).get_table_names() if t.startswith("ps_kit_")}
    finally:
        engine.dispose()


@pytest.mark.services
def test_postgres_passes_the_kit(postgres_url: str) -> None:
    """The SQLAlchemy unit of work on PostgreSQL behaves exactly like the fake."""
    before = _kit_tables(postgres_url)
    check_unit_of_work(sqlalchemy_backend(postgres_url), max_examples=30, stateful_step_count=25)
    assert _kit_tables(postgres_url) == before, "the kit left a table behind"


@pytest.mark.services
def test_mariadb_passes_the_kit(mariadb_url: str) -> None:
    """The SQLAlchemy unit of work on MariaDB behaves exactly like the fake."""
    before = _kit_tables(mariadb_url)
    check_unit_of_work(sqlalchemy_backend(mariadb_url), max_examples=30, stateful_step_count=25)
    assert _kit_tables(mariadb_url) == before, "the kit left a table behind"
