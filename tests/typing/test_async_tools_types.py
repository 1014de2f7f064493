"""Type-level checks of the async tools and composition root (mypy --strict and pytest)."""

from __future__ import annotations

import asyncio
from typing import assert_type

from returns.result import Result, Success

from portside.adapters.app import AsyncServices, build_async_services, load_settings
from portside.adapters.cache_tools import AsyncTypedCache, async_get_or_set
from portside.adapters.memory import AsyncMemoryCache, ManualClock, MemoryDatabase
from portside.adapters.resilience import AsyncFailOpenCache, RetryPolicy
from portside.adapters.testing import kit_entities
from portside.domain import ServiceError, Usage
from portside.ports import AsyncUnitOfWork


def test_async_tools_keep_their_value_types() -> None:
    """Typed cache, get_or_set, fail-open and acall give the sync tools' Result types."""
    cache = AsyncMemoryCache("typing-tools")

    async def value() -> bytes:
        return b"v"

    async def attempt() -> Result[int, ServiceError]:
        return Success(1)

    async def scenario() -> None:
        typed = AsyncTypedCache(cache, Usage)
        assert_type(await typed.get("u"), Result[Usage | None, ServiceError])
        assert_type(await async_get_or_set(cache, "k", value), Result[bytes, ServiceError])
        assert_type(await AsyncFailOpenCache(cache).get("k"), Result[bytes | None, ServiceError])
        got = await RetryPolicy().acall(attempt, clock=ManualClock())
        assert_type(got, Result[int, ServiceError])

    asyncio.run(scenario())


def test_the_async_root_gives_async_units_of_work() -> None:
    """build_async_services returns AsyncServices whose unit_of_work is an AsyncUnitOfWork."""
    entities, _item = kit_entities("typing_async_root")
    services = build_async_services(load_settings({}), database=MemoryDatabase(entities))
    assert_type(services, AsyncServices)
    assert_type(services.unit_of_work(), AsyncUnitOfWork)
    entities.dispose()
