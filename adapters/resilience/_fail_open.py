"""``FailOpenCache``: the application keeps working while its cache is down.

The one fail-open mechanism of portside: applications wrap their cache in it, and the
LLM response cache reads and writes its entries through it (failing open on every
error, and counting failures and skipped calls in its metrics through the hooks).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Generic, TypeVar

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.resilience import _locked_fill
from portside.adapters.resilience._breaker import CircuitBreaker, default_trips
from portside.domain._cache import FillClaim
from portside.domain._errors import InvalidRequest, NotFound, ServiceError
from portside.ports._cache import AsyncCachePort, CachePort, CompareAndDelete, LockedFill
from portside.ports._clock import Clock

__all__ = [
    "FALSE",
    "GO_AHEAD",
    "NONE",
    "NOTHING",
    "TRUE",
    "FailOpenCache",
    "FailOpenCore",
    "any_error",
    "ttl_missing",
]

T = TypeVar("T")
R = TypeVar("R")

log: Final = logging.getLogger("portside.cache")

NONE: Final = Success(None)
FALSE: Final = Success(False)
TRUE: Final = Success(True)
NOTHING: Final[Success[dict[str, bytes]]] = Success({})
GO_AHEAD: Final = Success(FillClaim(locked=True))


def any_error(error: ServiceError) -> bool:
    """A ``fails_open`` predicate for callers that must never see a cache failure."""
    return True


def _default_breaker(self: FailOpenCore[Any]) -> CircuitBreaker:
    return CircuitBreaker(self.clock, failure_threshold=3, reset_timeout=5.0, name="cache")


C = TypeVar("C", CachePort, AsyncCachePort)


@attrs.define
class FailOpenCore(Generic[C]):
    """What ``FailOpenCache`` and ``AsyncFailOpenCache`` decide, with no I/O of its own.

    Whether a result fails open, what it feeds the breaker, the outage and recovery log
    lines and the metrics hooks: the twins call ``settle`` on each answer and
    ``skipped`` for each call the open breaker did not let through.
    """

    inner: C
    clock: Clock = attrs.field(factory=SystemClock, repr=False)
    breaker: CircuitBreaker = attrs.field(
        default=attrs.Factory(_default_breaker, takes_self=True), repr=False
    )
    fails_open: Callable[[ServiceError], bool] = attrs.field(default=default_trips, repr=False)
    on_failure: Callable[[str, ServiceError], None] | None = attrs.field(default=None, repr=False)
    on_skip: Callable[[str], None] | None = attrs.field(default=None, repr=False)
    _down: bool = attrs.field(default=False, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    @property
    def namespace(self) -> str:
        """The wrapped cache's namespace."""
        return self.inner.namespace

    @property
    def is_down(self) -> bool:
        """Whether the backend is currently considered down (an outage was reported)."""
        return self._down

    def settle(
        self,
        result: Result[T, ServiceError],
        operation: str,
        fallback: Result[T, ServiceError] | None,
    ) -> Result[T, ServiceError]:
        """``result``, or ``fallback`` if it fails open; feeds the breaker and the log."""
        if isinstance(result, Failure):
            error = result.failure()
            if default_trips(error):
                self.breaker.record_failure()
                self._report_down(operation, error)
            elif not isinstance(error, InvalidRequest):
                # The backend answered (a refusal, a protocol error): it is up. Bad
                # input was rejected before any I/O and says nothing about it.
                self._answered()
            if not self.fails_open(error):
                return result
            if self.on_failure is not None:
                self.on_failure(operation, error)
            return Failure(error) if fallback is None else fallback
        self._answered()
        return result

    def _answered(self) -> None:
        self.breaker.record_success()
        if self._down:
            self._report_up()

    def skipped(self, operation: str, fallback: R) -> R:
        """``fallback`` for a call the open breaker did not let through."""
        if self.on_skip is not None:
            self.on_skip(operation)
        return fallback

    def _report_down(self, operation: str, error: ServiceError) -> None:
        with self._lock:
            if self._down:
                return
            self._down = True
        log.warning(
            "cache %s is unavailable (%s during %s); failing open: reads are misses and "
            "writes are skipped until it recovers",
            self.inner.namespace,
            error.kind,
            operation,
        )

    def _report_up(self) -> None:
        with self._lock:
            if not self._down:
                return
            self._down = False
        log.warning("cache %s is available again", self.inner.namespace)


def ttl_missing() -> Failure[ServiceError]:
    """What ``ttl`` answers while the backend is down: a miss."""
    return Failure(NotFound(service="cache", operation="ttl", message="cache is down"))


