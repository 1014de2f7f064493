"""End-to-end tier: the Flask API and the triage worker, through HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import flask
import pytest

from examples.support_desk.app import create_app, desk
from examples.support_desk.wiring import keyword_llm
from examples.support_desk.worker import run_triage_worker
from portside.adapters.app import Services, WorkerReport, build_services, load_settings
from portside.adapters.entities import Entities
from portside.adapters.memory import ManualClock, MemoryCache, MemoryDatabase, MemoryQueue
from portside.adapters.redis import RedisCache, RedisQueue
from portside.adapters.sqlalchemy import Database

TICKETS = [
    {"customer": "ann", "subject": "Refund please", "body": "I was charged twice."},
    {"customer": "bob", "subject": "App crashes", "body": "Saving fails with an error."},
]


def _work(app: flask.Flask, services: Services, count: int) -> WorkerReport:
    """Run the real worker loop until it has handled ``count`` messages."""
    with app.app_context():
        return run_triage_worker(
            services, desk(), consumer="worker-1", limit=count, wait=0.0, handle_signals=False
        )


def _flow(app: flask.Flask, services: Services) -> list[dict[str, Any]]:
    client = app.test_client()
    ids = []
    for ticket in TICKETS:
        created = client.post("/tickets", json=ticket)
        assert created.status_code == 201, created.json
        assert created.json is not None
        assert created.json["status"] == "new"
        ids.append(created.json["id"])
    assert _work(app, services, len(ids)).acked == len(ids)
    listed = client.get("/tickets?limit=500")
    assert listed.status_code == 200
    assert listed.json is not None
    return [t for t in listed.json["tickets"] if t["id"] in ids]


@pytest.fixture(name="memory_services")
def _memory_services(entities: Entities, manual_clock: ManualClock) -> Iterator[Services]:
    """Every port on its in-memory fake, through the same composition root as production."""
    services = build_services(
        load_settings(environ={}),
        database=MemoryDatabase(entities),
        cache=MemoryCache(clock=manual_clock),
        queue=MemoryQueue(clock=manual_clock),
        llm=keyword_llm(),
        clock=manual_clock,
    )
    yield services
    services.close()


def test_tickets_opened_over_http_are_listed_with_their_triage(memory_services: Services) -> None:
    """POST two tickets, run the worker, GET lists both with category and summary."""
    app = create_app(memory_services)
    listed = _flow(app, memory_services)
    assert sorted((t["status"], t["category"], t["summary"]) for t in listed) == [
        ("triaged", "billing", "Refund please"),
        ("triaged", "bug", "App crashes"),
    ]


def test_bad_requests_get_a_400_naming_the_problem(memory_services: Services) -> None:
    """A missing field, a non-object body or a bad page is a 400 that says what is wrong."""
    client = create_app(memory_services).test_client()
    missing = client.post("/tickets", json={"customer": "ann", "subject": "Hi"})
    assert missing.status_code == 400
    assert missing.json == {"error": "InvalidRequest", "message": "body must be a non-empty string"}
    assert client.post("/tickets", data="nope").status_code == 400
    assert client.get("/tickets?limit=zero").status_code == 400
    assert client.get("/tickets?limit=0").status_code == 400
    assert client.get("/tickets").json == {"tickets": []}


def test_an_unknown_ticket_is_a_404(memory_services: Services) -> None:
    """GET of a ticket that does not exist is a 404 with the error kind."""
    client = create_app(memory_services).test_client()
    answer = client.get("/tickets/nope")
    assert answer.status_code == 404
    assert answer.json is not None
    assert answer.json["error"] == "NotFound"


def test_the_health_check_reports_the_fakes(memory_services: Services) -> None:
    """The portside health endpoint answers 200 on the fakes."""
    answer = create_app(memory_services).test_client().get("/healthz")
    assert answer.status_code == 200


@pytest.mark.services
def test_the_same_app_on_redis_and_postgresql(
    redis_url: str, postgres_url: str, entities: Entities
) -> None:
    """With Redis for cache and queue and PostgreSQL for tickets, the HTTP flow is the same."""
    namespace = f"support-desk-test:{uuid.uuid4().hex[:12]}"
    database = Database.from_url(entities, postgres_url)
    queue = RedisQueue.from_url(redis_url, namespace=f"{namespace}:queue")
    cache = RedisCache.from_url(redis_url, namespace)
    services = build_services(
        load_settings(environ={}), database=database, cache=cache, queue=queue, llm=keyword_llm()
    )
    try:
        listed = _flow(create_app(services), services)
        assert sorted(t["category"] for t in listed) == ["billing", "bug"]
        assert all(t["status"] == "triaged" for t in listed)
    finally:
        services.close()
        for key in queue.client.scan_iter(match=f"{namespace}*"):
            queue.client.delete(key)
        cache.clear()
        cache.close()
        queue.close()
        if database.engine is not None:
            entities.drop_all(database.engine)
        database.close()
