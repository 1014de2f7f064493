"""Savepoints and nested units: the same on the fake and every SQL backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from returns.result import Success
from sqlalchemy import Column, Integer, String, Table

from portside.adapters.entities import Entities
from tests.integration._uow_backends import BACKENDS, database_for


@attrs.define(slots=False, eq=False)
class Line:
    id: int
    text: str


@pytest.fixture(name="database", params=BACKENDS)
def _database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    entities = Entities()
    table = Table(
        f"ps_lines_{uuid.uuid4().hex[:10]}",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("text", String(20), nullable=False),
    )
    entities.map(Line, table)
    with database_for(request, tmp_path, entities) as database:
        with database.unit_of_work() as uow:
            uow.repository(Line).add(Line(1, "one"))
            uow.repository(Line).add(Line(2, "two"))
            assert uow.commit() == Success(None)
        yield database


def _stored(database: Any) -> dict[int, str]:
    with database.unit_of_work() as uow:
        return {line.id: line.text for line in uow.repository(Line).list().unwrap()}


class PartFailed(Exception):
    """Raised by a savepoint's body in these tests."""


def _failing_part(uow: Any, *steps: Any) -> None:
    """Run ``steps`` inside a savepoint, then fail it."""
    with uow.savepoint():
        for step in steps:
            step()
        raise PartFailed


def test_a_failed_savepoint_undoes_only_its_part(database: Any) -> None:
    """Changes before the savepoint commit; its add, change and removal are undone."""
    with database.unit_of_work() as uow:
        lines = uow.repository(Line)
        first, second = lines.get(1).unwrap(), lines.get(2).unwrap()
        first.text = "before"
        with pytest.raises(PartFailed):
            _failing_part(
                uow,
                lambda: lines.add(Line(3, "three")),
                lambda: setattr(first, "text", "inside"),
                lambda: lines.remove(second),
            )
        assert (first.text, lines.get(2).unwrap() is second) == ("before", True)
        assert lines.get(3).failure().kind == "NotFound"
        assert uow.commit() == Success(None)
    assert _stored(database) == {1: "before", 2: "two"}


def test_savepoints_nest(database: Any) -> None:
    """An inner savepoint's failure leaves the outer savepoint's work in place."""
    with database.unit_of_work() as uow:
        lines = uow.repository(Line)
        with uow.savepoint():
            lines.add(Line(3, "outer"))
            with pytest.raises(PartFailed):
                _failing_part(
                    uow,
                    lambda: lines.add(Line(4, "inner")),
                    lambda: setattr(lines.get(3).unwrap(), "text", "changed"),
                )
        assert uow.commit() == Success(None)
    assert _stored(database) == {1: "one", 2: "two", 3: "outer"}


def test_a_new_entity_removed_in_a_failed_savepoint_comes_back(database: Any) -> None:
    """A staged add removed inside a failed savepoint is staged again afterwards."""
    with database.unit_of_work() as uow:
        lines = uow.repository(Line)
        fresh = Line(5, "fresh")
        lines.add(fresh)
        with pytest.raises(PartFailed):
            _failing_part(uow, lambda: lines.remove(fresh))
        assert lines.get(5).unwrap() is fresh
        assert uow.commit() == Success(None)
    assert _stored(database)[5] == "fresh"


def test_commit_inside_a_savepoint_is_refused(database: Any) -> None:
    """commit() inside a savepoint is InvalidRequest; after it, the unit commits."""
    with database.unit_of_work() as uow:
        with uow.savepoint():
            uow.repository(Line).add(Line(6, "six"))
            assert uow.commit().failure().kind == "InvalidRequest"
        assert uow.commit() == Success(None)
    assert 6 in _stored(database)


def test_a_caught_failure_of_a_nested_unit_dooms_the_outer_commit(database: Any) -> None:
    """An exception leaving an inner `with uow:` dooms the unit, even if the caller catches it."""
    with database.unit_of_work() as uow:
        uow.repository(Line).add(Line(7, "seven"))
        try:
            with uow:
                uow.repository(Line).add(Line(8, "eight"))
                raise RuntimeError("inner unit failed")
        except RuntimeError:
            pass
        error = uow.commit().failure()
        assert (error.kind, "inner block failed" in error.message) == ("InvalidRequest", True)
    assert _stored(database) == {1: "one", 2: "two"}
