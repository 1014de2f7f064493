"""Rows ``fastapi_*``: the support desk's FastAPI flavour on fakes, over httpx's ASGI transport.

- ``fastapi_open_ticket``: ``POST /tickets`` through the example (portside's lifespan and
  dependencies, the ``AsyncDesk``, the ticket and its job in one unit of work of the
  async memory fake), against the same endpoint written as a bare FastAPI handler on
  the raw fakes (the same ``MemoryDatabase`` async unit, the same checks, no portside
  dependency or ``Result`` mapping).
- ``fastapi_get_ticket``: ``GET /tickets/{id}`` the same way.

Requests per second in one process, client and app on one event loop: the figure is
what the framework, the transport and the fakes cost, not a server's throughput.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import fastapi
import httpx
from fastapi.responses import JSONResponse

from benchmarks._harness import Case
from examples.support_desk.asgi import create_asgi_app
from examples.support_desk.logic import TOPIC, Ticket
from examples.support_desk.logic.tickets import input_problem
from examples.support_desk.wiring import ticket_entities
from portside.adapters.app import build_async_services, load_settings
from portside.adapters.memory import (
    AsyncFakeLLM,
    AsyncMemoryCache,
    AsyncMemoryQueue,
    MemoryDatabase,
)

NAMES = ("fastapi_open_ticket", "fastapi_get_ticket")
#: Requests per timed call.
CALLS = 20
TICKET = {"customer": "ann", "subject": "Refund please", "body": "I was charged twice."}


def _bare_app(database: MemoryDatabase) -> fastapi.FastAPI:
    """The same two endpoints as a bare FastAPI app on the raw fake."""
    app = fastapi.FastAPI()

    @app.post("/tickets")
    async def open_ticket(request: fastapi.Request) -> JSONResponse:
        data = await request.json()
        problem = input_problem(data.get("customer"), data.get("subject"), data.get("body"))
        if problem is not None:
            return JSONResponse({"error": "InvalidRequest", "message": problem}, 400)
        ticket = Ticket(
            id=uuid.uuid4().hex,
            customer=data["customer"].strip(),
            subject=data["subject"].strip(),
            body=data["body"],
            opened_at=0.0,
        )
        async with database.async_unit_of_work() as uow:
            (await uow.repository(Ticket).add(ticket)).unwrap()
            uow.publish(TOPIC, ticket.id.encode(), dedupe_key=f"ticket:{ticket.id}").unwrap()
            (await uow.commit()).unwrap()
            return JSONResponse(ticket.view().as_json(), 201)

    @app.get("/tickets/{ticket_id}")
    async def get_ticket(ticket_id: str) -> JSONResponse:
        async with database.async_unit_of_work() as uow:
            found = await uow.repository(Ticket).get(ticket_id)
            return JSONResponse(found.unwrap().view().as_json())

    return app


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    loop = asyncio.new_event_loop()
    entities = ticket_entities("support_desk_bench")
    services = build_async_services(
        load_settings(environ={}),
        database=MemoryDatabase(entities),
        cache=AsyncMemoryCache(),
        queue=AsyncMemoryQueue(),
        llm=AsyncFakeLLM(),
    )
    ours_app = create_asgi_app(services)
    bare_app = _bare_app(MemoryDatabase(entities))
    lifespan = ours_app.router.lifespan_context(ours_app)
    loop.run_until_complete(lifespan.__aenter__())
    ours = httpx.AsyncClient(transport=httpx.ASGITransport(app=ours_app), base_url="http://d")
    bare = httpx.AsyncClient(transport=httpx.ASGITransport(app=bare_app), base_url="http://d")

    def first_id(client: httpx.AsyncClient) -> str:
        created = loop.run_until_complete(client.post("/tickets", json=TICKET))
        assert created.status_code == 201, created.text
        ticket_id: str = created.json()["id"]
        return ticket_id

    ours_id, bare_id = first_id(ours), first_id(bare)

    def requests(call: Callable[[], Awaitable[httpx.Response]], status: int) -> Callable[[], Any]:
        async def many() -> None:
            for _ in range(CALLS):
                answer = await call()
                assert answer.status_code == status

        return lambda: loop.run_until_complete(many())

    try:
        yield [
            Case(
                "fastapi_open_ticket",
                requests(lambda: ours.post("/tickets", json=TICKET), 201),
                requests(lambda: bare.post("/tickets", json=TICKET), 201),
                goal=0.9,
                unit="requests/s",
                ops=CALLS,
                note="example on fakes vs a bare handler on the raw fakes",
            ),
            Case(
                "fastapi_get_ticket",
                requests(lambda: ours.get(f"/tickets/{ours_id}"), 200),
                requests(lambda: bare.get(f"/tickets/{bare_id}"), 200),
                goal=0.9,
                unit="requests/s",
                ops=CALLS,
                note="example on fakes vs a bare handler on the raw fakes",
            ),
        ]
    finally:
        loop.run_until_complete(ours.aclose())
        loop.run_until_complete(bare.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()
