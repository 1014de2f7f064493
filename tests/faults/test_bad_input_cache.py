"""Bad input fuzzing of the cache port, differential: the fake and RedisCache answer alike.

Every call with hostile arguments (any unicode or byte key, huge or non-bytes values,
NaN/infinite/negative TTLs, absurd increments, mixed batches) returns a result or
``Failure(InvalidRequest)``; none raises, and a failed call writes nothing.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from portside.adapters.memory import ManualClock, MemoryCache
from portside.domain import ServiceError
from portside.ports import CachePort
from tests.faults.conftest import Campaign

pytestmark = pytest.mark.faults

redis_cache = pytest.importorskip("portside.adapters.redis._cache")


def _mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """Three draws in four valid, so that calls get past the first check often."""
    # one_of() would merge a repeated branch: choose the branch explicitly instead.
    return st.integers(0, 3).flatmap(lambda n: hostile if n == 0 else valid)


plain_keys = st.text(alphabet="abcdefgh:-_|*{}é中 ", min_size=1, max_size=6)
keys = _mostly(
    plain_keys,
    st.one_of(
        st.text(max_size=40),
        st.text(min_size=250, max_size=300).map(lambda s: s * 4),  # around the 1 KiB limit
        st.binary(max_size=20),
        st.sampled_from(
            ["", " ", "\x00", "a\r\nSET x y", "\ud800", "\u2028", "é" * 513, "é" * 512]
        ),
        st.integers(),
        st.none(),
    ),
)
values = _mostly(
    st.binary(max_size=64) | st.just(b"\x00\xff" * (1 << 19)),  # up to 1 MiB
    st.one_of(
        st.text(max_size=5),
        st.none(),
        st.integers(),
        st.binary(max_size=5).map(bytearray),
        st.floats(),
    ),
)
ttls = _mostly(
    st.none() | st.floats(min_value=0.5, max_value=1e6) | st.integers(1, 100),
    st.one_of(
        st.floats(),
        st.integers(-3, 0),
        st.sampled_from([1e300, 1e-9, math.inf, -math.inf, math.nan]),
        st.text(max_size=2),
        st.booleans(),
    ),
)
increments = st.one_of(
    st.integers(-10, 10),
    st.integers(min_value=2**63 - 3, max_value=2**64),
    st.integers(min_value=-(2**64), max_value=-(2**63) + 3),
    st.floats(),
    st.text(max_size=2),
    st.booleans(),
    st.none(),
)
calls = st.one_of(
    st.tuples(st.just("set"), st.tuples(keys, values, ttls)),
    st.tuples(st.just("add"), st.tuples(keys, values, ttls)),
    st.tuples(st.just("get"), st.tuples(keys)),
    st.tuples(st.just("delete"), st.tuples(keys)),
    st.tuples(st.just("ttl"), st.tuples(keys)),
    st.tuples(st.just("incr"), st.tuples(keys, increments)),
    st.tuples(st.just("get_many"), st.tuples(st.lists(keys, max_size=5))),
    st.tuples(
        st.just("set_many"),
        st.tuples(st.dictionaries(keys, values, max_size=5), ttls),
    ),
)


def _shape(result: Result[Any, ServiceError]) -> tuple[str, Any]:
    """What both adapters must agree on: the value, or the error kind."""
    if isinstance(result, Failure):
        return ("failure", result.failure().kind)
    value = result.unwrap()
    return ("ok", "<ttl>" if isinstance(value, float) else value)


def _written_keys(operation: str, args: tuple[Any, ...]) -> list[str]:
    """The well-formed keys a call would write, to prove a failed call wrote none."""
    if operation == "set_many":
        candidates = list(args[0])
    elif operation in ("set", "add", "incr"):
        candidates = [args[0]]
    else:
        return []
    return [k for k in candidates if isinstance(k, str) and k and k.isprintable() and len(k) < 200]


@pytest.fixture(name="real", scope="module")
def _real(redis_url: str) -> Iterator[CachePort]:
    cache: CachePort = redis_cache.RedisCache.from_url(
        redis_url, namespace=f"ps-fuzz-{uuid.uuid4().hex[:8]}"
    )
    yield cache
    cache.clear()
    cache.close()


@pytest.fixture(name="tally", scope="module")
def _tally() -> dict[str, float]:
    return {"_started": time.monotonic()}


@pytest.mark.services
@settings(max_examples=600)
@given(call=calls)
def test_hostile_cache_calls_answer_alike_and_write_nothing_on_failure(
    real: CachePort, tally: dict[str, float], call: tuple[str, tuple[Any, ...]]
) -> None:
    """Each hostile call is a result or InvalidRequest, the same on the fake and on Redis."""
    operation, args = call
    fake = MemoryCache(namespace="fuzz", clock=ManualClock())
    assert real.clear() == Success(None)
    outcomes = []
    for cache in (fake, real):
        result = getattr(cache, operation)(*args)
        assert isinstance(result, Success | Failure), result
        if isinstance(result, Failure):
            # NotFound is ttl's documented answer for an absent key.
            assert result.failure().kind in ("InvalidRequest", "NotFound"), result
            assert str(result.failure())  # a message naming the problem
            for key in _written_keys(operation, args):
                assert cache.get(key) == Success(None), f"{operation} failed but wrote {key!r}"
        outcomes.append(_shape(result))
    assert outcomes[0] == outcomes[1], (operation, outcomes)
    kind = outcomes[0][1] if outcomes[0][0] == "failure" else "ok"
    tally[kind] = tally.get(kind, 0) + 1


def test_zz_record_the_cache_campaign(tally: dict[str, float], campaign: Campaign) -> None:
    """The campaign above ran and hit both accepted and rejected calls."""
    if set(tally) <= {"_started"}:
        pytest.skip("the Redis fuzz campaign did not run")
    campaign.name = "bad input: cache (fake and Redis, differential)"
    started = tally.pop("_started")
    campaign.elapsed = time.monotonic() - started
    campaign.count(int(sum(tally.values())) * 2)
    campaign.failures.update({k: int(v) * 2 for k, v in tally.items() if k != "ok"})
    campaign.fault("hypothesis: unicode/byte keys, 1 MiB and non-bytes values, NaN/inf TTLs")
    assert tally.get("ok", 0) > 0
    assert tally.get("InvalidRequest", 0) > 0
