"""What the unit-of-work kit runs against: its entity, and backends for the fake and SQL.

Part of the contract kit (``portside.adapters.testing._uow_kit`` re-exports every name).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from sqlalchemy import Column, Integer, String, Table, delete

from portside.adapters.entities import Entities
from portside.adapters.memory._uow import MemoryDatabase
from portside.adapters.sqlalchemy import Database
from portside.ports._uow import UnitOfWork

__all__ = [
    "KitEntity",
    "MemoryBackend",
    "UowBackend",
    "kit_entities",
    "memory_backend",
    "sqlalchemy_backend",
]


class KitEntity(Protocol):
    """The shape of the entity the kit stores: a key, a name and a version."""

    id: int
    name: str
    version: int | None


class UowBackend(Protocol):
    """What the kit needs from the system under test."""

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work."""
        ...

    def reset(self) -> None:
        """Delete every stored kit entity (called before each generated example)."""
        ...

    def close(self) -> None:
        """Release everything, dropping what the kit created."""
        ...


def kit_entities(table_name: str | None = None) -> tuple[Entities, type[Any]]:
    """A fresh registry with a fresh versioned entity class mapped to its own table."""

    @attrs.define(slots=False, eq=False)
    class Item:
        id: int
        name: str
        version: int | None = None

    name = table_name or f"ps_kit_{uuid.uuid4().hex[:12]}"
    entities = Entities()
    table = Table(
        name,
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("name", String(16), nullable=False),
        Column("version", Integer, nullable=False),
        # MariaDB compares strings case-insensitively by default; the kit means bytes.
        mysql_collate="utf8mb4_bin",
    )
    entities.map(Item, table, version="version")
    return entities, Item


@attrs.define
class MemoryBackend(UowBackend):
    """A ``MemoryDatabase`` (or a subclass under test) as a system under test."""

    database: MemoryDatabase

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work over the database."""
        return self.database.unit_of_work()

    def reset(self) -> None:
        """Forget every committed entity."""
        self.database.clear()

    def close(self) -> None:
        """Forget every committed entity."""
        self.database.clear()


def memory_backend(entities: Entities) -> UowBackend:
    """The in-memory fake as a system under test (the kit's own self-check)."""
    return MemoryBackend(MemoryDatabase(entities))


@attrs.define
class _SqlBackend(UowBackend):
    database: Database

    def unit_of_work(self) -> UnitOfWork:
        return self.database.unit_of_work()

    def reset(self) -> None:
        assert self.database.engine is not None
        with self.database.engine.begin() as connection:
            for spec in self.database.entities:
                connection.execute(delete(spec.table))

    def close(self) -> None:
        try:
            if self.database.engine is not None:
                self.database.entities.drop_all(self.database.engine)
        finally:
            self.database.close()


def sqlalchemy_backend(url: str, **engine_options: Any) -> Callable[[Entities], UowBackend]:
    """A factory of SQLAlchemy backends on ``url`` that create and drop the kit's table."""

    def make(entities: Entities) -> UowBackend:
        database = Database.from_url(entities, url, **engine_options)
        database.create_all()
        return _SqlBackend(database)

    return make
