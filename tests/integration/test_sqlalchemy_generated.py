"""Keys the database or a column default makes: available after commit on every backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from returns.result import Success
from sqlalchemy import Column, Integer, String, Table, Uuid

from portside.adapters.entities import Entities
from tests.integration._uow_backends import BACKENDS, database_for


@attrs.define(slots=False, eq=False)
class Ticket:
    title: str
    id: int | None = None
    state: str | None = None


@attrs.define(slots=False, eq=False)
class Badge:
    title: str
    id: uuid.UUID | None = None


@pytest.fixture(name="database", params=BACKENDS)
def _database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    suffix = uuid.uuid4().hex[:10]
    entities = Entities()
    tickets = Table(
        f"ps_tickets_{suffix}",
        entities.metadata,
        Column("id", Integer, primary_key=True),  # autoincrement / SERIAL / AUTO_INCREMENT
        Column("title", String(20), nullable=False),
        Column("state", String(10), nullable=False, default="open"),
    )
    badges = Table(
        f"ps_badges_{suffix}",
        entities.metadata,
        Column("id", Uuid, primary_key=True, default=uuid.uuid4),
        Column("title", String(20), nullable=False),
    )
    entities.map(Ticket, tickets)
    entities.map(Badge, badges)
    with database_for(request, tmp_path, entities) as database:
        yield database


def test_an_autoincrement_key_is_set_at_commit(database: Any) -> None:
    """Two tickets added without keys get distinct integer keys; a default fills state."""
    first, second = Ticket("a"), Ticket("b")
    with database.unit_of_work() as uow:
        tickets = uow.repository(Ticket)
        assert (tickets.add(first), tickets.add(second)) == (Success(None), Success(None))
        assert first.id is None
        assert uow.commit() == Success(None)
        assert isinstance(first.id, int)
        assert isinstance(second.id, int)
        assert first.id != second.id
        assert first.state == "open"
        assert tickets.get(first.id).unwrap() is first
    with database.unit_of_work() as uow:
        stored = uow.repository(Ticket).get(second.id).unwrap()
        assert (stored.title, stored.state) == ("b", "open")


def test_a_uuid_default_key_is_set_at_commit(database: Any) -> None:
    """A badge added without a key gets a UUID from the column default, found by it later."""
    badge = Badge("gold")
    with database.unit_of_work() as uow:
        assert uow.repository(Badge).add(badge) == Success(None)
        assert uow.commit() == Success(None)
    assert isinstance(badge.id, uuid.UUID)
    with database.unit_of_work() as uow:
        assert uow.repository(Badge).get(badge.id).unwrap().title == "gold"


def test_a_keyless_entity_removed_before_commit_is_never_written(database: Any) -> None:
    """remove() of a staged keyless entity unstages it; a rolled-back one stays keyless."""
    dropped, rolled_back = Ticket("dropped"), Ticket("rolled back")
    with database.unit_of_work() as uow:
        tickets = uow.repository(Ticket)
        tickets.add(dropped)
        assert tickets.remove(dropped) == Success(None)
        tickets.add(rolled_back)
        uow.rollback()
        assert uow.commit() == Success(None)
    assert (dropped.id, rolled_back.id) == (None, None)
    with database.unit_of_work() as uow:
        assert uow.repository(Ticket).list() == Success([])


def test_a_bad_value_in_a_keyless_entity_is_refused_and_nothing_written(database: Any) -> None:
    """A generated key does not skip the column checks: a long title is InvalidRequest."""
    with database.unit_of_work() as uow:
        uow.repository(Ticket).add(Ticket("x" * 21))
        error = uow.commit().failure()
    assert (error.kind, error.message) == (
        "InvalidRequest",
        "Ticket.title is longer than its 20 characters",
    )
    with database.unit_of_work() as uow:
        assert uow.repository(Ticket).list() == Success([])
