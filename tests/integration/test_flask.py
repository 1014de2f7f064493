"""Flask integration: services per app, a unit of work per request, a health endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import flask
import pytest
from returns.result import Success
from sqlalchemy import Column, Integer, String, Table

from portside.adapters.app import build_services, load_settings
from portside.adapters.app.flask import (
    current_services,
    init_app,
    init_db,
    request_unit_of_work,
)
from portside.adapters.entities import Entities
from portside.adapters.memory import FakeLLM, MemoryCache, MemoryDatabase, MemoryQueue


@attrs.define(slots=False)
class Item:
    id: str
    name: str
    version: int = 0


@pytest.fixture(name="entities", scope="module")
def _entities() -> Entities:
    entities = Entities()
    table = Table(
        "flask_items",
        entities.metadata,
        Column("id", String(40), primary_key=True),
        Column("name", String(100)),
        Column("version", Integer, nullable=False),
    )
    entities.map(Item, table, version="version")
    return entities


def make_app(services: object) -> flask.Flask:
    """A small app with routes that stage, commit, fail and read."""
    app = flask.Flask("test")
    init_app(app, services)  # type: ignore[arg-type]

    @app.post("/items/<item_id>")
    def create(item_id: str) -> tuple[str, int]:
        uow = request_unit_of_work()
        uow.repository(Item).add(Item(item_id, flask.request.args.get("name", "")))
        if flask.request.args.get("commit") == "yes":
            uow.commit().unwrap()
        if flask.request.args.get("fail") == "yes":
            raise RuntimeError("handler failed after staging")
        return "", 201

    @app.get("/items/<item_id>")
    def read(item_id: str) -> tuple[str, int]:
        match request_unit_of_work().repository(Item).get(item_id):
            case Success(item):
                return item.name, 200
        return "", 404

    @app.get("/adapters")
    def adapters() -> dict[str, str]:
        return current_services().adapters

    return app


@pytest.fixture(name="client")
def _client(entities: Entities) -> Iterator[flask.testing.FlaskClient]:
    services = build_services(
        load_settings({}),
        database=MemoryDatabase(entities),
        cache=MemoryCache(),
        queue=MemoryQueue(),
        llm=FakeLLM(),
    )
    app = make_app(services)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    yield app.test_client()
    services.close()


def test_a_committed_request_is_visible_to_the_next(client: flask.testing.FlaskClient) -> None:
    """A request that commits its unit of work stores the entity for later requests."""
    assert client.post("/items/a?name=apple&commit=yes").status_code == 201
    assert client.get("/items/a").text == "apple"


def test_an_uncommitted_request_is_rolled_back_at_teardown(
    client: flask.testing.FlaskClient,
) -> None:
    """Staged changes a request did not commit are discarded when it ends."""
    assert client.post("/items/b?name=banana").status_code == 201
    assert client.get("/items/b").status_code == 404


def test_a_failing_request_rolls_back(client: flask.testing.FlaskClient) -> None:
    """An exception in the handler rolls the request's unit of work back."""
    assert client.post("/items/c?name=cherry&fail=yes").status_code == 500
    assert client.get("/items/c").status_code == 404


def test_ports_are_overridden_without_monkeypatching(client: flask.testing.FlaskClient) -> None:
    """The app uses the fakes it was given, as its adapters listing shows."""
    adapters = client.get("/adapters").json
    assert adapters == {
        "database": "MemoryDatabase",
        "cache": "MemoryCache",
        "queue": "MemoryQueue",
        "llm": "FakeLLM",
    }


