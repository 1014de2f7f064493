"""FastAPI integration over HTTP (httpx's ASGI transport): lifespan, a unit of work per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import fastapi
import httpx
import pytest
from returns.result import Success

from portside.adapters.app import AsyncServices, build_async_services, load_settings
from portside.adapters.app.fastapi import (
    CacheDep,
    ServicesDep,
    UnitOfWorkDep,
    get_cache,
    get_services,
    health_router,
    lifespan,
)
from portside.adapters.memory import AsyncMemoryCache, MemoryDatabase
from portside.adapters.testing import free_port, kit_entities

ENTITIES, ITEM = kit_entities("fastapi_items")


def _app(**kwargs: Any) -> fastapi.FastAPI:
    """Routes that stage, commit, fail and read, on the lifespan's services."""
    app = fastapi.FastAPI(lifespan=lifespan(**kwargs))
    app.include_router(health_router())

    @app.post("/items/{number}")
    async def create(number: int, uow: UnitOfWorkDep, commit: bool = True) -> dict[str, int]:
        assert await uow.repository(ITEM).add(ITEM(number, f"n{number}")) == Success(None)
        if commit:
            (await uow.commit()).unwrap()
        return {"id": number}

    @app.post("/fail/{number}")
    async def fail(number: int, uow: UnitOfWorkDep) -> None:
        await uow.repository(ITEM).add(ITEM(number, "never"))
        raise fastapi.HTTPException(409, "refused after staging")

    @app.get("/items")
    async def names(uow: UnitOfWorkDep) -> list[str]:
        return [item.name for item in (await uow.repository(ITEM).list()).unwrap()]

    @app.get("/cache/{key}")
    async def cached(key: str, cache: CacheDep) -> dict[str, str | None]:
        value = (await cache.get(key)).unwrap()
        return {"value": None if value is None else value.decode()}

    @app.get("/adapters")
    async def adapters(services: ServicesDep) -> dict[str, str]:
        return services.adapters

    return app


async def _over_http(
    app: fastapi.FastAPI, calls: Callable[[httpx.AsyncClient], Awaitable[None]]
) -> None:
    """Run the app's lifespan (an ASGI server would), then ``calls`` over HTTP."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            await calls(client)


def _memory_app() -> fastapi.FastAPI:
    return _app(database=MemoryDatabase(ENTITIES), cache=AsyncMemoryCache("api"))


def test_a_committed_request_is_visible_to_the_next() -> None:
    """A request that commits its unit of work stores the entity for later requests."""

    async def calls(client: httpx.AsyncClient) -> None:
        assert (await client.post("/items/1")).json() == {"id": 1}
        assert (await client.get("/items")).json() == ["n1"]

    asyncio.run(_over_http(_memory_app(), calls))


def test_an_uncommitted_request_is_rolled_back() -> None:
    """Staged changes a request did not commit are discarded when it ends."""

    async def calls(client: httpx.AsyncClient) -> None:
        assert (await client.post("/items/2", params={"commit": False})).status_code == 200
        assert (await client.get("/items")).json() == []

    asyncio.run(_over_http(_memory_app(), calls))


def test_a_failing_request_rolls_back_and_answers_its_error() -> None:
    """An HTTPException after staging rolls the unit back; the client sees the 409."""

    async def calls(client: httpx.AsyncClient) -> None:
        refused = await client.post("/fail/3")
        assert refused.status_code == 409
        assert refused.json() == {"detail": "refused after staging"}
        assert (await client.get("/items")).json() == []

    asyncio.run(_over_http(_memory_app(), calls))


def test_the_lifespan_opens_and_closes_the_services() -> None:
    """The services are open while the app runs and closed after shut-down."""
    services = build_async_services(database=MemoryDatabase(ENTITIES))
    app = _app()
    app.router.lifespan_context = lifespan(services)

    async def calls(client: httpx.AsyncClient) -> None:
        assert services.is_open
        assert (await client.get("/adapters")).json()["database"] == "MemoryDatabase"

    asyncio.run(_over_http(app, calls))
    assert not services.is_open


def test_dependency_overrides_swap_in_fakes_without_a_lifespan() -> None:
    """app.dependency_overrides replaces the services, or one port alone, in tests."""
    fake = AsyncMemoryCache("fake")
    asyncio.run(fake.set("greeting", b"hello"))
    services = build_async_services(database=MemoryDatabase(ENTITIES), cache=AsyncMemoryCache())
    app = _app()
    app.dependency_overrides[get_services] = lambda: services
    app.dependency_overrides[get_cache] = lambda: fake

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            assert (await client.get("/cache/greeting")).json() == {"value": "hello"}
            assert (await client.post("/items/4")).status_code == 200
            assert (await client.get("/items")).json() == ["n4"]

    asyncio.run(scenario())


def test_without_the_lifespan_the_error_names_the_fix() -> None:
    """Using the dependencies on an app whose lifespan never ran says what to do."""
    app = _app()

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            with pytest.raises(RuntimeError, match="lifespan"):
                await client.get("/items")

    asyncio.run(scenario())


def test_healthz_reports_every_service_with_honest_warnings() -> None:
    """/healthz answers 200 with a row per service; in-memory ones are warnings."""

    async def calls(client: httpx.AsyncClient) -> None:
        answer = await client.get("/healthz")
        assert answer.status_code == 200
        body = answer.json()
        assert body["status"] == "ok"
        rows = {row["service"]: row for row in body["services"]}
        assert set(rows) == {"database", "cache", "queue", "llm"}
        assert rows["queue"]["status"].startswith("warning")

    asyncio.run(_over_http(_memory_app(), calls))


@pytest.mark.services
def test_healthz_is_503_when_redis_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """/healthz answers 503 and names the cache when its Redis is unreachable."""
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("PORTSIDE_REDIS_TIMEOUT", "0.2")
    app = _app(settings=load_settings(), database=MemoryDatabase(ENTITIES))

    async def calls(client: httpx.AsyncClient) -> None:
        answer = await client.get("/healthz")
        assert answer.status_code == 503
        rows = {row["service"]: row for row in answer.json()["services"]}
        assert rows["cache"]["status"].startswith("down (Unavailable")
        assert rows["cache"]["adapter"].startswith("redis")

    asyncio.run(_over_http(app, calls))


def test_a_lifespan_composes_with_the_application_s_own() -> None:
    """An application lifespan can enter portside's inside its own."""
    events: list[str] = []
    services = build_async_services(database=MemoryDatabase(ENTITIES))

    @asynccontextmanager
    async def own(app: fastapi.FastAPI) -> AsyncIterator[None]:
        events.append("start")
        async with lifespan(services)(app):
            yield
        events.append("stop")

    app = _app()
    app.router.lifespan_context = own

    async def calls(client: httpx.AsyncClient) -> None:
        assert (await client.get("/items")).status_code == 200

    asyncio.run(_over_http(app, calls))
    assert events == ["start", "stop"]
    assert isinstance(services, AsyncServices)
