"""Repository queries: SQL's NULL rules and one NULL order on the fake and every backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from returns.result import Success
from sqlalchemy import JSON, Column, Integer, String, Table

from portside.adapters.entities import Entities
from portside.ports import field
from tests.integration._uow_backends import BACKENDS, database_for


@attrs.define(slots=False, eq=False)
class Task:
    id: int
    title: str
    rank: int | None = None
    doc: Any = None


@pytest.fixture(name="database", params=BACKENDS)
def _database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    entities = Entities()
    table = Table(
        f"ps_tasks_{uuid.uuid4().hex[:10]}",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("title", String(20), nullable=False),
        Column("rank", Integer),
        Column("doc", JSON),
        mysql_collate="utf8mb4_bin",
    )
    entities.map(Task, table)
    with database_for(request, tmp_path, entities) as database:
        with database.unit_of_work() as uow:
            tasks = uow.repository(Task)
            for key, title, rank in [(1, "b", 2), (2, "a", None), (3, "c", 1), (4, "a", 3)]:
                tasks.add(Task(key, title, rank))
            assert uow.commit() == Success(None)
        yield database


def _ids(database: Any, **query: Any) -> list[int]:
    with database.unit_of_work() as uow:
        return [task.id for task in uow.repository(Task).list(**query).unwrap()]


def test_nulls_sort_first_ascending_and_last_descending(database: Any) -> None:
    """order_by rank puts the NULL rank first; descending puts it last; ties go by key."""
    assert _ids(database, order_by="rank") == [2, 3, 1, 4]
    assert _ids(database, order_by=[field("rank").desc()]) == [4, 1, 3, 2]
    assert _ids(database, order_by=["title", field("rank").desc()]) == [4, 2, 1, 3]


def test_comparisons_with_a_null_field_are_false(database: Any) -> None:
    """ne, lt and in_ never match the NULL rank; is_none finds it; eq(None) is is_none."""
    assert _ids(database, where=field("rank").ne(2)) == [3, 4]
    assert _ids(database, where=[field("rank").lt(3)]) == [1, 3]
    assert _ids(database, where=field("rank").in_([1, None])) == [3]
    assert _ids(database, where=field("rank").is_none()) == [2]
    assert _ids(database, where={"rank": None}) == [2]
    assert _ids(database, where=field("rank").in_([])) == []


def test_conditions_order_and_page_combine(database: Any) -> None:
    """Conditions all hold, the order applies, then offset and limit (keyset by key works)."""
    query = {"where": [field("title").ge("a"), field("rank").is_not_none()], "order_by": "title"}
    assert _ids(database, **query) == [4, 1, 3]
    assert _ids(database, **query, limit=1, offset=1) == [1]
    assert _ids(database, where=field("id").gt(2), limit=1) == [3]


def test_count_sees_the_units_own_changes(database: Any) -> None:
    """count() counts committed rows and the unit's adds, changes and removals."""
    with database.unit_of_work() as uow:
        tasks = uow.repository(Task)
        assert tasks.count(where=field("title").eq("a")) == Success(2)
        tasks.add(Task(5, "a"))
        tasks.get(1).unwrap().title = "a"
        tasks.remove(tasks.get(2).unwrap())
        assert tasks.count(where=field("title").eq("a")) == Success(3)
        assert tasks.count() == Success(4)
        listed = tasks.list(where={"title": "a"}, order_by=field("id").desc()).unwrap()
        assert [task.id for task in listed] == [5, 4, 1]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"where": "title = 'a'"}, "where must be"),
        ({"where": [field("title").eq("a"), "rank"]}, "where must be"),
        ({"where": field("nope").eq(1)}, "no field 'nope'"),
        ({"where": field("rank").lt(None)}, "use is_none()"),
        ({"where": field("rank").in_("12")}, "in_() for 'rank'"),
        ({"where": field("rank").eq("3")}, "Task.rank must be an int"),
        ({"where": field("doc").eq({})}, "is JSON"),
        ({"order_by": 5}, "order_by must be"),
        ({"order_by": [field("doc").asc()]}, "is JSON"),
        ({"limit": "3"}, "limit must be an int"),
        ({"offset": -1}, "offset must be between"),
    ],
)
def test_a_bad_query_is_an_invalid_request_naming_the_argument(
    database: Any, query: dict[str, Any], words: str
) -> None:
    """Every malformed query is InvalidRequest before any SQL, and the unit still commits."""
    with database.unit_of_work() as uow:
        tasks = uow.repository(Task)
        tasks.add(Task(9, "z"))
        error = tasks.list(**query).failure()
        assert (error.kind, words in error.message) == ("InvalidRequest", True), error.message
        if set(query) == {"where"}:
            assert tasks.count(**query).failure().kind == "InvalidRequest"
        assert uow.commit() == Success(None)
    assert 9 in _ids(database)
