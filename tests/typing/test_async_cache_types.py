"""Type-level checks of the async cache port (run by mypy --strict, and imported by pytest)."""

from __future__ import annotations

import asyncio
from typing import assert_type

from returns.result import Result

from portside.adapters.memory import AsyncMemoryCache
from portside.domain import FillClaim, ServiceError
from portside.ports import AsyncCachePort, AsyncLockedFill


def test_async_cache_methods_await_to_results() -> None:
    """Awaiting an AsyncCachePort method gives the CachePort method's Result type."""

    async def scenario(cache: AsyncCachePort, fill: AsyncLockedFill) -> None:
        assert_type(await cache.get("k"), Result[bytes | None, ServiceError])
        assert_type(await cache.get_many(["k"]), Result[dict[str, bytes], ServiceError])
        assert_type(await cache.incr("k"), Result[int, ServiceError])
        assert_type(await cache.ttl("k"), Result[float | None, ServiceError])
        assert_type(
            await fill.get_or_lock("k", "k:fill", b"t", 1.0), Result[FillClaim, ServiceError]
        )

    fake = AsyncMemoryCache("typing")
    asyncio.run(scenario(fake, fake))
