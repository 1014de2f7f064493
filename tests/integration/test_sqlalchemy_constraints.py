"""Constraints, foreign-key order, concurrency and lost connections on every backend.

The fake, SQLite, PostgreSQL and MariaDB give the same outcome and the same message.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from returns.result import Success
from sqlalchemy import Column, ForeignKey, Integer, String, Table, create_engine, text

from portside.adapters.entities import Entities
from portside.adapters.sqlalchemy import Database
from tests.integration._uow_backends import BACKENDS, database_for


@attrs.define(slots=False, eq=False)
class Shelf:
    id: int
    label: str
    version: int | None = None


@attrs.define(slots=False, eq=False)
class Box:
    id: int
    shelf_id: int | None


@attrs.frozen
class Store:
    database: Any
    shelves: str
    boxes: str


@pytest.fixture(name="store", params=BACKENDS)
def _store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    suffix = uuid.uuid4().hex[:10]
    entities = Entities()
    shelves = Table(
        f"ps_shelves_{suffix}",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("label", String(40), nullable=False, unique=True),
        Column("version", Integer, nullable=False),
        mysql_collate="utf8mb4_bin",
    )
    boxes = Table(
        f"ps_boxes_{suffix}",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("shelf_id", Integer, ForeignKey(shelves.c.id), nullable=True),
    )
    # Box sorts before Shelf: SQLAlchemy alone would insert the child first.
    entities.map(Shelf, shelves, version="version")
    entities.map(Box, boxes)
    with database_for(request, tmp_path, entities) as database:
        yield Store(database, shelves.name, boxes.name)


def _commit(store: Store, *entities: Any) -> Any:
    with store.database.unit_of_work() as uow:
        for entity in entities:
            assert uow.repository(type(entity)).add(entity) == Success(None)
        return uow.commit()


def test_a_duplicate_unique_value_is_a_conflict_naming_the_constraint(store: Store) -> None:
    """A second row with the same unique label is Conflict; the constraint is named."""
    assert _commit(store, Shelf(1, "top")) == Success(None)
    error = _commit(store, Shelf(2, "top")).failure()
    assert (error.kind, error.message) == (
        "Conflict",
        "Shelf.label: another row already has this value",
    )


def test_a_missing_required_value_is_an_invalid_request(store: Store) -> None:
    """A NULL in a NOT NULL column is InvalidRequest naming the column; nothing is written."""
    error = _commit(store, Shelf(1, None), Box(1, None)).failure()  # type: ignore[arg-type]
    assert (error.kind, error.message) == ("InvalidRequest", "Shelf.label must not be null")
    with store.database.unit_of_work() as uow:
        assert uow.repository(Box).list() == Success([])


def test_a_dangling_foreign_key_is_an_invalid_request(store: Store) -> None:
    """A box on a shelf that does not exist violates the foreign key: InvalidRequest."""
    error = _commit(store, Box(1, 99)).failure()
    message = "Box.shelf_id refers to a row that does not exist"
    assert (error.kind, error.message) == ("InvalidRequest", message)


def test_a_parent_and_its_child_added_in_one_unit_are_stored(store: Store) -> None:
    """Child added first, parent second, in one unit: inserted parent first, both stored."""
    assert _commit(store, Box(1, 7), Shelf(7, "top")) == Success(None)
    with store.database.unit_of_work() as uow:
        box = uow.repository(Box).get(1).unwrap()
        assert uow.repository(Shelf).get(box.shelf_id).unwrap().label == "top"
        # Removed parent first, child second: deleted child first, both gone.
        assert uow.repository(Shelf).remove(uow.repository(Shelf).get(7).unwrap()) == Success(None)
        assert uow.repository(Box).remove(box) == Success(None)
        assert uow.commit() == Success(None)
    with store.database.unit_of_work() as uow:
        assert (uow.repository(Box).list(), uow.repository(Shelf).list()) == (Success([]),) * 2


def test_a_child_moved_to_a_new_parent_in_one_unit_is_stored(store: Store) -> None:
    """An update pointing a child at a parent inserted in the same unit succeeds."""
    assert _commit(store, Shelf(1, "old"), Box(1, 1)) == Success(None)
    with store.database.unit_of_work() as uow:
        uow.repository(Box).get(1).unwrap().shelf_id = 2
        uow.repository(Shelf).add(Shelf(2, "new"))
        assert uow.commit() == Success(None)
    with store.database.unit_of_work() as uow:
        assert uow.repository(Box).get(1).unwrap().shelf_id == 2


def test_removing_a_parent_still_referred_to_is_refused(store: Store) -> None:
    """A shelf with a box on it cannot go: InvalidRequest naming both; nothing written."""
    assert _commit(store, Shelf(1, "top"), Box(1, 1)) == Success(None)
    with store.database.unit_of_work() as uow:
        shelves = uow.repository(Shelf)
        shelves.remove(shelves.get(1).unwrap())
        uow.repository(Box).add(Box(2, None))
        error = uow.commit().failure()
    message = "Shelf is still referred to by Box.shelf_id"
    assert (error.kind, error.message) == ("InvalidRequest", message)
    with store.database.unit_of_work() as uow:
        assert [b.id for b in uow.repository(Box).list().unwrap()] == [1]
        assert uow.repository(Shelf).get(1).unwrap().label == "top"


def test_a_version_the_application_bumps_still_guards_the_row(store: Store) -> None:
    """Two units bump version 1 to 2 themselves: the first commits it, the second conflicts."""
    assert _commit(store, Shelf(1, "top")) == Success(None)
    with store.database.unit_of_work() as one, store.database.unit_of_work() as two:
        mine, theirs = (uow.repository(Shelf).get(1).unwrap() for uow in (one, two))
        mine.version += 1
        theirs.version += 1
        theirs.label = "theirs"
        assert one.commit() == Success(None)
        assert mine.version == 2
        assert two.commit().failure().kind == "Conflict"
    with store.database.unit_of_work() as uow:
        shelf = uow.repository(Shelf).get(1).unwrap()
        assert (shelf.label, shelf.version) == ("top", 2)


def test_a_swap_of_unique_values_conflicts_on_every_backend(store: Store) -> None:
    """Updates run one row at a time in key order: a swap of unique labels is Conflict."""
    assert _commit(store, Shelf(1, "a"), Shelf(2, "b")) == Success(None)
    with store.database.unit_of_work() as uow:
        shelves = uow.repository(Shelf)
        first, second = shelves.get(1).unwrap(), shelves.get(2).unwrap()
        first.label, second.label = "b", "a"
        assert uow.commit().failure().kind == "Conflict"
    with store.database.unit_of_work() as uow:
        assert [s.label for s in uow.repository(Shelf).list().unwrap()] == ["a", "b"]


def test_a_stale_version_is_a_conflict(store: Store) -> None:
    """Two units load version 1 of a shelf; the second commit is Conflict and writes nothing."""
    _commit(store, Shelf(1, "top"))
    with store.database.unit_of_work() as one, store.database.unit_of_work() as two:
        mine = one.repository(Shelf).get(1).unwrap()
        theirs = two.repository(Shelf).get(1).unwrap()
        theirs.label = "theirs"
        assert two.commit() == Success(None)
        mine.label = "mine"
        one.repository(Box).add(Box(1, 1))
        assert one.commit().failure().kind == "Conflict"
    with store.database.unit_of_work() as uow:
        shelf = uow.repository(Shelf).get(1).unwrap()
        assert (shelf.label, shelf.version) == ("theirs", 2)
        assert uow.repository(Box).list() == Success([])


def test_list_filters_orders_and_pages_with_bound_parameters(store: Store) -> None:
    """list() filters by equality, orders by key and pages; a hostile value is just a value."""
    _commit(store, *(Shelf(k, f"s{k % 2}-{k}") for k in (5, 3, 1, 4, 2)))
    _commit(store, Shelf(9, "x' OR '1'='1"))
    with store.database.unit_of_work() as uow:
        shelves = uow.repository(Shelf)
        assert [s.id for s in shelves.list(limit=2, offset=1).unwrap()] == [2, 3]
        assert [s.id for s in shelves.list(where={"label": "s1-3"}).unwrap()] == [3]
        assert shelves.list(where={"label": "' OR '1'='1"}) == Success([])
        assert [s.id for s in shelves.list(where={"label": "x' OR '1'='1"}).unwrap()] == [9]


@pytest.mark.services
def test_a_lost_connection_is_unavailable(postgres_url: str) -> None:
    """A PostgreSQL backend killed mid-unit makes commit Unavailable; the next unit works."""
    suffix = uuid.uuid4().hex[:10]
    entities = Entities()
    table = Table(
        f"ps_lost_{suffix}",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("label", String(40), nullable=False),
        Column("version", Integer, nullable=False),
    )

    @attrs.define(slots=False, eq=False)
    class Tag:
        id: int
        label: str
        version: int | None = None

    entities.map(Tag, table, version="version")
    database = Database.from_url(entities, postgres_url)
    database.create_all()
    killer = create_engine(postgres_url)
    try:
        with database.unit_of_work() as uow:
            uow.repository(Tag).add(Tag(1, "a"))
            uow.commit()
        with database.unit_of_work() as uow:
            tag = uow.repository(Tag).get(1).unwrap()
            pid = uow.session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with killer.begin() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            tag.label = "b"
            error = uow.commit().failure()
            assert (error.kind, error.retryable) == ("Unavailable", True)
        with database.unit_of_work() as uow:
            assert uow.repository(Tag).get(1).unwrap().label == "a"
    finally:
        assert database.engine is not None
        entities.drop_all(database.engine)
        database.close()
        killer.dispose()
        entities.dispose()


def test_integers_beyond_64_bits_are_invalid_requests(store: Store) -> None:
    """A field, filter or page beyond 64 bits is InvalidRequest; nothing is written."""
    error = _commit(store, Box(1, 2**64)).failure()
    assert error.kind == "InvalidRequest"
    with store.database.unit_of_work() as uow:
        boxes = uow.repository(Box)
        assert boxes.list(where={"shelf_id": 2**64}).failure().kind == "InvalidRequest"
        assert boxes.list(limit=2**64).failure().kind == "InvalidRequest"
        assert boxes.list(limit=2**63 - 1, offset=1) == Success([])
