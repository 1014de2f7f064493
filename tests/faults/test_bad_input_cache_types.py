"""Every public cache method, called with arguments of every kind of Python type.

Differential, like ``test_bad_input_cache``: the fake and ``RedisCache`` get the same
call. Each argument position draws from a well-formed value or from a pool of values of
all the built-in kinds (None, bools, ints up to 10**400, floats with NaN and infinity,
complex, Decimal, Fraction, str, bytes, bytearray, memoryview, dates, UUIDs, containers,
one-shot iterators, ranges of absurd length, classes, functions). No call raises; both
adapters give the same value or the same error kind; a refused call writes nothing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from portside.adapters.memory import ManualClock, MemoryCache
from portside.domain import ServiceError
from portside.ports import CachePort

pytestmark = pytest.mark.faults

redis_cache = pytest.importorskip("portside.adapters.redis._cache")


@attrs.frozen
class OneShot:
    """A one-shot iterator over ``items``, made afresh for each adapter's call."""

    items: tuple[Any, ...]


def _fresh(argument: Any) -> Any:
    return iter(argument.items) if isinstance(argument, OneShot) else argument


def _beyond_str_limit() -> int:
    """An int whose str() raises (Python refuses to print more than 4300 digits)."""
    return 10**5000


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, 2**64]),
    st.builds(_beyond_str_limit),
    st.floats(),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e300, 5e-324, -0.0]),
    st.complex_numbers(),
    st.decimals(),
    st.fractions(),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.binary(max_size=12).map(bytearray),
    st.binary(max_size=12).map(memoryview),
    st.datetimes(),
    st.timedeltas(),
    st.uuids(),
    st.sampled_from(
        [object(), object, int, str, bytes, Ellipsis, NotImplemented, print, len, math]
    ),
    st.sampled_from([range(10**12), range(3), range(0)]),
)
anything = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.frozensets(st.integers() | st.text(max_size=3), max_size=3),
        st.sets(st.text(max_size=4), max_size=3),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
        st.dictionaries(st.integers() | st.none(), inner, max_size=2),
        st.lists(inner, max_size=3).map(lambda xs: OneShot(tuple(xs))),
    ),
    max_leaves=6,
)


