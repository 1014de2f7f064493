"""The FastAPI flavour on real services: PostgreSQL (async) and Redis, over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from examples.support_desk.asgi import create_asgi_app
from examples.support_desk.logic import Desk
from examples.support_desk.tests.test_asgi import TICKETS, over_http
from examples.support_desk.wiring import keyword_llm, structured_triage
from portside.adapters.app import build_async_services, load_settings
from portside.adapters.entities import Entities
from portside.adapters.memory import AsyncFakeLLM, ManualClock
from portside.adapters.outbox import OutboxRelay
from portside.adapters.redis import AsyncRedisCache, AsyncRedisQueue, RedisQueue
from portside.adapters.sqlalchemy import AsyncDatabase, Database

pytestmark = pytest.mark.services


def test_tickets_flow_through_postgresql_and_redis_streams(
    postgres_url: str, redis_url: str, entities: Entities, manual_clock: ManualClock
) -> None:
    """POST on the async API stores in PostgreSQL; the worker triages from Redis; GET lists."""
    namespace = f"desk-asgi-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "PORTSIDE_NAMESPACE": namespace}
    )
    services = build_async_services(
        settings, entities=entities, llm=AsyncFakeLLM(), clock=manual_clock
    )
    assert isinstance(services.database, AsyncDatabase)
    assert isinstance(services.cache, AsyncRedisCache)
    assert isinstance(services.queue, AsyncRedisQueue)
    # The worker side, as worker.py runs it: the same table and the same streams.
    database = Database.from_url(entities, postgres_url)
    queue = RedisQueue.from_url(redis_url, clock=manual_clock, namespace=f"{namespace}:queue")
    desk = Desk(database.unit_of_work, queue, structured_triage(keyword_llm()), manual_clock)
    app = create_asgi_app(services)
    try:

        async def open_them(client: httpx.AsyncClient) -> list[str]:
            ids = []
            for ticket in TICKETS:
                created = await client.post("/tickets", json=ticket)
                assert created.status_code == 201, created.text
                ids.append(created.json()["id"])
            health = await client.get("/healthz")
            rows = {row["service"]: row["status"] for row in health.json()["services"]}
            assert rows["database"] == "ok"
            assert rows["cache"] == "ok"
            return ids

        desk.work("worker-1")  # the triage group exists before the jobs are relayed
        ids = over_http(app, open_them)
        assert OutboxRelay(database, queue).relay_once().unwrap().published >= 2
        assert desk.work("worker-1", max_messages=50).handled >= 2

        async def list_them(client: httpx.AsyncClient) -> list[dict[str, Any]]:
            listed = await client.get("/tickets", params={"limit": 500})
            return [t for t in listed.json()["tickets"] if t["id"] in ids]

        app = create_asgi_app(build_async_services(settings, entities=entities, llm=AsyncFakeLLM()))
        listed = over_http(app, list_them)
        assert sorted((t["status"], t["category"]) for t in listed) == [
            ("triaged", "billing"),
            ("triaged", "bug"),
        ]
    finally:
        entities.drop_all(database.engine)
        queue.close()
        database.close()
