"""Type-level checks of the cache tools (run by mypy --strict, and imported by pytest)."""

from __future__ import annotations

from typing import assert_type

from returns.result import Result

from portside.adapters.cache_tools import TypedCache, get_or_set
from portside.adapters.memory import MemoryCache
from portside.adapters.resilience import SingleFlight
from portside.domain import ServiceError, Usage


def test_typed_cache_types() -> None:
    """TypedCache[T].get is Result[T | None, ...] without casts; get_or_set keeps T."""
    cache = TypedCache(MemoryCache("typing"), Usage)
    assert_type(cache, TypedCache[Usage])
    assert_type(cache.get("k"), Result[Usage | None, ServiceError])
    assert_type(cache.get_or_set("k", lambda: Usage(1, 2)), Result[Usage, ServiceError])
    assert_type(get_or_set(cache.cache, "k", lambda: b"x"), Result[bytes, ServiceError])
    flights: SingleFlight[int] = SingleFlight()
    assert_type(flights.do("k", lambda: 1), tuple[int, bool])