def _or_anything(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Half well-formed (so later arguments get checked too), half anything at all."""
    return st.booleans().flatmap(lambda ok: valid if ok else anything)


keys = _or_anything(st.text(alphabet="abc:-", min_size=1, max_size=4))
values = _or_anything(st.binary(max_size=8))
ttls = _or_anything(st.none() | st.integers(1, 1000) | st.floats(0.5, 1e4))
bys = _or_anything(st.integers(-5, 5))
key_batches = _or_anything(st.lists(st.text(alphabet="abc", min_size=1, max_size=3), max_size=3))
item_batches = _or_anything(
    st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=3), st.binary(max_size=4))
)

#: Every public method of CachePort (and CompareAndDelete, LockedFill) with its arguments.
calls = st.one_of(
    st.tuples(st.just("get"), st.tuples(keys)),
    st.tuples(st.just("get_many"), st.tuples(key_batches)),
    st.tuples(st.just("set"), st.tuples(keys, values, ttls)),
    st.tuples(st.just("set_many"), st.tuples(item_batches, ttls)),
    st.tuples(st.just("add"), st.tuples(keys, values, ttls)),
    st.tuples(st.just("delete"), st.tuples(keys)),
    st.tuples(st.just("delete_if_equal"), st.tuples(keys, values)),
    st.tuples(st.just("get_or_lock"), st.tuples(keys, keys, values, ttls)),
    st.tuples(st.just("set_and_unlock"), st.tuples(keys, values, ttls, keys, values)),
    st.tuples(st.just("incr"), st.tuples(keys, bys)),
    st.tuples(st.just("ttl"), st.tuples(keys)),
    st.tuples(st.just("clear"), st.just(())),
)


def _shape(result: Result[Any, ServiceError]) -> tuple[str, Any]:
    if isinstance(result, Failure):
        return ("failure", result.failure().kind)
    value = result.unwrap()
    return ("ok", "<ttl>" if isinstance(value, float) else value)


@pytest.fixture(name="real", scope="module")
def _real(redis_url: str) -> Iterator[CachePort]:
    cache: CachePort = redis_cache.RedisCache.from_url(
        redis_url, namespace=f"ps-types-{uuid.uuid4().hex[:8]}"
    )
    yield cache
    cache.clear()
    cache.close()


def _stored_keys(cache: CachePort) -> int:
    """How many keys the cache's namespace holds."""
    if isinstance(cache, MemoryCache):
        return len(cache)
    client = cache.client  # type: ignore[attr-defined]
    return sum(1 for _ in client.scan_iter(match=cache.namespace + "|*"))  # type: ignore[attr-defined]


@pytest.mark.services
@settings(max_examples=400)
@given(call=calls)
def test_any_argument_of_any_type_is_a_result_alike_on_fake_and_redis(
    real: CachePort, call: tuple[str, tuple[Any, ...]]
) -> None:
    """No call raises; fake and Redis agree on the value or error kind; a refusal writes nothing."""
    operation, args = call
    fake = MemoryCache(namespace="types", clock=ManualClock())
    assert real.clear() == Success(None)
    outcomes = []
    for cache in (fake, real):
        result = getattr(cache, operation)(*map(_fresh, args))
        assert isinstance(result, Success | Failure), result
        if isinstance(result, Failure):
            error = result.failure()
            assert error.kind in ("InvalidRequest", "NotFound"), error  # NotFound: ttl's absent key
            assert error.message
            assert _stored_keys(cache) == 0, f"{operation} was refused but wrote"
        outcomes.append(_shape(result))
    assert outcomes[0] == outcomes[1], (operation, args, outcomes)


@pytest.mark.parametrize(
    ("operation", "args", "words"),
    [
        ("set", ("k", b"v", 10**400), "ttl must be at most"),
        ("set", ("k", b"v", -(10**5000)), "ttl must be positive"),
        ("set_many", ({"k": b"v"}, 10**400), "ttl must be at most"),
        ("add", ("k", b"v", math.nan), "ttl must be positive"),
        ("get_many", (None,), "keys must be an iterable of str, got NoneType"),
        ("get_many", (5,), "keys must be an iterable of str, got int"),
        ("get_many", (b"ab",), "keys must be an iterable of str, not a single value"),
        ("get_many", (range(10**12),), "a batch holds at most"),
        ("get_many", ((str(i) for i in range(10**12)),), "a batch holds at most"),
        ("set_many", ([("k", b"v")],), "items must be a mapping of str to bytes, got list"),
        ("set_many", (None,), "items must be a mapping of str to bytes, got NoneType"),
        ("set", ("k", bytearray(b"v")), "a cache value must be bytes, got bytearray"),
        ("incr", ("k", 10**400), "outside the signed 64-bit range"),
        ("incr", ("k", 1.5), "got float"),
        ("get_or_lock", ("k", "k:fill", b"t", None), "lock ttl must be positive"),
        ("get_or_lock", ("k", 5, b"t", 1.0), "lock: a cache key must be str, got int"),
        ("set_and_unlock", ("k", b"v", None, "k:fill", "t"), "lock: a cache value must be bytes"),
    ],
)
def test_bad_arguments_are_invalid_requests_naming_the_argument(
    operation: str, args: tuple[Any, ...], words: str
) -> None:
    """Each of these is Failure(InvalidRequest) whose message names the argument."""
    cache = MemoryCache(namespace="named", clock=ManualClock())
    result = getattr(cache, operation)(*args)
    assert isinstance(result, Failure)
    assert result.failure().kind == "InvalidRequest"
    assert words in result.failure().message
    assert len(cache) == 0


def test_a_huge_batch_is_refused_before_it_is_copied() -> None:
    """A batch is refused from its length: a mapping claiming 10**12 items is never iterated."""

    class Enormous(dict[str, bytes]):
        def __len__(self) -> int:
            return 10**12

        def items(self) -> Any:
            raise AssertionError("iterated a batch that was too large")

    cache = MemoryCache(namespace="huge", clock=ManualClock())
    refused = cache.set_many(Enormous())
    assert isinstance(refused, Failure)
    assert "at most" in refused.failure().message
