"""What the unit-of-work kit runs against: its entity, and backends for the fake and SQL.

Part of the contract kit (``portside.adapters.testing._uow_kit`` re-exports every name).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    delete,
)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import sort_tables

from portside.adapters.entities import Entities
from portside.adapters.memory._uow import MemoryDatabase
from portside.adapters.sqlalchemy import Database
from portside.ports._uow import UnitOfWork

__all__ = [
    "KitEntity",
    "KitSchema",
    "MemoryBackend",
    "SqlBackend",
    "UowBackend",
    "delete_rows",
    "kit_entities",
    "kit_schema",
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


@attrs.frozen
class KitSchema:
    """The kit's entities: ``item`` (versioned), and ``bin`` with its child ``part``.

    ``part`` has a column of every common type (see ``part_columns``) and a foreign key
    to ``bin``; its ``code`` is unique. All three live in one ``Entities`` registry.
    """

    entities: Entities
    item: type[Any]
    bin: type[Any]
    part: type[Any]
    #: keys generated at commit: by the database (autoincrement) and by a UUID default
    note: type[Any]
    token: type[Any]


def kit_schema(table_name: str | None = None) -> KitSchema:
    """A fresh registry with the kit's entity classes mapped to fresh, unique tables."""

    @attrs.define(slots=False, eq=False)
    class Item:
        id: int
        name: str
        version: int | None = None

    @attrs.define(slots=False, eq=False)
    class Bin:
        id: int
        label: str

    @attrs.define(slots=False, eq=False)
    class Part:
        id: int
        code: str
        bin_id: int | None = None
        qty: int = 0
        flag: bool = False
        big: int | None = None
        price: Any = None
        weight: float | None = None
        made: Any = None
        day: Any = None
        note: str | None = None
        blob: bytes | None = None
        tag: Any = None

    @attrs.define(slots=False, eq=False)
    class Note:
        text: str
        id: int | None = None

    @attrs.define(slots=False, eq=False)
    class Token:
        text: str
        id: uuid.UUID | None = None

    name = table_name or f"ps_kit_{uuid.uuid4().hex[:12]}"
    entities = Entities()
    # MariaDB compares strings case-insensitively by default; the kit means bytes.
    table = Table(
        name,
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("name", String(16), nullable=False),
        Column("version", Integer, nullable=False),
        mysql_collate="utf8mb4_bin",
    )
    bins = Table(
        f"{name}_bin",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("label", String(8), nullable=False),
        mysql_collate="utf8mb4_bin",
    )
    parts = Table(
        f"{name}_part",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("code", String(8), nullable=False, unique=True),
        Column("bin_id", Integer, ForeignKey(bins.c.id), nullable=True),
        Column("qty", SmallInteger, nullable=False),
        Column("flag", Boolean, nullable=False),
        Column("big", BigInteger),
        Column("price", Numeric(6, 2)),
        Column("weight", Double),
        Column("made", DateTime),
        Column("day", Date),
        Column("note", Text),
        Column("blob", LargeBinary(16)),
        Column("tag", Uuid),
        mysql_collate="utf8mb4_bin",
    )
    notes = Table(
        f"{name}_note",
        entities.metadata,
        Column("id", Integer, primary_key=True),
        Column("text", String(8), nullable=False),
    )
    tokens = Table(
        f"{name}_token",
        entities.metadata,
        Column("id", Uuid, primary_key=True, default=uuid.uuid4),
        Column("text", String(8), nullable=False),
    )
    entities.map(Note, notes)
    entities.map(Token, tokens)
    entities.map(Item, table, version="version")
    # Part is registered before Bin and sorts before it: SQLAlchemy alone would insert
    # the child first.
    entities.map(Part, parts)
    entities.map(Bin, bins)
    return KitSchema(entities, Item, Bin, Part, Note, Token)


def kit_entities(table_name: str | None = None) -> tuple[Entities, type[Any]]:
    """A fresh registry with a fresh versioned entity class mapped to its own table.

    The registry holds the rest of the kit's schema too (``kit_schema``).
    """
    schema = kit_schema(table_name)
    return schema.entities, schema.item


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


def memory_backend(entities: Entities) -> MemoryBackend:
    """The in-memory fake as a system under test (the kit's own self-check)."""
    return MemoryBackend(MemoryDatabase(entities))


@attrs.define
class SqlBackend(UowBackend):
    """A SQL ``Database`` as a system under test; ``close()`` drops what it created."""

    database: Database

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work over the database."""
        return self.database.unit_of_work()

    def reset(self) -> None:
        """Delete every stored kit entity and every outbox message."""
        assert self.database.engine is not None
        with self.database.engine.begin() as connection:
            delete_rows(connection, self.database.entities)

    def close(self) -> None:
        """Drop the registered tables and the outbox, then close the database."""
        try:
            if self.database.engine is not None:
                self.database.entities.drop_all(self.database.engine)
        finally:
            self.database.close()


def delete_rows(connection: Connection, entities: Entities) -> None:
    """Delete every row of ``entities``' tables, children first, and the outbox's."""
    for table in reversed(sort_tables([spec.table for spec in entities])):
        connection.execute(delete(table))
    connection.execute(delete(entities.outbox))


def sqlalchemy_backend(url: str, **engine_options: Any) -> Callable[[Entities], SqlBackend]:
    """A factory of SQLAlchemy backends on ``url`` that create and drop the kit's table."""

    def make(entities: Entities) -> SqlBackend:
        database = Database.from_url(entities, url, **engine_options)
        database.create_all()
        return SqlBackend(database)

    return make