@attrs.define
class FailOpenCache(FailOpenCore[CachePort], CachePort, CompareAndDelete, LockedFill):
    """A cache that answers even when its backend is down.

    While ``inner`` returns ``Unavailable`` or ``TimedOut`` (or any failure for which
    ``fails_open`` is true; ``any_error`` makes that every failure): reads are misses
    (``get`` is ``None``, ``get_many`` is empty, ``ttl`` is ``NotFound``), writes are
    skipped (``set``, ``set_many``, ``clear`` succeed; ``delete`` and
    ``delete_if_equal`` are ``False``), and ``add`` is ``True`` (go ahead as if first: a
    lock or a dedupe marker must not stall the application; likewise ``get_or_lock``
    answers ``FillClaim(locked=True)``). ``incr`` cannot be faked
    and returns the failure. Other failures (bad input, refused credentials) pass
    through unchanged.

    The circuit breaker (on the injected clock) opens after consecutive outage errors;
    while open, calls do not touch the backend, so nobody pays the socket timeout on
    every call; after ``reset_timeout`` one call probes the backend again. Each outage
    is logged once (logger ``portside.cache``) and so is the recovery. ``on_failure``
    (operation, error) is called for every failure answered with its fallback and
    ``on_skip`` (operation) for every call the open breaker skipped, for metrics.
    """

    def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """The value at ``key``; ``None`` when absent or while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("get", NONE)
        result: Result[bytes | None, ServiceError] = self.settle(self.inner.get(key), "get", NONE)
        return result

    def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """The present keys among ``keys``; empty while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("get_many", NOTHING)
        result: Result[dict[str, bytes], ServiceError] = self.settle(
            self.inner.get_many(keys), "get_many", NOTHING
        )
        return result

    def set(self, key: str, value: bytes, ttl: float | None = None) -> Result[None, ServiceError]:
        """Store ``value``; skipped (``Success``) while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("set", NONE)
        result: Result[None, ServiceError] = self.settle(
            self.inner.set(key, value, ttl), "set", NONE
        )
        return result

    def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Store every item; skipped (``Success``) while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("set_many", NONE)
        result: Result[None, ServiceError] = self.settle(
            self.inner.set_many(items, ttl), "set_many", NONE
        )
        return result

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        """Store if absent; ``True`` (go ahead) while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("add", TRUE)
        result: Result[bool, ServiceError] = self.settle(
            self.inner.add(key, value, ttl), "add", TRUE
        )
        return result

    def delete(self, key: str) -> Result[bool, ServiceError]:
        """Remove ``key``; ``False`` while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("delete", FALSE)
        result: Result[bool, ServiceError] = self.settle(self.inner.delete(key), "delete", FALSE)
        return result

    def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """Compare-and-delete when ``inner`` offers it; ``False`` otherwise or while down."""
        if not isinstance(self.inner, CompareAndDelete):
            return FALSE
        if not self.breaker.allow():
            return self.skipped("delete_if_equal", FALSE)
        result: Result[bool, ServiceError] = self.settle(
            self.inner.delete_if_equal(key, expected), "delete_if_equal", FALSE
        )
        return result

    def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """``LockedFill.get_or_lock`` of ``inner``, or composed from its plain methods.

        ``FillClaim(locked=True)`` (go ahead and fill) while the backend is down.
        """
        if not self.breaker.allow():
            return self.skipped("get_or_lock", GO_AHEAD)
        claimed = _locked_fill.get_or_lock(self.inner, key, lock, token, ttl)
        return self.settle(claimed, "get_or_lock", GO_AHEAD)

    def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """``LockedFill.set_and_unlock`` of ``inner``, or ``set`` then an owner-only release.

        Skipped (``False``: nothing released) while the backend is down.
        """
        if not self.breaker.allow():
            return self.skipped("set_and_unlock", FALSE)
        stored = _locked_fill.set_and_unlock(self.inner, key, value, ttl, lock, token)
        return self.settle(stored, "set_and_unlock", FALSE)

    def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """Atomic increment; ``Failure(Unavailable)`` (no I/O) while the breaker is open."""
        if not self.breaker.allow():
            return self.skipped("incr", Failure(self.breaker.open_error("incr")))
        result: Result[int, ServiceError] = self.settle(self.inner.incr(key, by), "incr", None)
        return result

    def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """Seconds left; ``NotFound`` (a miss) while the backend is down."""
        missing = ttl_missing()
        if not self.breaker.allow():
            return self.skipped("ttl", missing)
        result: Result[float | None, ServiceError] = self.settle(
            self.inner.ttl(key), "ttl", missing
        )
        return result

    def clear(self) -> Result[None, ServiceError]:
        """Remove this namespace's keys; skipped while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("clear", NONE)
        result: Result[None, ServiceError] = self.settle(self.inner.clear(), "clear", NONE)
        return result

    def close(self) -> None:
        """Close the wrapped cache."""
        self.inner.close()
