"""The cache side of ``CachingLLM``: entries read and written failing open, and the fill lock.

A cache that fails never breaks the LLM path: every call goes through ``FailOpenCache``
(the one fail-open mechanism) with a circuit breaker, failing open on every error: a
failure is logged and counted and then reads as a miss (or a skipped write), and while
the breaker is open the cache is not called at all. The fill lock (``<key>:fill``,
taken with ``CachePort.add``) lets one process fill an entry while the others poll for it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Final

import attrs

from portside.adapters.codec import Codec
from portside.adapters.llm_cache._entry import ChatEntry
from portside.adapters.observability import Metrics
from portside.adapters.resilience._breaker import CircuitBreaker
from portside.adapters.resilience._fail_open import FailOpenCache, any_error
from portside.domain._errors import ServiceError
from portside.domain._llm import CacheInfo, Completion
from portside.ports._cache import CachePort
from portside.ports._clock import Clock

__all__ = ["EntryStore"]

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
    #: ``cache`` failing open on every error: what every read and write goes through.
    safe: FailOpenCache = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.safe = FailOpenCache(
            self.cache,
            clock=self.clock,
            breaker=self.breaker,
            fails_open=any_error,
            on_failure=self._failed,
            on_skip=self._skipped,
        )

    def _failed(self, operation: str, error: ServiceError) -> None:
        self.metrics.incr("cache.errors")
        if _log.isEnabledFor(logging.WARNING):
            _log.warning(
                "cache %s failed; answering without the cache: %s",
                operation,
                error,
                extra={"service": "llm_cache", "operation": operation, "outcome": "error"},
            )

    def _skipped(self, operation: str) -> None:
        self.metrics.incr("cache.skipped")

    def read(self, key: str, *, with_deltas: bool) -> ChatEntry | None:
        """The entry at ``key``; ``None`` when absent, corrupt, or the cache failed."""
        data = self.safe.get(key).value_or(None)
        return None if data is None else ChatEntry.decode(data, with_deltas=with_deltas)

    def answer(self, key: str) -> Completion | None:
        """The stored completion at ``key`` as a counted hit with its age, or ``None``."""
        entry = self.read(key, with_deltas=False)
        return None if entry is None else attrs.evolve(entry.completion, cache=self.hit(entry))

    def write(self, key: str, entry: ChatEntry, ttl: float | None) -> None:
        """Store ``entry`` at ``key`` for ``ttl`` seconds; a failure is only logged."""
        data = entry.encode(self.codec)
        if data is not None:
            self.safe.set(key, data, ttl)

    def hit(self, entry: ChatEntry) -> CacheInfo:
        """The ``CacheInfo`` of a hit on ``entry`` (its age now), counted as a hit."""
        saved = entry.completion.usage
        self.metrics.cache_hit(saved)
        return CacheInfo(hit=True, age=max(0.0, self.clock.now() - entry.stored_at), saved=saved)

    # --- cross-process fill lock ------------------------------------------------------

    def lock(self, key: str) -> bytes | None:
        """A token if this process now owns the fill of ``key``; ``None`` if another does."""
        token = uuid.uuid4().hex.encode()
        # A failing cache cannot coordinate: it answers True (go ahead) rather than
        # leave us waiting on nothing.
        won = self.safe.add(key + ":fill", token, self.lock_ttl).value_or(True)
        return token if won else None

    def unlock(self, key: str, token: bytes) -> None:
        """Release the fill lock of ``key`` if ``token`` still holds it."""
        # Without an atomic compare-and-delete (``FailOpenCache`` then answers False)
        # the lock expires on its own: deleting after a GET could remove a lock another
        # process took in between.
        self.safe.delete_if_equal(key + ":fill", token)

    def await_other(self, key: str, *, with_deltas: bool) -> ChatEntry | None:
        """Poll for the entry another process is filling, until its lock would expire."""
        deadline = self.clock.monotonic() + self.lock_ttl
        pause = 0.02
        while self.clock.monotonic() < deadline:
            self.clock.sleep(pause)
            entry = self.read(key, with_deltas=with_deltas)
            if entry is not None:
                return entry
            held = self.safe.get(key + ":fill").value_or(None)
            if held is None:
                return None  # the other process gave up or failed: fill it ourselves
            pause = min(pause * 2, 0.5)
        return None
