"""The support desk's HTTP API (Flask).

- ``POST /tickets`` with ``{"customer", "subject", "body"}``: 201 and the ticket;
  400 naming the bad field; 503 when the store is down.
- ``GET /tickets[?status=&limit=&offset=]``: tickets in opening order with their triage.
- ``GET /tickets/<id>``: one ticket, 404 when unknown.
- ``GET /healthz``: portside's health report.

Reads go through the request's unit of work (``request_unit_of_work``); opening a
ticket goes through the ``Desk``, which commits the ticket and its triage job together
(the job through the outbox).
"""

from __future__ import annotations

from typing import Any, Final

import flask
from returns.result import Failure, Result, Success

from examples.support_desk.logic import Desk, list_tickets
from examples.support_desk.wiring import build_desk, services_from_environment
from portside.adapters.app import Services
from portside.adapters.app.flask import init_app, request_unit_of_work
from portside.domain import InvalidRequest, NotFound, ServiceError

__all__ = ["create_app", "desk"]

_DESK: Final = "support_desk"


def _status_of(error: ServiceError) -> int:
    if isinstance(error, InvalidRequest):
        return 400
    if isinstance(error, NotFound):
        return 404
    return 503 if error.retryable else 500


def _answer(result: Result[Any, ServiceError], status: int = 200) -> tuple[Any, int]:
    match result:
        case Success(value):
            return value, status
        case Failure(error):
            body = {"error": error.kind, "message": error.message}
            return body, _status_of(error)
    raise AssertionError("unreachable")  # pragma: no cover - Result has two cases


def desk() -> Desk:
    """The desk of the current Flask application."""
    found: Desk = flask.current_app.extensions[_DESK]
    return found


def create_app(services: Services | None = None, *, create_tables: bool = True) -> flask.Flask:
    """The application over ``services`` (default: built from the environment).

    See ``services_from_environment`` for the default. ``create_tables`` creates the
    tickets table of given ``services`` if missing. The caller closes ``services``.
    """
    app = flask.Flask("support_desk")
    if services is None:
        services = services_from_environment()
    elif create_tables and hasattr(services.database, "create_all"):
        services.database.create_all()
    init_app(app, services)
    the_desk = build_desk(services)
    app.extensions[_DESK] = the_desk

    @app.post("/tickets")
    def open_ticket() -> tuple[Any, int]:
        data = flask.request.get_json(silent=True)
        if not isinstance(data, dict):
            error = InvalidRequest(
                service="support_desk", operation="open", message="send a JSON object"
            )
            return _answer(Failure(error))
        # Any JSON value may arrive here; the desk names the field that is wrong.
        opened = desk().open_ticket(
            data.get("customer", ""), data.get("subject", ""), data.get("body", "")
        )
        return _answer(opened.map(lambda t: t.as_json()), 201)

    @app.get("/tickets")
    def tickets() -> tuple[Any, int]:
        args = flask.request.args
        try:
            limit = int(args.get("limit", "50"))
            offset = int(args.get("offset", "0"))
        except ValueError:
            message = "limit and offset must be integers"
            error = InvalidRequest(service="support_desk", operation="list", message=message)
            return _answer(Failure(error))
        found = list_tickets(
            request_unit_of_work(), status=args.get("status"), limit=limit, offset=offset
        )
        return _answer(found.map(lambda ts: {"tickets": [t.as_json() for t in ts]}))

    @app.get("/tickets/<ticket_id>")
    def ticket(ticket_id: str) -> tuple[Any, int]:
        return _answer(desk().get(ticket_id).map(lambda t: t.as_json()))

    return app
