"""The cache contract kit on the async caches, through the sync bridge (a loop in a thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import attrs
import pytest
from hypothesis import Phase, settings
from returns.result import Failure, Result, Success

from portside.adapters.memory import AsyncMemoryCache, ManualClock, MemoryStore
from portside.adapters.testing import CacheTarget, EventLoopThread, run_cache_contract
from portside.domain import InvalidRequest, ServiceError
from portside.ports.cache_rules import check_key, parse_counter

# Derandomized, no shrinking: each negative control fails the same way on every run.
CONTROL = settings(
    max_examples=60,
    stateful_step_count=25,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
)


@pytest.fixture(name="runner", scope="module")
def _runner() -> Iterator[EventLoopThread]:
    runner = EventLoopThread()
    yield runner
    runner.close()


def test_async_memory_cache_passes_the_kit(runner: EventLoopThread) -> None:
    """The async fake, through the bridge, agrees with the model on the manual clock."""
    clock = ManualClock()
    store = MemoryStore()
    target = CacheTarget(
        lambda ns: runner.blocking(AsyncMemoryCache(ns, clock=clock, store=store)), clock=clock
    )
    run_cache_contract(target, max_examples=30, steps=25)


@attrs.define
class AwaitingIncr(AsyncMemoryCache):
    """``incr`` as read, await a round trip, write back: racing tasks lose updates."""

    async def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        error = check_key(key, "incr")
        if error is not None:
            return Failure(error)
        current = self.sync.get(key).unwrap()
        await asyncio.sleep(0.002)
        total = (0 if current is None else parse_counter(current) or 0) + by
        self.sync.set(key, str(total).encode())
        return Success(total)


def test_a_racy_async_incr_fails_the_kit(runner: EventLoopThread) -> None:
    """Negative control: tasks racing on the bridge's loop expose a lost-update incr."""
    clock = ManualClock()
    target = CacheTarget(lambda ns: runner.blocking(AwaitingIncr(ns, clock=clock)), clock=clock)
    with pytest.raises(AssertionError, match="lost updates"):
        run_cache_contract(target, settings=CONTROL)


def test_the_bridge_refuses_bad_input_as_a_value(runner: EventLoopThread) -> None:
    """A bad key through the bridge is Failure(InvalidRequest), not an exception."""
    cache = runner.blocking(AsyncMemoryCache("ns"))
    outcome = cache.get("")
    assert isinstance(outcome, Failure)
    assert isinstance(outcome.failure(), InvalidRequest)
    cache.close()


@attrs.define
class BlindDeleteIfEqual(AsyncMemoryCache):
    """``delete_if_equal`` that deletes whatever the key holds: another owner's lock too."""

    async def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        return self.sync.delete(key)


def test_a_blind_async_delete_if_equal_fails_the_kit(runner: EventLoopThread) -> None:
    """Negative control: the bridge exposes the async capabilities, so the kit checks them."""
    clock = ManualClock()
    target = CacheTarget(
        lambda ns: runner.blocking(BlindDeleteIfEqual(ns, clock=clock)), clock=clock
    )
    with pytest.raises(AssertionError, match="delete_if_equal"):
        run_cache_contract(target, settings=CONTROL)
