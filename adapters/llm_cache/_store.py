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
from typing import Any, Final, Generic, TypeVar

import attrs
from returns.result import Result

from portside.adapters.codec import Codec
from portside.adapters.llm_cache._entry import ChatEntry
from portside.adapters.observability import Metrics
from portside.adapters.resilience._breaker import CircuitBreaker
from portside.adapters.resilience._fail_open import FailOpenCache, any_error
from portside.adapters.resilience._steps import Call, Sleep, Steps, run
from portside.domain._cache import FillClaim
from portside.domain._errors import ServiceError
from portside.domain._llm import CacheInfo, Completion
from portside.ports._cache import CachePort
from portside.ports._clock import Clock

__all__ = ["EntryStore", "Fill", "StoreCore", "release_step", "take_steps", "write_step"]

_log: Final = logging.getLogger("portside.llm_cache")


@attrs.define
class Fill:
    """This process's turn to fill ``key``: ``token`` while it holds the fill lock."""

    key: str
    token: bytes | None


C = TypeVar("C")


@attrs.define
class StoreCore(Generic[C]):
    """What ``EntryStore`` and ``AsyncEntryStore`` share: the hooks, hits and settings."""

    cache: C
    clock: Clock
    breaker: CircuitBreaker
    metrics: Metrics
    codec: Codec
    lock_ttl: float

    def _fail_open_options(self) -> dict[str, Any]:
        """How the store's cache fails open: on every error, behind the breaker."""
        return {
            "clock": self.clock,
            "breaker": self.breaker,
            "fails_open": any_error,
            "on_failure": self._failed,
            "on_skip": self._skipped,
        }

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

    def hit(self, entry: ChatEntry) -> CacheInfo:
        """The ``CacheInfo`` of a hit on ``entry`` (its age now), counted as a hit."""
        saved = entry.completion.usage
        self.metrics.cache_hit(saved)
        return CacheInfo(hit=True, age=max(0.0, self.clock.now() - entry.stored_at), saved=saved)

    def answer_of(self, entry: ChatEntry | None) -> Completion | None:
        """``entry``'s completion as a counted hit with its age, or ``None``."""
        return None if entry is None else attrs.evolve(entry.completion, cache=self.hit(entry))


@attrs.define
class EntryStore(StoreCore[CachePort]):
    """Chat entries in ``cache``, behind ``breaker``; cache errors are misses."""

    #: ``cache`` failing open on every error: what every read and write goes through.
    safe: FailOpenCache = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.safe = FailOpenCache(self.cache, **self._fail_open_options())

    def read(self, key: str, *, with_deltas: bool) -> ChatEntry | None:
        """The entry at ``key``; ``None`` when absent, corrupt, or the cache failed."""
        data = self.safe.get(key).value_or(None)
        return None if data is None else ChatEntry.decode(data, with_deltas=with_deltas)

    def answer(self, key: str) -> Completion | None:
        """The stored completion at ``key`` as a counted hit with its age, or ``None``."""
        return self.answer_of(self.read(key, with_deltas=False))

    def write(self, fill: Fill, entry: ChatEntry, ttl: float | None) -> None:
        """Store ``entry`` for ``ttl`` seconds and release the fill lock; failures are logged."""
        step = write_step(fill, entry, ttl, self.codec)
        if step is None:
            self.release(fill)
        else:
            getattr(self.safe, step.method)(*step.args)
            fill.token = None

    # --- cross-process fill lock ------------------------------------------------------

    def take(self, key: str, *, read: bool, with_deltas: bool) -> tuple[Fill, ChatEntry | None]:
        """The entry at ``key`` if another filler stored it, else this process's ``Fill``.

        See ``take_steps``; the waits are on the store's clock.
        """
        return run(
            take_steps(key, read, with_deltas, self.lock_ttl, self.clock),
            self.safe,
            sleep=self.clock.sleep,
        )

    def release(self, fill: Fill) -> None:
        """Release the fill lock if this process still holds it (nothing stored)."""
        step = release_step(fill)
        if step is not None:
            self.safe.delete_if_equal(*step.args)
            fill.token = None


def take_steps(
    key: str, read: bool, with_deltas: bool, lock_ttl: float, clock: Clock
) -> Steps[tuple[Fill, ChatEntry | None]]:
    """Take the fill of ``key``: the decisions, run by ``EntryStore`` or ``AsyncEntryStore``.

    With ``read`` the entry is read again and the lock taken in one step; without it
    only the lock is taken (an entry is still used once another process that held the
    lock stores one). While another process holds the lock this polls (20 ms doubling
    to 500 ms) until its entry appears or the lock is free, for up to ``lock_ttl``;
    after that it fills without the lock. The cache is expected to fail open: a failing
    cache cannot coordinate, so it answers "go ahead" rather than leave us waiting.
    """
    token = uuid.uuid4().hex.encode()
    lock = _lock(key)
    claim_call = Call("get_or_lock", (key, lock, token, lock_ttl))
    lock_call = Call("add", (lock, token, lock_ttl))
    claim = (yield claim_call).value_or(_GO_AHEAD) if read else _taken((yield lock_call))
    deadline = clock.monotonic() + lock_ttl
    pause = 0.02
    while not claim.locked:
        if claim.value is not None:
            entry = ChatEntry.decode(claim.value, with_deltas=with_deltas)
            if entry is not None:
                return Fill(key, None), entry
            # A damaged entry: ours to overwrite, once the lock is ours.
            claim = _taken((yield lock_call))
            continue
        if clock.monotonic() >= deadline:
            return Fill(key, None), None  # waited in vain: fill without the lock
        yield Sleep(pause)
        pause = min(pause * 2, 0.5)
        claim = (yield claim_call).value_or(_GO_AHEAD)
    return Fill(key, token), None


def release_step(fill: Fill) -> Call | None:
    """The call that releases ``fill``'s lock, if it still holds one.

    The caller forgets the token (``fill.token = None``) once the call has been made:
    a task cancelled before it still releases the lock from its ``finally``.
    """
    if fill.token is None:
        return None
    # Without an atomic compare-and-delete (the fail-open cache then answers False)
    # the lock expires on its own.
    return Call("delete_if_equal", (_lock(fill.key), fill.token))


def write_step(fill: Fill, entry: ChatEntry, ttl: float | None, codec: Codec) -> Call | None:
    """The call that stores ``entry`` (releasing ``fill``'s lock), or ``None`` to only release.

    ``None`` when the entry cannot be encoded: nothing is stored. As with
    ``release_step``, the caller forgets the token once the call has been made.
    """
    data = entry.encode(codec)
    if data is None:
        return None
    if fill.token is None:
        return Call("set", (fill.key, data, ttl))
    return Call("set_and_unlock", (fill.key, data, ttl, _lock(fill.key), fill.token))


def _taken(added: Result[bool, ServiceError]) -> FillClaim:
    return _GO_AHEAD if added.value_or(True) else _HELD


_GO_AHEAD: Final = FillClaim(locked=True)
_HELD: Final = FillClaim()


def _lock(key: str) -> str:
    """The name of the fill lock of ``key``."""
    return key + ":fill"
