"""Declaring entities once, and the fake's answers to bad input."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from returns.result import Success
from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryDatabase


@attrs.define(slots=False, eq=False)
class Note:
    id: str
    text: str | None = None
    tags: list[str] = attrs.Factory(list)


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(40))
    revision: Mapped[int] = mapped_column()
    __mapper_args__ = {"version_id_col": revision}


@pytest.fixture(name="notes")
def _notes() -> Iterator[tuple[Entities, MemoryDatabase]]:
    entities = Entities()
    table = Table(
        "notes",
        entities.metadata,
        Column("id", String(20), primary_key=True),
        Column("text", String(200), nullable=False),
        Column("tags", JSON, nullable=False, default=list),
    )
    entities.map(Note, table)
    yield entities, MemoryDatabase(entities)
    entities.dispose()


def test_imperative_spec_knows_key_fields_and_no_version(
    notes: tuple[Entities, MemoryDatabase],
) -> None:
    """An imperative mapping records the key, its type, every field and no version."""
    entities, _ = notes
    spec = entities.spec(Note)
    assert (spec.key, spec.key_type, spec.version) == ("id", str, None)
    assert spec.fields == ("id", "text", "tags")


def test_declarative_models_bring_their_version_column() -> None:
    """A declarative model's version_id_col becomes the spec's version attribute."""
    entities = Entities()
    spec = entities.declared(Customer)
    assert (spec.key, spec.key_type, spec.version) == ("id", int, "revision")
    db = MemoryDatabase(entities)
    with db.unit_of_work() as uow:
        customer = Customer(id=1, name="Ada")
        uow.repository(Customer).add(customer)
        assert uow.commit() == Success(None)
        assert customer.revision == 1


def test_unusable_classes_are_refused_at_declaration() -> None:
    """Slotted classes, unknown version columns, composite keys and plain classes raise."""
    entities = Entities()

    @attrs.define
    class Slotted:
        id: int

    @attrs.define(slots=False)
    class Pair:
        a: int
        b: int

    table = Table("slotted", entities.metadata, Column("id", Integer, primary_key=True))
    with pytest.raises(TypeError, match="slots=False"):
        entities.map(Slotted, table)
    with pytest.raises(ValueError, match="no column 'v'"):
        entities.map(Pair, table, version="v")
    pairs = Table(
        "pairs",
        entities.metadata,
        Column("a", Integer, primary_key=True),
        Column("b", Integer, ForeignKey("slotted.id"), primary_key=True),
    )
    with pytest.raises(ValueError, match="single-column primary key"):
        entities.map(Pair, pairs)
    with pytest.raises(TypeError, match="not a mapped class"):
        entities.declared(Note)
    entities.dispose()


def test_unregistered_types_and_wrong_objects_raise(
    notes: tuple[Entities, MemoryDatabase],
) -> None:
    """repository() of an unregistered class and add() of a foreign object are TypeError."""
    _, db = notes
    with db.unit_of_work() as uow:
        with pytest.raises(TypeError, match="not a registered entity"):
            uow.repository(dict)
        with pytest.raises(TypeError, match="expected a Note"):
            uow.repository(Note).add(object())  # type: ignore[arg-type]


def test_bad_keys_are_invalid_requests(notes: tuple[Entities, MemoryDatabase]) -> None:
    """A key of the wrong type, or an unset key, is InvalidRequest naming the problem."""
    _, db = notes
    with db.unit_of_work() as uow:
        repo = uow.repository(Note)
        assert "must be str, not int" in repo.get(7).failure().message
        assert "not set" in repo.add(Note(None, "x")).failure().message  # type: ignore[arg-type]
        assert "no field 'colour'" in repo.list(where={"colour": 1}).failure().message
        assert "limit" in repo.list(limit=-1).failure().message
        assert "offset" in repo.list(offset=-1).failure().message
        assert uow.commit() == Success(None)
    with db.unit_of_work() as uow:
        assert uow.repository(Note).list() == Success([])


def test_duplicate_keys_conflict(notes: tuple[Entities, MemoryDatabase]) -> None:
    """A second object with a held key is Conflict at add; a stored key is Conflict at commit."""
    _, db = notes
    with db.unit_of_work() as uow:
        repo = uow.repository(Note)
        first = Note("n1", "a")
        assert repo.add(first) == Success(None)
        assert repo.add(first) == Success(None)
        assert repo.add(Note("n1", "b")).failure().kind == "Conflict"
        uow.commit()
    with db.unit_of_work() as uow:
        repo = uow.repository(Note)
        repo.add(Note("n1", "again"))
        repo.add(Note("n2", "new"))
        assert uow.commit().failure().kind == "Conflict"
        assert repo.get("n2").failure().kind == "NotFound"
    with db.unit_of_work() as uow:
        assert [n.text for n in uow.repository(Note).list().unwrap()] == ["a"]


def test_not_null_violations_name_the_column(notes: tuple[Entities, MemoryDatabase]) -> None:
    """A missing required value is InvalidRequest naming the column; nothing is written."""
    _, db = notes
    with db.unit_of_work() as uow:
        uow.repository(Note).add(Note("n1", None))
        error = uow.commit().failure()
        assert (error.kind, error.message) == ("InvalidRequest", "Note.text must not be null")


def test_removing_what_the_unit_does_not_hold_is_refused(
    notes: tuple[Entities, MemoryDatabase],
) -> None:
    """remove() of an entity not loaded or added in this unit is InvalidRequest."""
    _, db = notes
    with db.unit_of_work() as uow:
        assert uow.repository(Note).remove(Note("n1", "x")).failure().kind == "InvalidRequest"


def test_mutable_values_are_copied(notes: tuple[Entities, MemoryDatabase]) -> None:
    """Lists inside entities are copied both ways: no aliasing through a JSON column."""
    _, db = notes
    tags = ["a"]
    with db.unit_of_work() as uow:
        uow.repository(Note).add(Note("n1", "x", tags))
        uow.commit()
    tags.append("leaked")
    with db.unit_of_work() as uow:
        loaded = uow.repository(Note).get("n1").unwrap()
        assert loaded.tags == ["a"]
        loaded.tags.append("uncommitted")
    with db.unit_of_work() as uow:
        assert uow.repository(Note).get("n1").unwrap().tags == ["a"]


def test_a_removed_key_cannot_be_added_back_in_the_same_unit(
    notes: tuple[Entities, MemoryDatabase],
) -> None:
    """Adding a key removed in the same unit is Conflict until the removal is committed."""
    _, db = notes
    with db.unit_of_work() as uow:
        repo = uow.repository(Note)
        repo.add(Note("n1", "x"))
        uow.commit()
        repo.remove(repo.get("n1").unwrap())
        assert repo.add(Note("n1", "y")).failure().kind == "Conflict"
        uow.commit()
        assert repo.add(Note("n1", "y")) == Success(None)
        assert uow.commit() == Success(None)


def test_keys_cannot_change(notes: tuple[Entities, MemoryDatabase]) -> None:
    """Changing the key of a stored entity is InvalidRequest at commit."""
    _, db = notes
    with db.unit_of_work() as uow:
        uow.repository(Note).add(Note("n1", "x"))
        uow.commit()
        uow.repository(Note).get("n1").unwrap().id = "n2"
        assert uow.commit().failure().kind == "InvalidRequest"


def test_entity_specs_keep_any_unknown(notes: tuple[Entities, MemoryDatabase]) -> None:
    """Iterating a registry yields its specs."""
    entities, _ = notes
    assert [spec.entity_type for spec in entities] == [Note]


def test_models_with_their_own_relationship_get_no_second_one() -> None:
    """Declared models related by the application keep their order, with no overlap warning."""
    from sqlalchemy.orm import configure_mappers, relationship

    from portside.adapters.sqlalchemy import Database

    class Base(DeclarativeBase):
        pass

    class Parent(Base):
        __tablename__ = "ps_rel_parents"
        id = Column(Integer, primary_key=True, autoincrement=False)
        children = relationship("Child", back_populates="parent")

    class Child(Base):
        __tablename__ = "ps_rel_children"
        id = Column(Integer, primary_key=True, autoincrement=False)
        parent_id = Column(Integer, ForeignKey("ps_rel_parents.id"))
        parent = relationship(Parent, back_populates="children")

    entities = Entities()
    entities.declared(Child)
    entities.declared(Parent)
    configure_mappers()  # an overlap would warn here (warnings are errors in the suite)
    assert not any(prop.key.startswith("_portside") for prop in Child.__mapper__.attrs)
    database = Database.from_url(entities, "sqlite://")
    try:
        database.create_all()
        with database.unit_of_work() as uow:
            uow.repository(Child).add(Child(id=2, parent_id=1))
            uow.repository(Parent).add(Parent(id=1))
            assert uow.commit() == Success(None)
    finally:
        database.close()
        entities.dispose()
