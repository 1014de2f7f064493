"""Flask integration: services per application, a unit of work per request, a health check.

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
"""

from __future__ import annotations

from typing import Any

from portside.adapters._extras import require

require("flask", "flask")

import flask  # noqa: E402 - after the one-line missing-extra check

from portside.adapters.app._health import check_services  # noqa: E402
from portside.adapters.app._services import Services, build_services  # noqa: E402
from portside.adapters.entities import Entities  # noqa: E402
from portside.ports._uow import UnitOfWork  # noqa: E402

__all__ = ["current_services", "init_app", "init_db", "request_unit_of_work"]

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
    rows = check_services(current_services())
    healthy = all(row.ok for row in rows)
    body = {
        "status": "ok" if healthy else "degraded",
        "services": [
            {
                "service": r.service,
                "adapter": r.adapter,
                "status": r.status,
                "latency_ms": round(r.latency_ms, 2),
            }
            for r in rows
        ],
    }
    return body, 200 if healthy else 503


def init_db(app: Any, entities: Entities | None = None) -> Services:
    """Flask helper: attach portside services to ``app`` (the seed-style name of ``init_app``).

    Uses the app's Flask-SQLAlchemy engine when it has one, else ``DATABASE_URL``.
    """
    return init_app(app, entities=entities)
