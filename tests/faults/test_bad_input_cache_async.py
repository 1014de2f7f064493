"""The async caches, called with arguments of every kind of Python type.

The calls of ``test_bad_input_cache_types`` (the optional capabilities included): each
goes to ``MemoryCache``, ``AsyncMemoryCache`` and
``AsyncRedisCache`` (the async ones awaited through the bridge). No call raises; all
three give the same value or error kind; a refused call writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from returns.result import Failure, Success

from portside.adapters.memory import AsyncMemoryCache, ManualClock, MemoryCache
from portside.adapters.redis import AsyncRedisCache, connect_async
from portside.adapters.testing import EventLoopThread
from tests.faults.test_bad_input_cache_types import _fresh, _shape, calls

pytestmark = [pytest.mark.faults, pytest.mark.services]


@pytest.fixture(name="runner", scope="module")
def _runner() -> Iterator[EventLoopThread]:
    runner = EventLoopThread()
    yield runner
    runner.close()


@pytest.fixture(name="client", scope="module")
def _client(redis_url: str, runner: EventLoopThread) -> Iterator[aioredis.Redis]:
    client = connect_async(redis_url)
    yield client
    runner.run(client.aclose())


@pytest.mark.services
@settings(max_examples=300)
@given(call=calls)
def test_any_argument_of_any_type_is_a_result_alike_on_the_async_caches(
    client: aioredis.Redis, runner: EventLoopThread, call: tuple[str, tuple[Any, ...]]
) -> None:
    """No call raises; the async fake and Redis agree with MemoryCache; a refusal writes nothing."""
    operation, args = call
    namespace = f"ps-atypes-{uuid.uuid4().hex[:8]}"
    model = MemoryCache(namespace="types", clock=ManualClock())
    fake = AsyncMemoryCache(namespace="types", clock=ManualClock())
    real = AsyncRedisCache(client, namespace=namespace)
    want = _shape(getattr(model, operation)(*map(_fresh, args)))
    try:
        for cache in (fake, real):
            result = runner.run(getattr(cache, operation)(*map(_fresh, args)))
            assert isinstance(result, Success | Failure), result
            if isinstance(result, Failure):
                assert result.failure().kind in ("InvalidRequest", "NotFound"), result
                assert result.failure().message
            assert _shape(result) == want, (type(cache).__name__, operation, args)
        if want[0] == "failure":
            assert len(fake.sync) == 0, f"{operation} was refused but wrote"
            assert runner.run(_count(client, namespace)) == 0, f"{operation} was refused but wrote"
    finally:
        runner.run(real.clear())


async def _count(client: aioredis.Redis, namespace: str) -> int:
    return len([name async for name in client.scan_iter(match=namespace + "|*")])
