"""Where the unit-of-work integration tests run: the fake and every SQL backend alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryDatabase
from portside.adapters.sqlalchemy import Database

#: Parameters of a fixture that runs a test on each backend (servers marked services).
BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.services),
    pytest.param("mariadb", marks=pytest.mark.services),
]


@contextmanager
def database_for(
    request: pytest.FixtureRequest, tmp_path: Path, entities: Entities, **options: Any
) -> Iterator[Any]:
    """The fake or a ``Database`` for the fixture's parameter, tables created, then dropped.

    ``options`` go to ``Database.from_url`` (SQL backends only).
    """
    database: Any
    if request.param == "memory":
        database = MemoryDatabase(entities)
    else:
        url = (
            f"sqlite:///{tmp_path / 'store.sqlite3'}"
            if request.param == "sqlite"
            else request.getfixturevalue(f"{request.param}_url")
        )
        database = Database.from_url(entities, url, **options)
    database.create_all()
    try:
        yield database
    finally:
        if isinstance(database, Database):
            assert database.engine is not None
            entities.drop_all(database.engine)
        database.close()
        entities.dispose()
