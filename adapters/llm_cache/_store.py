"""The cache side of ``CachingLLM``: entries read and written failing open, and the fill lock.

A cache that fails never breaks the LLM path: every call goes through a circuit
breaker, a failure is logged and counted and then reads as a miss (or a skipped
write), and while the breaker is open the cache is not called at all. The fill lock
(``<key>:fill``, taken with ``CachePort.add``) lets one process fill an entry while
the others poll for it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Final, TypeVar

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.codec import Codec
from portside.adapters.llm_cache._entry import ChatEntry, HitDecoder
from portside.adapters.observability import Metrics
from portside.adapters.resilience._breaker import CircuitBreaker, default_trips
from portside.domain._errors import ServiceError
from portside.domain._llm import CacheInfo, Completion
from portside.ports._cache import CachePort
from portside.ports._clock import Clock

__all__ = ["EntryStore"]

T = TypeVar("T")

_log: Final = logging.getLogger("portside.llm_cache")


@attrs.define
class EntryStore:
    """Chat entries in ``cache``, behind ``breaker``; cache errors are misses."""

    cache: CachePort
    clock: Clock
    breaker: CircuitBreaker
    metrics: Metrics
    codec: Codec
    lock_ttl: float
    _hits: HitDecoder = attrs.field(factory=HitDecoder, init=False, repr=False)

    def call(self, operation: str, call: Callable[[], Result[T, ServiceError]]) -> T | None:
        """``call()``'s value, or ``None`` when the cache failed or the breaker is open."""
        if not self.breaker.allow():
            self.metrics.incr("cache.skipped")
            return None
        result = call()
        self.breaker.record(result, default_trips)
        if isinstance(result, Failure):
            self._failed(operation, result.failure())
            return None
        return result.unwrap()

    def _failed(self, operation: str, error: ServiceError) -> None:
        self.metrics.incr("cache.errors")
        if _log.isEnabledFor(logging.WARNING):
            _log.warning(
                "cache %s failed; answering without the cache: %s",
                operation,
                error,
                extra={"service": "llm_cache", "operation": operation, "outcome": "error"},
            )

    def _get(self, key: str) -> bytes | None:
        """The bytes at ``key``; ``None`` when absent or the cache failed.

        The hot path of every hit, so ``call`` is inlined: no closure per lookup.
        """
        breaker = self.breaker
        if not breaker.allow():
            self.metrics.incr("cache.skipped")
            return None
        result = self.cache.get(key)
        if isinstance(result, Success):
            breaker.record_success()
            data: bytes | None = result.unwrap()
            return data
        breaker.record(result, default_trips)
        self._failed("get", result.failure())
        return None

    def read(self, key: str, *, with_deltas: bool) -> ChatEntry | None:
        """The entry at ``key``; ``None`` when absent, corrupt, or the cache failed."""
        data = self._get(key)
        return None if data is None else ChatEntry.decode(data, with_deltas=with_deltas)

    def answer(self, key: str) -> Completion | None:
        """The stored completion at ``key`` as a counted hit with its age, or ``None``."""
        data = self._get(key)
        if data is None:
            return None
        done = self._hits.hit(key, data, self.clock.now())
        if done is not None:
            self.metrics.cache_hit(done.usage)
        return done

    def write(self, key: str, entry: ChatEntry, ttl: float | None) -> None:
        """Store ``entry`` at ``key`` for ``ttl`` seconds; a failure is only logged."""
        data = entry.encode(self.codec)
        if data is not None:
            self.call("set", lambda: self.cache.set(key, data, ttl))

    def hit(self, entry: ChatEntry) -> CacheInfo:
        """The ``CacheInfo`` of a hit on ``entry`` (its age now), counted as a hit."""
        saved = entry.completion.usage
        self.metrics.cache_hit(saved)
        return CacheInfo(True, max(0.0, self.clock.now() - entry.stored_at), saved)

    # --- cross-process fill lock ------------------------------------------------------

    def lock(self, key: str) -> bytes | None:
        """A token if this process now owns the fill of ``key``; ``None`` if another does."""
        token = uuid.uuid4().hex.encode()
        won = self.call("add", lambda: self.cache.add(key + ":fill", token, self.lock_ttl))
        # A failing cache cannot coordinate: go ahead rather than wait on nothing.
        return token if won is not False else None

    def unlock(self, key: str, token: bytes) -> None:
        """Release the fill lock of ``key`` if ``token`` still holds it."""
        compare_and_delete = getattr(self.cache, "delete_if_equal", None)
        if compare_and_delete is not None:
            self.call("unlock", lambda: compare_and_delete(key + ":fill", token))
        # Without an atomic compare-and-delete the lock expires on its own: deleting
        # after a GET could remove a lock another process took in between.

    def await_other(self, key: str, *, with_deltas: bool) -> ChatEntry | None:
        """Poll for the entry another process is filling, until its lock would expire."""
        deadline = self.clock.monotonic() + self.lock_ttl
        pause = 0.02
        while self.clock.monotonic() < deadline:
            self.clock.sleep(pause)
            entry = self.read(key, with_deltas=with_deltas)
            if entry is not None:
                return entry
            held = self.call("get", lambda: self.cache.get(key + ":fill"))
            if held is None:
                return None  # the other process gave up or failed: fill it ourselves
            pause = min(pause * 2, 0.5)
        return None
