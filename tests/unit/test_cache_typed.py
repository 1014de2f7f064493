"""TypedCache: codec-backed values; an undecodable value is a logged miss."""

from __future__ import annotations

import logging

import pytest
from returns.result import Success

from portside.adapters.cache_tools import TypedCache
from portside.adapters.memory import ManualClock, MemoryCache
from portside.domain import Completion, SerializationError, Usage


@pytest.fixture(name="raw")
def _raw(manual_clock: ManualClock) -> MemoryCache:
    return MemoryCache("typed", clock=manual_clock)


def test_attrs_values_round_trip(raw: MemoryCache) -> None:
    """An attrs value comes back equal; an absent key is None."""
    usages = TypedCache(raw, Usage)
    assert usages.set("u", Usage(1, 2, 3), ttl=5) == Success(None)
    assert usages.get("u") == Success(Usage(1, 2, 3))
    assert usages.get("missing") == Success(None)
    assert usages.add("u", Usage(9, 9)) == Success(False)
    assert usages.delete("u") == Success(True)


def test_many_values_round_trip(raw: MemoryCache) -> None:
    """set_many/get_many encode and decode every value."""
    numbers = TypedCache(raw, list[int])
    assert numbers.set_many({"a": [1], "b": [2, 3]}) == Success(None)
    assert numbers.get_many(["a", "b", "c"]) == Success({"a": [1], "b": [2, 3]})


def test_an_undecodable_value_is_a_logged_miss(
    raw: MemoryCache, caplog: pytest.LogCaptureFixture
) -> None:
    """Foreign bytes, or a value of another type, read as a miss and are logged."""
    raw.set("junk", b"not an envelope")
    TypedCache(raw, str).set("text", "hello")
    usages = TypedCache(raw, Usage)
    with caplog.at_level(logging.WARNING, logger="portside.cache"):
        assert usages.get("junk") == Success(None)
        assert usages.get("text") == Success(None)
        assert usages.get_many(["junk", "text"]) == Success({})
    records = [r for r in caplog.records if r.name == "portside.cache"]
    assert len(records) == 4
    assert "'junk'" in records[0].getMessage()
    assert "Usage" in records[0].getMessage()


def test_an_unencodable_value_writes_nothing(raw: MemoryCache) -> None:
    """A value the codec cannot encode is SerializationError and nothing is stored."""
    floats = TypedCache(raw, float)
    assert isinstance(floats.set("x", float("nan")).failure(), SerializationError)
    many = floats.set_many({"a": 1.0, "b": float("inf")})
    assert isinstance(many.failure(), SerializationError)
    assert isinstance(floats.add("x", float("nan")).failure(), SerializationError)
    assert len(raw) == 0


def test_typed_get_or_set_runs_the_factory_once(raw: MemoryCache) -> None:
    """The typed get_or_set stores the encoded value and decodes hits."""
    completions = TypedCache(raw, Completion)
    made: list[Completion] = []

    def factory() -> Completion:
        made.append(Completion(text="hi", finish_reason="stop"))
        return made[-1]

    first = completions.get_or_set("c", factory, ttl=60)
    second = completions.get_or_set("c", factory, ttl=60)
    assert first == second == Success(made[0])
    assert len(made) == 1


def test_typed_get_or_set_refuses_an_unencodable_factory_value(raw: MemoryCache) -> None:
    """A factory value the codec refuses is SerializationError, not a crash."""
    floats = TypedCache(raw, float)
    assert isinstance(floats.get_or_set("x", lambda: float("nan")).failure(), SerializationError)
    assert raw.get("x") == Success(None)
