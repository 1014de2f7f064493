"""The FastAPI flavour over HTTP (httpx's ASGI transport), on fakes: open, triage, list."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import fastapi
import httpx
import pytest

from examples.support_desk.asgi import create_asgi_app, get_desk
from examples.support_desk.logic import AsyncDesk, Desk
from examples.support_desk.wiring import keyword_llm, structured_triage
from portside.adapters.app import AsyncServices, build_async_services, load_settings
from portside.adapters.entities import Entities
from portside.adapters.memory import (
    AsyncFakeLLM,
    AsyncMemoryCache,
    AsyncMemoryQueue,
    ManualClock,
    MemoryDatabase,
    MemoryQueue,
)
from portside.adapters.outbox import OutboxRelay
from portside.domain import Unavailable

TICKETS = [
    {"customer": "ann", "subject": "Refund please", "body": "I was charged twice."},
    {"customer": "bob", "subject": "App crashes", "body": "Saving fails with an error."},
]

Calls = Callable[[httpx.AsyncClient], Awaitable[Any]]


def over_http(app: fastapi.FastAPI, calls: Calls) -> Any:
    """Run the app's lifespan as an ASGI server would, then ``calls`` over HTTP."""

    async def scenario() -> Any:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://desk") as client:
                return await calls(client)

    return asyncio.run(scenario())


class Fakes:
    """The API's async services and the worker's sync desk over one store and queue."""

    def __init__(self, entities: Entities, clock: ManualClock) -> None:
        self.database = MemoryDatabase(entities)
        self.queue = MemoryQueue(clock=clock)
        self.services: AsyncServices = build_async_services(
            load_settings(environ={}),
            database=self.database,
            cache=AsyncMemoryCache(clock=clock),
            queue=AsyncMemoryQueue.over(self.queue),
            llm=AsyncFakeLLM(),
            clock=clock,
        )
        self.desk = Desk(
            unit_of_work=self.database.unit_of_work,
            queue=self.queue,
            ask=structured_triage(keyword_llm()),
            clock=clock,
        )
        self.desk.work("worker-1")  # the triage group exists before any job is relayed

    def triage(self) -> int:
        """What the worker does: relay the committed jobs, then triage them."""
        OutboxRelay(self.database, self.queue).relay_once().unwrap()
        return self.desk.work("worker-1", max_messages=50).handled


@pytest.fixture(name="fakes")
def _fakes(entities: Entities, manual_clock: ManualClock) -> Fakes:
    return Fakes(entities, manual_clock)


def test_tickets_opened_over_http_are_triaged_by_the_worker_and_listed(fakes: Fakes) -> None:
    """POST two tickets, run the worker, GET lists both with category and summary."""
    app = create_asgi_app(fakes.services)

    async def open_them(client: httpx.AsyncClient) -> list[str]:
        ids = []
        for ticket in TICKETS:
            created = await client.post("/tickets", json=ticket)
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "new"
            ids.append(created.json()["id"])
        return ids

    ids = over_http(app, open_them)
    assert fakes.triage() == 2

    async def list_them(client: httpx.AsyncClient) -> list[dict[str, Any]]:
        listed = await client.get("/tickets", params={"limit": 500})
        assert listed.status_code == 200
        one = await client.get(f"/tickets/{ids[0]}")
        assert one.json()["category"] == "billing"
        return [t for t in listed.json()["tickets"] if t["id"] in ids]

    listed = over_http(app, list_them)
    assert sorted((t["status"], t["category"], t["summary"]) for t in listed) == [
        ("triaged", "billing", "Refund please"),
        ("triaged", "bug", "App crashes"),
    ]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"customer": "", "subject": "s", "body": "b"}, "customer"),
        ({"customer": "ann", "subject": 7, "body": "b"}, "subject"),
        ({"customer": "ann", "subject": "s"}, "body"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_ticket_is_400_naming_the_field_and_stores_nothing(
    fakes: Fakes, body: object, named: str
) -> None:
    """Bad input answers 400 with the field's name; no ticket and no job is stored."""

    async def calls(client: httpx.AsyncClient) -> None:
        refused = await client.post("/tickets", json=body)
        assert refused.status_code == 400
        assert refused.json()["error"] == "InvalidRequest"
        assert named in refused.json()["message"]
        assert (await client.get("/tickets")).json() == {"tickets": []}

    over_http(create_asgi_app(fakes.services), calls)
    assert fakes.triage() == 0


def test_unknown_ticket_is_404_and_bad_paging_is_400(fakes: Fakes) -> None:
    """GET of an unknown id is 404; a limit that is not an integer, or out of range, is 400."""

    async def calls(client: httpx.AsyncClient) -> None:
        assert (await client.get("/tickets/nope")).status_code == 404
        assert (await client.get("/tickets", params={"limit": "x"})).status_code == 400
        assert (await client.get("/tickets", params={"limit": 0})).status_code == 400
        assert (await client.post("/tickets", content=b"{not json")).status_code == 400

    over_http(create_asgi_app(fakes.services), calls)


def test_healthz_answers_with_a_row_per_service(fakes: Fakes) -> None:
    """The API serves portside's health report; in-memory services are warnings."""

    async def calls(client: httpx.AsyncClient) -> dict[str, Any]:
        answer = await client.get("/healthz")
        assert answer.status_code == 200
        return {row["service"]: row["status"] for row in answer.json()["services"]}

    rows = over_http(create_asgi_app(fakes.services), calls)
    assert rows["queue"].startswith("warning")
    assert rows["cache"] == "ok"


def test_a_store_that_is_down_is_503_through_a_dependency_override(
    fakes: Fakes, manual_clock: ManualClock
) -> None:
    """dependency_overrides swaps the desk for one whose store is down: 503, not a crash."""

    class DownDesk(AsyncDesk):
        async def open_ticket(self, customer: object, subject: object, body: object) -> Any:
            from returns.result import Failure

            return Failure(Unavailable(service="database", operation="commit", message="down"))

    app = create_asgi_app(fakes.services)
    app.dependency_overrides[get_desk] = lambda: DownDesk(fakes.services.unit_of_work, manual_clock)

    async def calls(client: httpx.AsyncClient) -> None:
        answer = await client.post("/tickets", json=TICKETS[0])
        assert answer.status_code == 503
        assert answer.json()["error"] == "Unavailable"

    over_http(app, calls)
