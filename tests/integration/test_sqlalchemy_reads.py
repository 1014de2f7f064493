"""A refused or timed-out read leaves the unit's staged work intact, on every backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from returns.result import Success
from sqlalchemy import Column, Integer, String, Table, text

from portside.adapters.entities import Entities
from portside.adapters.sqlalchemy import make_engine
from tests.integration._uow_backends import BACKENDS, database_for


@attrs.define(slots=False, eq=False)
class Crate:
    id: int
    qty: int
    label: str = ""


@pytest.fixture(name="crates", params=BACKENDS)
def _crates(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    entities = Entities()
    table = Table(
        f"ps_crates_{uuid.uuid4().hex[:10]}",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("qty", Integer, nullable=False),
        Column("label", String(20), nullable=False),
    )
    entities.map(Crate, table)
    with database_for(request, tmp_path, entities, statement_timeout=0.5) as database:
        engine = getattr(database, "engine", None)
        yield database, "" if engine is None else engine.dialect.name, table.name


@pytest.mark.parametrize(
    "where", [{"qty": "abc"}, {"qty": [1, 2]}, {"qty": 2**40}, {"label": "a\x00b"}]
)
def test_a_refused_filter_does_not_poison_the_unit(
    crates: tuple[Any, str, str], where: dict[str, Any]
) -> None:
    """A filter value its column cannot hold is InvalidRequest; the staged rows still commit."""
    database, _, _ = crates
    with database.unit_of_work() as uow:
        repo = uow.repository(Crate)
        assert repo.add(Crate(1, 5, "a")) == Success(None)
        error = repo.list(where=where).failure()
        assert (error.kind, "Crate.qty" in error.message or "Crate.label" in error.message) == (
            "InvalidRequest",
            True,
        )
        assert repo.get(1).map(lambda c: c.qty) == Success(5)
        assert uow.commit() == Success(None)
    with database.unit_of_work() as uow:
        assert [c.id for c in uow.repository(Crate).list().unwrap()] == [1]


@pytest.mark.services
def test_a_read_that_timed_out_on_postgres_leaves_the_unit_usable(
    postgres_url: str, crates: tuple[Any, str, str]
) -> None:
    """A read cancelled by statement_timeout is TimedOut; later reads and the commit work."""
    database, dialect, table = crates
    if dialect != "postgresql":
        pytest.skip("PostgreSQL only: a lock makes the read wait for the statement timeout")
    locker = make_engine(postgres_url)
    try:
        with database.unit_of_work() as uow:
            repo = uow.repository(Crate)
            assert repo.add(Crate(1, 5, "a")) == Success(None)
            with locker.connect() as connection:
                connection.execute(text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))
                assert repo.get(2).failure().kind == "TimedOut"
                connection.rollback()
            assert repo.get(2).failure().kind == "NotFound"
            assert uow.commit() == Success(None)
        with database.unit_of_work() as uow:
            assert uow.repository(Crate).get(1).map(lambda c: c.qty) == Success(5)
    finally:
        locker.dispose()
