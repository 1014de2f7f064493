"""The fill steps composed from plain cache methods answer as the native ones do."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from portside.adapters.memory import ManualClock, MemoryCache
from portside.adapters.resilience import _locked_fill
from portside.domain import InvalidRequest, ServiceError, Unavailable
from portside.ports import CompareAndDelete, LockedFill


@attrs.define
class _Plain:
    """The plain methods ``_locked_fill`` composes from, without ``LockedFill``."""

    inner: MemoryCache

    def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """The inner cache's value."""
        return self.inner.get(key)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> Result[None, ServiceError]:
        """Stored in the inner cache."""
        return self.inner.set(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        """Added to the inner cache."""
        return self.inner.add(key, value, ttl)

    def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """Compare-and-delete in the inner cache."""
        return self.inner.delete_if_equal(key, expected)


names = st.sampled_from(["k", "k:fill", "j"])
tokens = st.sampled_from([b"a", b"b"])
# A lock is another key than the one it guards (the protocol's precondition).
pairs = st.permutations(["k", "k:fill", "j"]).map(lambda p: (p[0], p[1]))
steps = st.lists(
    st.one_of(
        st.tuples(st.just("get_or_lock"), pairs, tokens, st.sampled_from([1.5, 3.5])),
        st.tuples(st.just("set_and_unlock"), pairs, tokens, st.none() | st.just(2.5)),
        st.tuples(st.just("delete"), names),
        st.tuples(st.just("advance"), st.sampled_from([1.0, 2.0])),
    ),
    max_size=25,
)


def _apply(cache: Any, step: tuple[Any, ...]) -> object:
    kind = step[0]
    if kind == "get_or_lock":
        (key, lock), token, ttl = step[1:]
        return _locked_fill.get_or_lock(cache, key, lock, token, ttl)
    if kind == "set_and_unlock":
        (key, lock), token, ttl = step[1:]
        return _locked_fill.set_and_unlock(cache, key, b"v", ttl, lock, token)
    return _locked_fill.release(cache, step[1], b"a")


@given(steps)
def test_composed_steps_match_the_native_ones(script: list[tuple[Any, ...]]) -> None:
    """Any sequence of fill steps, deletes and time gives the same answers both ways."""
    clock = ManualClock()
    native = MemoryCache("native", clock=clock)
    plain = _Plain(MemoryCache("plain", clock=clock))
    assert isinstance(native, LockedFill)
    assert not isinstance(plain, LockedFill)
    assert isinstance(plain, CompareAndDelete)
    for step in script:
        if step[0] == "advance":
            clock.advance(step[1])
            continue
        assert _apply(native, step) == _apply(plain, step), step
    everything = ["k", "k:fill", "j"]
    assert native.get_many(everything) == plain.inner.get_many(everything)


@attrs.define
class _AddFails(_Plain):
    """A plain cache whose ``add`` fails as if the server went away."""

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        """Always Unavailable."""
        return Failure(Unavailable(service="cache", operation="add"))


def test_composed_steps_refuse_bad_input_before_any_step() -> None:
    """A lock without a TTL or a bad token is InvalidRequest, and nothing is written."""
    plain = _Plain(MemoryCache("plain", clock=ManualClock()))
    for outcome in (
        _locked_fill.get_or_lock(plain, "k", "k:fill", b"t", None),  # type: ignore[arg-type]
        _locked_fill.get_or_lock(plain, "k", "k:fill", "t", 5.0),  # type: ignore[arg-type]
        _locked_fill.set_and_unlock(plain, "k", b"v", None, "k:fill", 7),  # type: ignore[arg-type]
    ):
        assert isinstance(outcome.failure(), InvalidRequest)
    assert plain.inner.get_many(["k", "k:fill"]) == Success({})


def test_a_failing_step_is_returned_not_hidden() -> None:
    """When taking the lock fails, the composed step returns that failure."""
    failing = _AddFails(MemoryCache("plain", clock=ManualClock()))
    outcome = _locked_fill.get_or_lock(failing, "k", "k:fill", b"t", 5.0)
    assert isinstance(outcome.failure(), Unavailable)
