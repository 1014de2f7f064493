"""The unit-of-work contract kit against SQLAlchemy on an SQLite file."""

from __future__ import annotations

from pathlib import Path

from portside.adapters.testing import check_unit_of_work, sqlalchemy_backend


def test_sqlite_passes_the_kit(tmp_path: Path) -> None:
    """The SQLAlchemy unit of work on SQLite behaves exactly like the fake."""
    check_unit_of_work(
        sqlalchemy_backend(f"sqlite:///{tmp_path / 'kit.sqlite3'}"),
        max_examples=100,
        stateful_step_count=30,
    )
