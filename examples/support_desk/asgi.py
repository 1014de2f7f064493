"""The support desk's HTTP API, FastAPI flavour (the same routes as ``app.py``).

- ``POST /tickets`` with ``{"customer", "subject", "body"}``: 201 and the ticket;
  400 naming the bad field; 503 when the store is down.
- ``GET /tickets[?status=&limit=&offset=]``: tickets in opening order with their triage.
- ``GET /tickets/{id}``: one ticket, 404 when unknown.
- ``GET /healthz``: portside's health report.

Every route is ``async`` and calls the ``AsyncDesk`` (ports only); the services come
from portside's FastAPI lifespan, so tests swap them with ``dependency_overrides``.
The triage worker is the same as the Flask flavour's (``worker.py``): it reads the
tickets and jobs this API commits. Run it with any ASGI server, e.g.
``uvicorn --factory examples.support_desk.asgi:create_asgi_app``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import fastapi
from fastapi.responses import JSONResponse
from returns.result import Failure, Result, Success

from examples.support_desk.logic import SERVICE, AsyncDesk
from examples.support_desk.wiring import ticket_entities
from portside.adapters.app import AsyncServices, build_async_services
from portside.adapters.app.fastapi import ServicesDep, health_router, lifespan
from portside.domain import InvalidRequest, NotFound, ServiceError

__all__ = ["DeskDep", "create_asgi_app", "get_desk"]


def _status_of(error: ServiceError) -> int:
    if isinstance(error, InvalidRequest):
        return 400
    if isinstance(error, NotFound):
        return 404
    return 503 if error.retryable else 500


def _answer(result: Result[Any, ServiceError], status: int = 200) -> JSONResponse:
    match result:
        case Success(value):
            return JSONResponse(value, status_code=status)
        case Failure(error):
            body = {"error": error.kind, "message": error.message}
            return JSONResponse(body, status_code=_status_of(error))
    raise AssertionError("unreachable")  # pragma: no cover - Result has two cases


def _refused(operation: str, message: str) -> JSONResponse:
    return _answer(Failure(InvalidRequest(service=SERVICE, operation=operation, message=message)))


async def get_desk(services: ServicesDep) -> AsyncDesk:
    """The desk over the request's services (a dependency tests may override)."""
    return AsyncDesk(unit_of_work=services.unit_of_work, clock=services.clock)


#: The desk as an endpoint parameter type.
DeskDep = Annotated[AsyncDesk, fastapi.Depends(get_desk)]


def create_asgi_app(services: AsyncServices | None = None) -> fastapi.FastAPI:
    """The API over ``services`` (default: built from the environment at start-up).

    The lifespan opens the services, creates the tickets table where the database has
    one to create, and closes the services at shut-down.
    """
    portside_lifespan = lifespan(services or build_async_services(entities=ticket_entities()))

    @asynccontextmanager
    async def run(app: fastapi.FastAPI) -> AsyncIterator[None]:
        async with portside_lifespan(app):
            create_all = getattr(app.state.portside.database, "create_all", None)
            if create_all is not None and inspect.iscoroutinefunction(create_all):
                await create_all()
            yield

    app = fastapi.FastAPI(title="support desk", lifespan=run)
    app.include_router(health_router())

    @app.post("/tickets")
    async def open_ticket(request: fastapi.Request, desk: DeskDep) -> JSONResponse:
        try:
            data = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            message = "send a JSON object"
            return _answer(
                Failure(InvalidRequest(service=SERVICE, operation="open", message=message))
            )
        # Any JSON value may arrive here; the desk names the field that is wrong.
        opened = await desk.open_ticket(
            data.get("customer", ""), data.get("subject", ""), data.get("body", "")
        )
        return _answer(opened.map(lambda t: t.as_json()), 201)

    @app.get("/tickets")
    async def tickets(
        desk: DeskDep, status: str | None = None, limit: str = "50", offset: str = "0"
    ) -> JSONResponse:
        try:
            page = int(limit), int(offset)
        except ValueError:
            message = "limit and offset must be integers"
            return _answer(
                Failure(InvalidRequest(service=SERVICE, operation="list", message=message))
            )
        found = await desk.tickets(status=status, limit=page[0], offset=page[1])
        return _answer(found.map(lambda ts: {"tickets": [t.as_json() for t in ts]}))

    @app.get("/tickets/{ticket_id}")
    async def ticket(ticket_id: str, desk: DeskDep) -> JSONResponse:
        return _answer((await desk.get(ticket_id)).map(lambda t: t.as_json()))

    return app
