"""The SQLAlchemy unit of work on SQLite: set-up, bad input and the application's own engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from returns.result import Success
from sqlalchemy import Column, Integer, String, Table, create_engine, func, select, text
from sqlalchemy.orm import sessionmaker

from portside.adapters.entities import Entities
from portside.adapters.sqlalchemy import Database, make_engine


@attrs.define(slots=False, eq=False)
class Book:
    id: int
    title: str
    version: int | None = None


@attrs.define(slots=False, eq=False)
class Unmapped:
    id: int


@pytest.fixture(name="library")
def _library(tmp_path: Path) -> Iterator[tuple[Database, Table]]:
    entities = Entities()
    table = Table(
        "books",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("title", String(80), nullable=False),
        Column("version", Integer, nullable=False),
    )
    entities.map(Book, table, version="version")
    database = Database.from_url(entities, f"sqlite:///{tmp_path / 'library.sqlite3'}")
    database.create_all()
    yield database, table
    database.close()
    entities.dispose()


def _count(database: Database, table: Table) -> int:
    assert database.engine is not None
    with database.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_sqlite_runs_in_wal_mode_with_foreign_keys(library: tuple[Database, Table]) -> None:
    """Every SQLite connection has WAL journaling and foreign keys switched on."""
    database, _ = library
    assert database.engine is not None
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    assert database.engine.pool._pre_ping  # type: ignore[attr-defined]


def test_default_url_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a URL the engine uses DATABASE_URL, else an SQLite file."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    assert str(make_engine().url).endswith("env.sqlite3")
    monkeypatch.delenv("DATABASE_URL")
    assert make_engine().url.drivername == "sqlite"


def test_adding_an_unmapped_object_raises_and_writes_nothing(
    library: tuple[Database, Table],
) -> None:
    """An unregistered class or a foreign object is a TypeError; no row is written."""
    database, table = library
    with database.unit_of_work() as uow:
        with pytest.raises(TypeError, match="not a registered entity"):
            uow.repository(Unmapped)
        with pytest.raises(TypeError, match="expected a Book"):
            uow.repository(Book).add(Unmapped(1))  # type: ignore[arg-type]
        assert uow.commit() == Success(None)
    assert _count(database, table) == 0


def test_a_wrong_typed_key_is_an_invalid_request(library: tuple[Database, Table]) -> None:
    """get() with a key of the wrong type is InvalidRequest before any SQL is sent."""
    database, _ = library
    with database.unit_of_work() as uow:
        error = uow.repository(Book).get("1").failure()
        assert (error.kind, error.message) == ("InvalidRequest", "a Book key must be int, not str")
        assert uow.repository(Book).get(True).failure().kind == "InvalidRequest"


def test_a_repository_outside_its_block_raises(library: tuple[Database, Table]) -> None:
    """Using a unit of work or its repository after the block is RuntimeError; nothing written."""
    database, table = library
    uow = database.unit_of_work()
    with pytest.raises(RuntimeError):
        uow.repository(Book)
    with uow:
        books = uow.repository(Book)
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        books.add(Book(1, "Dune"))
    with pytest.raises(RuntimeError):
        uow.commit()
    assert _count(database, table) == 0


def test_committing_twice_writes_only_what_changed(library: tuple[Database, Table]) -> None:
    """A second commit with nothing new is a no-op; with a change it writes just that."""
    database, table = library
    book = Book(1, "Dune")
    with database.unit_of_work() as uow:
        uow.repository(Book).add(book)
        assert uow.commit() == Success(None)
        assert uow.commit() == Success(None)
        assert book.version == 1
        book.title = "Dune Messiah"
        assert uow.commit() == Success(None)
        assert book.version == 2
    assert book.title == "Dune Messiah"  # still readable after the block
    assert _count(database, table) == 1


def test_a_failed_commit_writes_nothing(library: tuple[Database, Table]) -> None:
    """When the last change of a commit fails, the earlier ones are not written either."""
    database, table = library
    with database.unit_of_work() as uow:
        uow.repository(Book).add(Book(1, "Dune"))
        uow.commit()
    with database.unit_of_work() as uow:
        books = uow.repository(Book)
        books.add(Book(2, "Emma"))
        books.add(Book(1, "Duplicate"))
        assert uow.commit().failure().kind == "Conflict"
    assert _count(database, table) == 1


def test_an_engine_the_application_owns(tmp_path: Path) -> None:
    """from_engine and from_session_factory use the application's engine and never dispose it."""
    entities = Entities()
    table = Table(
        "films",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("title", String(80), nullable=False),
        Column("version", Integer, nullable=False),
    )

    @attrs.define(slots=False, eq=False)
    class Film:
        id: int
        title: str
        version: int | None = None

    entities.map(Film, table, version="version")
    engine = create_engine(f"sqlite:///{tmp_path / 'own.sqlite3'}")
    own = Database.from_engine(entities, engine)
    own.create_all()
    with own.unit_of_work() as uow:
        uow.repository(Film).add(Film(1, "Alien"))
        assert uow.commit() == Success(None)
    own.close()
    factory = Database.from_session_factory(entities, sessionmaker(engine))
    with factory.unit_of_work() as uow:
        assert uow.repository(Film).get(1).unwrap().title == "Alien"
    with engine.connect() as connection:  # still usable: nobody disposed it
        assert connection.execute(select(func.count()).select_from(table)).scalar_one() == 1
    engine.dispose()
    entities.dispose()


