"""The unit-of-work contract kit against SQLAlchemy on PostgreSQL and MariaDB."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, inspect

from portside.adapters.testing import check_unit_of_work, sqlalchemy_backend


def _run_and_check_clean(url: str) -> None:
    table = f"ps_kit_{uuid.uuid4().hex[:12]}"
    check_unit_of_work(
        sqlalchemy_backend(url), max_examples=60, stateful_step_count=30, table_name=table
    )
    engine = create_engine(url)
    try:
        assert table not in inspect(engine).get_table_names(), "the kit left its table behind"
    finally:
        engine.dispose()


@pytest.mark.services
def test_postgres_passes_the_kit(postgres_url: str) -> None:
    """The SQLAlchemy unit of work on PostgreSQL behaves exactly like the fake."""
    _run_and_check_clean(postgres_url)


@pytest.mark.services
def test_mariadb_passes_the_kit(mariadb_url: str) -> None:
    """The SQLAlchemy unit of work on MariaDB behaves exactly like the fake."""
    _run_and_check_clean(mariadb_url)