def test_health_endpoint_reports_every_service(client: flask.testing.FlaskClient) -> None:
    """/healthz answers 200 with a row per service when all are up."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert {row["service"] for row in response.json["services"]} == {
        "database",
        "cache",
        "queue",
        "llm",
        "outbox",
    }


def test_health_endpoint_is_503_when_redis_is_down(tmp_path: Path, entities: Entities) -> None:
    """/healthz answers 503 and names the service when Redis is unreachable."""
    settings = load_settings(
        {"REDIS_URL": "redis://127.0.0.1:9/0", "PORTSIDE_SQLITE_PATH": str(tmp_path / "h.db")}
    )
    services = build_services(settings, entities=entities, llm=FakeLLM())
    try:
        response = make_app(services).test_client().get("/healthz")
        assert response.status_code == 503
        down = {r["service"] for r in response.json["services"] if r["status"] != "ok"}
        assert down == {"cache", "queue"}
    finally:
        services.close()


def test_flask_sqlalchemy_engine_is_shared(tmp_path: Path) -> None:
    """An app already using Flask-SQLAlchemy gets units of work on its own engine."""
    from flask_sqlalchemy import SQLAlchemy

    app = flask.Flask("fsa")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'fsa.db'}"
    db = SQLAlchemy(app)
    services = init_app(app, llm=FakeLLM(), cache=MemoryCache(), queue=MemoryQueue())
    try:
        with app.app_context():
            assert services.database.engine is db.engine  # type: ignore[union-attr]
    finally:
        services.close()


def test_current_services_outside_init_is_a_clear_error() -> None:
    """Using portside on an app that was never initialised names the fix."""
    app = flask.Flask("bare")
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        current_services()


def _library() -> tuple[Any, type]:
    """A Flask-SQLAlchemy extension of its own with one declarative model."""
    from flask_sqlalchemy import SQLAlchemy

    extension = SQLAlchemy()

    class Book(extension.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "init_db_books"
        id = extension.Column(extension.String(40), primary_key=True)
        title = extension.Column(extension.String(200), nullable=False)

    return extension, Book


def test_init_db_then_db_session_commits_to_the_configured_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init_db(app), then db.session.add and commit, stores a row the unit of work reads."""
    for name in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORTSIDE_SQLITE_PATH", "library.db")
    extension, book = _library()
    entities = Entities()
    entities.declared(book)
    app = flask.Flask("library")
    services = init_db(app, entities, database=extension)
    try:
        uri = app.config["SQLALCHEMY_DATABASE_URI"]
        assert uri == f"sqlite:///{tmp_path / 'library.db'}"  # absolute: one file, not two
        with app.app_context():
            extension.session.add(book(id="b1", title="Dune"))
            extension.session.commit()
            assert services.database.engine is extension.engine
        with services.unit_of_work() as uow:
            found = uow.repository(book).get("b1").unwrap()
        assert found.title == "Dune"
        assert (tmp_path / "library.db").exists()
    finally:
        services.close()


@pytest.mark.services
def test_init_db_normalises_a_postgres_url(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATABASE_URL=postgres://... reaches Flask-SQLAlchemy as postgresql+psycopg://."""
    scheme, rest = postgres_url.split("://", 1)
    assert scheme.startswith("postgresql")
    monkeypatch.setenv("DATABASE_URL", "postgres://" + rest)
    for name in ("REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    extension, book = _library()
    app = flask.Flask("library-pg")
    services = init_db(app, database=extension)
    try:
        assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://" + rest
        with app.app_context():
            extension.session.add(book(id=f"pg-{id(app)}", title="Emma"))
            extension.session.commit()
            assert extension.session.get(book, f"pg-{id(app)}").title == "Emma"
            extension.session.remove()  # its transaction would block dropping the table
            extension.drop_all()
    finally:
        services.close()


def test_init_db_keeps_an_explicit_database_uri(tmp_path: Path) -> None:
    """An app that set SQLALCHEMY_DATABASE_URI itself keeps it."""
    extension, _ = _library()
    app = flask.Flask("explicit")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'mine.db'}"
    services = init_db(app, database=extension, create_tables=False)
    try:
        assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("mine.db")
        assert not (tmp_path / "mine.db").exists()  # no tables asked for, nothing opened
    finally:
        services.close()