def test_flask_sqlalchemy_engine(tmp_path: Path) -> None:
    """An application on Flask-SQLAlchemy hands its engine to portside inside an app context."""
    flask = pytest.importorskip("flask")
    flask_sqlalchemy: Any = pytest.importorskip("flask_sqlalchemy")
    app = flask.Flask("shop")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'flask.sqlite3'}"
    db = flask_sqlalchemy.SQLAlchemy(app)
    entities = Entities()
    table = Table(
        "pens",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("title", String(80), nullable=False),
    )

    @attrs.define(slots=False, eq=False)
    class Pen:
        id: int
        title: str

    entities.map(Pen, table)
    with app.app_context():
        database = Database.from_engine(entities, db.engine)
        database.create_all()
        with database.unit_of_work() as uow:
            uow.repository(Pen).add(Pen(1, "fountain"))
            assert uow.commit() == Success(None)
        with database.unit_of_work() as uow:
            assert uow.repository(Pen).list().unwrap()[0].title == "fountain"
    entities.dispose()


def test_objects_of_another_unit_cannot_be_added(library: tuple[Database, Table]) -> None:
    """A loaded or committed object is InvalidRequest in another unit, open or finished."""
    database, table = library
    committed = Book(1, "Dune")
    with database.unit_of_work() as uow:
        uow.repository(Book).add(committed)
        uow.commit()
    with database.unit_of_work() as first, database.unit_of_work() as second:
        held = first.repository(Book).get(1).unwrap()
        for stale in (committed, held):
            error = second.repository(Book).add(stale).failure()
            assert (error.kind, "get it again" in error.message) == ("InvalidRequest", True)
        held.title = "changed while held elsewhere"
        assert second.commit() == Success(None)
    with database.unit_of_work() as uow:
        assert uow.repository(Book).get(1).unwrap().title == "Dune"
    assert _count(database, table) == 1


def test_a_new_object_belongs_to_one_open_unit(library: tuple[Database, Table]) -> None:
    """An object staged in one open unit is InvalidRequest in another until the first lets go."""
    database, _ = library
    fresh = Book(1, "Dune")
    with database.unit_of_work() as first:
        assert first.repository(Book).add(fresh) == Success(None)
        with database.unit_of_work() as second:
            assert second.repository(Book).add(fresh).failure().kind == "InvalidRequest"
    with database.unit_of_work() as third:
        assert third.repository(Book).add(fresh) == Success(None)


def test_a_loaded_key_stays_taken_after_its_object_is_dropped(
    library: tuple[Database, Table],
) -> None:
    """Even when the caller drops a loaded object, a second object with its key is Conflict."""
    import gc

    database, _ = library
    with database.unit_of_work() as uow:
        uow.repository(Book).add(Book(1, "Dune"))
        uow.commit()
    with database.unit_of_work() as uow:
        books = uow.repository(Book)
        first_id = id(books.get(1).unwrap())
        gc.collect()
        assert id(books.get(1).unwrap()) == first_id
        assert books.add(Book(1, "Other")).failure().kind == "Conflict"
