"""Negative controls: each deliberately broken cache must make the contract kit fail.

The broken caches are the fake with one behaviour changed. The two races sleep between
their read and their write, as a network round trip would, so the kit's threads
interleave there every time; generation is derandomized and shrinking is off, so each
control fails the same way on every run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import attrs
import pytest
from hypothesis import Phase, settings
from returns.result import Failure, Result, Success

from portside.adapters.memory import ManualClock, MemoryCache, MemoryStore
from portside.adapters.testing import CacheTarget, run_cache_contract
from portside.domain import InvalidRequest, ServiceError
from portside.ports.cache_rules import check_key, check_ttl, check_value, parse_counter

ROUND_TRIP = 0.002

CONTROL = settings(
    max_examples=60,
    stateful_step_count=25,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
)


@attrs.define
class GetThenSetAdd(MemoryCache):
    """``add`` as GET, then SET if absent: two racing callers can both win."""

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        error = check_key(key, "add") or check_value(value, "add") or check_ttl(ttl, "add")
        if error is not None:
            return Failure(error)
        if self.get(key).unwrap() is not None:
            return Success(False)
        time.sleep(ROUND_TRIP)
        self.set(key, value, ttl)
        return Success(True)


@attrs.define
class ReadModifyWriteIncr(MemoryCache):
    """``incr`` as read, add, write back (keeping the TTL): racing updates are lost."""

    def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        error = check_key(key, "incr")
        if error is not None:
            return Failure(error)
        left = self.ttl(key)
        current = self.get(key).unwrap()
        number = 0 if current is None else parse_counter(current)
        if number is None or not -(2**63) <= number + by < 2**63 or abs(by) >= 2**63:
            return Failure(InvalidRequest(service="cache", operation="incr", message="bad"))
        time.sleep(ROUND_TRIP)
        ttl = left.unwrap() if isinstance(left, Success) else None
        self.set(key, str(number + by).encode(), ttl)
        return Success(number + by)


@attrs.define
class IgnoresTtl(MemoryCache):
    """Stores every value forever, whatever TTL it was given."""

    def set(self, key: str, value: bytes, ttl: float | None = None) -> Result[None, ServiceError]:
        return super().set(key, value, None if check_ttl(ttl, "set") is None else ttl)

    def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        return super().set_many(items, None if check_ttl(ttl, "set") is None else ttl)

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        return super().add(key, value, None if check_ttl(ttl, "add") is None else ttl)


@attrs.define
class ClearWipesEverything(MemoryCache):
    """``clear()`` empties every namespace of the store (a FLUSHDB in disguise)."""

    def clear(self) -> Result[None, ServiceError]:
        for namespace in self.store.namespaces():
            self.store.space(namespace).clear()
        return Success(None)


@attrs.define
class UnlockWithAnyToken(MemoryCache):
    """``set_and_unlock`` releases the lock whoever holds it (not owner-only)."""

    def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        held = self.get(lock)
        if isinstance(held, Success) and held.unwrap() is not None:
            token = held.unwrap()
        return super().set_and_unlock(key, value, ttl, lock, token)


def _target(kind: type[MemoryCache]) -> CacheTarget:
    clock = ManualClock()
    store = MemoryStore()
    return CacheTarget(lambda ns: kind(ns, clock=clock, store=store), clock=clock)


@pytest.mark.parametrize(
    ("broken", "caught_by"),
    [
        (GetThenSetAdd, "concurrent add calls won"),
        (ReadModifyWriteIncr, "concurrent incr lost updates"),
        (IgnoresTtl, "adapter gave"),
        (ClearWipesEverything, "after clear()"),
        (UnlockWithAnyToken, "set_and_unlock("),
    ],
)
def test_broken_cache_fails_the_kit(broken: type[MemoryCache], caught_by: str) -> None:
    """The kit rejects the broken cache, and the check that fires names its bug."""
    with pytest.raises(AssertionError) as failure:
        run_cache_contract(_target(broken), settings=CONTROL)
    assert caught_by in str(failure.value)


def test_the_fake_itself_passes_under_the_control_settings() -> None:
    """The same settings pass the intact fake, so the controls fail for their bug alone."""
    run_cache_contract(_target(MemoryCache), settings=CONTROL)
