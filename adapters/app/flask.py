"""Flask integration: services per application, a unit of work per request, a health check.

Two ways to reach the database, on one engine and one connection pool:

- ``init_db(app)`` then ``db.session.add(...)``; ``db.session.commit()``: the
  Flask-SQLAlchemy way, with ``db`` (a ``flask_sqlalchemy.SQLAlchemy``) configured from
  ``DATABASE_URL`` (normalised as the settings say) or the embedded SQLite file.
- ``request_unit_of_work()``: portside's unit of work, whose failures are values.

::

    app = Flask(__name__)
    init_app(app)                       # or init_app(app, cache=MemoryCache()) in tests

    @app.post("/notes")
    def create():
        uow = request_unit_of_work()   # opened on first use, closed at teardown
        uow.repository(Note).add(...)
        uow.commit()
        ...

Needs the ``flask`` extra.

The two do not share a transaction: ``db.session`` and a unit of work are two sessions
on the same pool, each committing on its own.
"""

from __future__ import annotations

from typing import Any

from portside.adapters._extras import require

require("flask", "flask")

import os  # noqa: E402 - after the one-line missing-extra check

import flask  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402

from portside.adapters.app._health import check_services, health_body  # noqa: E402
from portside.adapters.app._services import Services, build_services  # noqa: E402
from portside.adapters.app._settings import load_settings  # noqa: E402
from portside.adapters.entities import Entities  # noqa: E402
from portside.ports._uow import UnitOfWork  # noqa: E402

__all__ = ["current_services", "db", "init_app", "init_db", "request_unit_of_work"]

#: The Flask-SQLAlchemy extension ``init_db`` configures: declare models on ``db.Model``.
db = SQLAlchemy()

_EXTENSION = "portside"
_G_UOW = "_portside_uow"


def init_app(
    app: flask.Flask,
    services: Services | None = None,
    *,
    entities: Entities | None = None,
    health_path: str | None = "/healthz",
    **overrides: Any,
) -> Services:
    """Attach portside services to ``app`` and return them.

    ``services`` is used as given; otherwise they are built from the environment with
    ``overrides`` (any port, e.g. ``cache=MemoryCache()``), so tests swap adapters
    without monkey-patching. When the app already uses Flask-SQLAlchemy, its engine is
    shared instead of opening a second pool. ``health_path`` (``None`` to skip) serves
    a JSON health report: 200 when every service answers, 503 otherwise.
    """
    if services is None:
        if "database" not in overrides and "sqlalchemy" in app.extensions:
            overrides["database"] = _flask_sqlalchemy_database(app, entities or Entities())
        services = build_services(entities=entities, **overrides)
    app.extensions[_EXTENSION] = services
    app.teardown_appcontext(_close_request_unit_of_work)
    if health_path is not None:
        app.add_url_rule(health_path, "portside_health", _health, methods=["GET"])
    return services


def _flask_sqlalchemy_database(app: flask.Flask, entities: Entities) -> Any:
    from portside.adapters.sqlalchemy import Database

    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    return Database.from_engine(entities, engine)


def current_services() -> Services:
    """The services of the current Flask application (``RuntimeError`` outside one)."""
    try:
        services: Services = flask.current_app.extensions[_EXTENSION]
    except KeyError:
        raise RuntimeError("portside is not initialised on this app: call init_app(app)") from None
    return services


def request_unit_of_work() -> UnitOfWork:
    """The unit of work of the current request, opened on first use.

    It is exited at teardown: anything not committed by then is rolled back, and an
    exception that ended the request rolls it back too.
    """
    uow: UnitOfWork | None = flask.g.get(_G_UOW)
    if uow is None:
        uow = current_services().unit_of_work()
        uow.__enter__()
        setattr(flask.g, _G_UOW, uow)
    return uow


def _close_request_unit_of_work(exc: BaseException | None) -> None:
    uow: UnitOfWork | None = flask.g.pop(_G_UOW, None)
    if uow is not None:
        uow.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)


def _health() -> tuple[dict[str, Any], int]:
    return health_body(check_services(current_services()))


def init_db(
    app: flask.Flask,
    entities: Entities | None = None,
    *,
    database: SQLAlchemy | None = None,
    create_tables: bool = True,
) -> Services:
    """Set up Flask-SQLAlchemy on ``app`` from portside's settings, then ``init_app``.

    ``database`` (default: this module's ``db``) gets ``DATABASE_URL`` as the settings
    normalise it (``postgres://`` -> ``postgresql+psycopg://``), or the embedded SQLite
    file ``PORTSIDE_SQLITE_PATH`` as an absolute path (Flask-SQLAlchemy would otherwise
    put a relative one in the instance folder), unless ``SQLALCHEMY_DATABASE_URI`` is
    already set. With ``create_tables`` the tables of its models are created. The
    services returned share its engine, so ``db.session`` and the unit of work use one
    pool. Raises ``SettingsError`` for invalid settings.
    """
    extension = db if database is None else database
    if "SQLALCHEMY_DATABASE_URI" not in app.config:
        settings = load_settings()
        url = settings.connections.database_url
        if url is None:
            url = "sqlite:///" + os.path.abspath(settings.tuning.sqlite_path)
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    extension.init_app(app)
    if create_tables:
        with app.app_context():
            extension.create_all()
    return init_app(app, entities=entities)
