"""The cache side of ``CachingLLM``: entries read and written failing open, and the fill lock.

A cache that fails never breaks the LLM path: every call goes through ``FailOpenCache``
(the one fail-open mechanism) with a circuit breaker, failing open on every error: a
failure is logged and counted and then reads as a miss (or a skipped write), and while
the breaker is open the cache is not called at all.

Filling a missed entry takes two cache steps (``LockedFill``: one round trip each on
Redis, composed from the plain methods on other caches): ``get_or_lock`` reads the
entry again and, when it is still missing, takes the fill lock ``<key>:fill`` in the
same atomic step, so an answer a racing filler stored in between is used; after the
model call ``set_and_unlock`` stores the entry and releases the lock (owner only). A
process that finds the lock held polls with ``get_or_lock`` until the entry appears
or the lock is free to take.
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
from portside.domain._cache import FillClaim
from portside.domain._errors import ServiceError
from portside.domain._llm import CacheInfo, Completion
from portside.ports._cache import CachePort
from portside.ports._clock import Clock

__all__ = ["EntryStore", "Fill"]

_log: Final = logging.getLogger("portside.llm_cache")


@attrs.define
class Fill:
    """This process's turn to fill ``key``: ``token`` while it holds the fill lock."""

    key: str
    token: bytes | None


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

    def write(self, fill: Fill, entry: ChatEntry, ttl: float | None) -> None:
        """Store ``entry`` for ``ttl`` seconds and release the fill lock; failures are logged."""
        data = entry.encode(self.codec)
        if data is None:
            self.release(fill)
        elif fill.token is None:
            self.safe.set(fill.key, data, ttl)
        else:
            self.safe.set_and_unlock(fill.key, data, ttl, _lock(fill.key), fill.token)
            fill.token = None

    def hit(self, entry: ChatEntry) -> CacheInfo:
        """The ``CacheInfo`` of a hit on ``entry`` (its age now), counted as a hit."""
        saved = entry.completion.usage
        self.metrics.cache_hit(saved)
        return CacheInfo(hit=True, age=max(0.0, self.clock.now() - entry.stored_at), saved=saved)

    # --- cross-process fill lock ------------------------------------------------------

    def take(self, key: str, *, read: bool, with_deltas: bool) -> tuple[Fill, ChatEntry | None]:
        """The entry at ``key`` if another filler stored it, else this process's ``Fill``.

        With ``read`` the entry is read again and the lock taken in one step; without
        it only the lock is taken (an entry is still used once another process that
        held the lock stores one). While another process holds the lock this polls
        (20 ms doubling to 500 ms) until its entry appears or the lock is free, for up
        to ``lock_ttl``; after that it fills without the lock. A failing cache cannot
        coordinate: it answers "go ahead" rather than leave us waiting on nothing.
        """
        token = uuid.uuid4().hex.encode()
        lock = _lock(key)
        claim = self._claim(key, lock, token) if read else self._lock(lock, token)
        deadline = self.clock.monotonic() + self.lock_ttl
        pause = 0.02
        while not claim.locked:
            if claim.value is not None:
                entry = ChatEntry.decode(claim.value, with_deltas=with_deltas)
                if entry is not None:
                    return Fill(key, None), entry
                # A damaged entry: ours to overwrite, once the lock is ours.
                claim = self._lock(lock, token)
                continue
            if self.clock.monotonic() >= deadline:
                return Fill(key, None), None  # waited in vain: fill without the lock
            self.clock.sleep(pause)
            pause = min(pause * 2, 0.5)
            claim = self._claim(key, lock, token)
        return Fill(key, token), None

    def _claim(self, key: str, lock: str, token: bytes) -> FillClaim:
        return self.safe.get_or_lock(key, lock, token, self.lock_ttl).value_or(_GO_AHEAD)

    def _lock(self, lock: str, token: bytes) -> FillClaim:
        taken = self.safe.add(lock, token, self.lock_ttl).value_or(True)
        return _GO_AHEAD if taken else _HELD

    def release(self, fill: Fill) -> None:
        """Release the fill lock if this process still holds it (nothing stored)."""
        if fill.token is not None:
            # Without an atomic compare-and-delete (``FailOpenCache`` then answers
            # False) the lock expires on its own.
            self.safe.delete_if_equal(_lock(fill.key), fill.token)
            fill.token = None


_GO_AHEAD: Final = FillClaim(locked=True)
_HELD: Final = FillClaim()


def _lock(key: str) -> str:
    """The name of the fill lock of ``key``."""
    return key + ":fill"
