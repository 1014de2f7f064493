"""The async composition root: embedded defaults, overrides, lifespan and health rows."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from returns.result import Success

from portside.adapters.app import (
    AsyncServices,
    acheck_services,
    build_async_services,
    load_settings,
)
from portside.adapters.llm_cache import AsyncCachingLLM
from portside.adapters.memory import (
    AsyncFakeLLM,
    AsyncMemoryCache,
    AsyncMemoryQueue,
    ManualClock,
    MemoryDatabase,
)
from portside.adapters.openai import AsyncOpenAILLM
from portside.adapters.sqlalchemy import AsyncDatabase
from portside.adapters.testing import kit_entities
from portside.domain import ChatMessage, ChatRequest


@pytest.fixture(name="embedded")
def _embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "REDIS_URL", "DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PORTSIDE_SQLITE_PATH", str(tmp_path / "app.db"))


def test_nothing_configured_runs_on_embedded_async_defaults(
    embedded: None, caplog: pytest.LogCaptureFixture
) -> None:
    """With no variables: async SQLite, memory cache and queue, the async fake LLM, one line."""
    with caplog.at_level(logging.INFO, logger="portside"):
        services = build_async_services()
    assert isinstance(services.database, AsyncDatabase)
    assert services.adapters["database"].startswith("sqlite (")
    assert isinstance(services.cache, AsyncMemoryCache)
    assert isinstance(services.queue, AsyncMemoryQueue)
    assert isinstance(services.raw_llm, AsyncFakeLLM)
    assert services.adapters["cache"] == "memory"
    assert services.adapters["llm"] == "fake"
    lines = [r.getMessage() for r in caplog.records if r.name == "portside"]
    assert len(lines) == 1
    assert "embedded defaults" in lines[0]


def test_async_with_opens_once_and_closes_what_it_built(embedded: None) -> None:
    """The lifespan: aopen is idempotent, aclose closes built clients but not overrides."""
    given = AsyncMemoryQueue(clock=ManualClock())
    services = build_async_services(queue=given)
    assert services.adapters["queue"] == "AsyncMemoryQueue"

    async def scenario() -> None:
        async with services as opened:
            assert opened is services
            assert services.is_open
            assert await services.aopen() is services
            assert await services.cache.set("k", b"v") == Success(None)
        assert not services.is_open
        await services.aclose()  # a second close is harmless
        # The override is still usable; the built fake LLM was closed.
        assert isinstance(await given.publish("t", b"x"), Success)
        closed = await services.raw_llm.complete(ChatRequest((ChatMessage.user("hi"),)))
        assert closed.failure().kind == "Unavailable"

    asyncio.run(scenario())


def test_a_unit_of_work_per_call_on_the_store(embedded: None) -> None:
    """unit_of_work() gives a new async unit on the database each time; a commit lasts."""
    entities, item = kit_entities("async_services")
    services = build_async_services(database=MemoryDatabase(entities))

    async def scenario() -> None:
        async with services:
            async with services.unit_of_work() as uow:
                assert await uow.repository(item).add(item(1, "ash")) == Success(None)
                assert await uow.commit() == Success(None)
            async with services.unit_of_work() as uow:
                assert (await uow.repository(item).get(1)).unwrap().name == "ash"
            assert services.unit_of_work() is not services.unit_of_work()

    asyncio.run(scenario())
    entities.dispose()


def test_health_rows_are_honest_about_what_is_not_durable(embedded: None) -> None:
    """Memory database and queue are warnings (they work); the cache and fake LLM are ok."""
    clock = ManualClock()
    entities, _item = kit_entities("async_health")
    services = build_async_services(clock=clock, database=MemoryDatabase(entities))

    async def scenario() -> None:
        async with services:
            rows = {row.service: row for row in await acheck_services(services)}
            assert rows["database"].status.startswith("warning (in-memory database")
            assert rows["queue"].status.startswith("warning (in-memory queue")
            assert rows["cache"].status == "ok"
            assert rows["llm"].status == "ok"
            assert all(row.ok for row in rows.values())
            # Kept for the health interval: the same report comes back without probing.
            again = await acheck_services(services)
            assert [r.latency_ms for r in again] == [r.latency_ms for r in rows.values()]
            clock.advance(services.settings.tuning.health_interval)
            fresh = await acheck_services(services)
            assert fresh is not again

    asyncio.run(scenario())
    entities.dispose()


def test_the_embedded_sqlite_database_is_probed_and_ok(embedded: None) -> None:
    """The default async SQLite file answers SELECT 1: its row is ok, and aclose disposes it."""
    services = build_async_services()

    async def scenario() -> str:
        async with services:
            rows = {row.service: row for row in await acheck_services(services)}
            return rows["database"].status

    assert asyncio.run(scenario()) == "ok"


def test_a_failing_service_is_a_down_row_and_never_raises(embedded: None) -> None:
    """A closed cache answers Unavailable: its row says down, the others still report."""

    class Broken(AsyncMemoryCache):
        async def get(self, key: str):  # type: ignore[no-untyped-def, override]
            raise RuntimeError("boom")

    services = build_async_services(cache=Broken("x"))

    async def scenario() -> None:
        rows = {row.service: row for row in await acheck_services(services, max_age=0)}
        assert rows["cache"].status == "down (RuntimeError)"
        assert not rows["cache"].ok
        assert rows["queue"].ok

    asyncio.run(scenario())


def test_settings_are_the_sync_root_s_settings(embedded: None) -> None:
    """The same Settings object type and values drive both roots."""
    settings = load_settings({"PORTSIDE_NAMESPACE": "shop"})
    services = build_async_services(settings)
    assert isinstance(services, AsyncServices)
    assert services.settings is settings
    assert services.cache.namespace == "shop"


def test_the_llm_is_cached_and_a_base_url_gives_the_async_openai_adapter(
    embedded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Llm is an AsyncCachingLLM over raw_llm; OPENAI_BASE_URL builds AsyncOpenAILLM."""
    services = build_async_services()
    assert isinstance(services.llm, AsyncCachingLLM)
    assert isinstance(services.raw_llm, AsyncFakeLLM)
    settings = load_settings(
        {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-local-test"}
    )
    real = build_async_services(settings)
    assert isinstance(real.raw_llm, AsyncOpenAILLM)
    assert real.adapters["llm"] == "openai (http://127.0.0.1:9/v1)"
    asyncio.run(real.aclose())
