"""``CachingLLM``: an exact-match answer cache in front of any ``LLMPort``, over any ``CachePort``.

- Keys are sha256 of a canonical, versioned encoding of every output-affecting request
  field plus the adapter identity (see ``explain_key``); timeouts and metadata never
  enter them, and two endpoints never share an entry.
- Requests that are not deterministic (``n > 1``, or a temperature other than 0 —
  ``None`` means the provider's default, which is not 0 — without a seed) are not
  cached unless the policy opts in. Errors, ``length`` and ``content_filter`` finishes
  and aborted streams are never stored.
- Per-call control without touching ``ChatRequest``: ``with llm.options(read=False):``
  (a ``CachePolicy`` held in a context variable, so it is per thread and per task).
- Concurrent identical misses share one upstream call: in-process through
  ``SingleFlight`` (streams through a leader/follower rendezvous), across processes
  through a short lock key taken with ``CachePort.add``. A failure is handed to every
  waiter and frees the slot; nothing is stored.
- A cache that fails never breaks the LLM path: cache errors are misses and skipped
  writes, and a circuit breaker stops calling a cache that keeps failing.
- Every answer carries ``CacheInfo``: hit or not, the entry's age, the usage it saved.

Every call validates its request and computes its key afresh (a few microseconds in
front of a cache round trip or a model call); a ``complete`` hit decodes the entry
without its stream deltas, and nothing is logged unless a cache call fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.codec import Codec, default_codec
from portside.adapters.llm_cache._embed import embed_through_cache
from portside.adapters.llm_cache._entry import STORABLE_FINISHES, ChatEntry
from portside.adapters.llm_cache._key import canonical_request, chat_key
from portside.adapters.llm_cache._policy import DEFAULT_TTL, CachePolicy, is_deterministic
from portside.adapters.llm_cache._store import EntryStore
from portside.adapters.llm_cache._stream import Outcome, stream_through_cache, stream_upstream
from portside.adapters.observability import Metrics, default_metrics, watch_breaker
from portside.adapters.resilience._breaker import CircuitBreaker
from portside.adapters.resilience._singleflight import SingleFlight
from portside.domain._errors import InvalidRequest, ServiceError
from portside.domain._llm import (
    CacheInfo,
    ChatDelta,
    ChatRequest,
    Completion,
    Embeddings,
    LLMIdentity,
)
from portside.ports._cache import CachePort
from portside.ports._clock import Clock
from portside.ports._llm import LLMPort
from portside.ports.llm_rules import validate_chat, validate_embed

__all__ = ["DEFAULT_TTL", "CachePolicy", "CachingLLM", "is_deterministic"]

_MISS: Final = CacheInfo(hit=False)
_NO_LIMIT: Final = 2**62
_log: Final = logging.getLogger("portside.llm_cache")


class _Unset:
    """Marks an ``options()`` argument the caller did not pass (``None`` is a TTL)."""


_UNSET: Final = _Unset()


@attrs.define
class CachingLLM(LLMPort):
    """An ``LLMPort`` that answers repeated requests from a ``CachePort``.

    Errors are those of the wrapped LLM (``InvalidRequest`` for bad input before any
    lookup); cache failures never surface. ``close()`` closes the wrapped LLM only:
    the cache may be shared and belongs to whoever built it.
    """

    llm: LLMPort
    cache: CachePort
    clock: Clock = attrs.field(factory=SystemClock)
    policy: CachePolicy = attrs.field(factory=CachePolicy)
    breaker: CircuitBreaker | None = None
    metrics: Metrics | None = None
    lock_ttl: float = 30.0
    codec: Codec = default_codec
    _single: SingleFlight[Result[Completion, ServiceError]] = attrs.field(
        factory=SingleFlight, init=False, repr=False
    )
    _streams: SingleFlight[Outcome] = attrs.field(factory=SingleFlight, init=False, repr=False)
    _override: ContextVar[CachePolicy | None] = attrs.field(init=False, repr=False)
    _store: EntryStore = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._override = ContextVar(f"portside_llm_cache_{id(self)}", default=None)
        metrics = self.metrics or default_metrics()
        breaker = self.breaker or CircuitBreaker(self.clock, name="llm_cache")
        watch_breaker(breaker, metrics=metrics, logger=_log)
        self._store = EntryStore(
            self.cache, self.clock, breaker, metrics, self.codec, self.lock_ttl
        )

    # --- policy -----------------------------------------------------------------------

    @property
    def current_policy(self) -> CachePolicy:
        """The policy for calls made now: the innermost ``options()`` or the default."""
        return self._override.get() or self.policy

    @contextmanager
    def options(
        self,
        *,
        read: bool | None = None,
        write: bool | None = None,
        ttl: float | _Unset | None = _UNSET,
        cache_nondeterministic: bool | None = None,
    ) -> Iterator[CachePolicy]:
        """Within the block (this thread or task only), calls use the changed policy.

        ``options(read=False, write=False)`` skips the cache; ``options(write=False)``
        reads without storing; ``options(ttl=60)`` stores for a minute. Raises
        ``ValueError`` for a ``ttl`` that is not positive.
        """
        base = self.current_policy
        changes: dict[str, Any] = {}
        if read is not None:
            changes["read"] = read
        if write is not None:
            changes["write"] = write
        if not isinstance(ttl, _Unset):
            changes["ttl"] = ttl
        if cache_nondeterministic is not None:
            changes["cache_nondeterministic"] = cache_nondeterministic
        policy = attrs.evolve(base, **changes)
        token = self._override.set(policy)
        try:
            yield policy
        finally:
            self._override.reset(token)

    # --- keys -------------------------------------------------------------------------

    @property
    def identity(self) -> LLMIdentity:
        """The wrapped LLM's identity (part of every key)."""
        return self.llm.identity

    def explain_key(self, request: ChatRequest) -> dict[str, Any]:
        """Every field that went into ``request``'s key, as plain JSON data.

        Raises ``TypeError`` when a schema holds something that is not JSON data.
        """
        return canonical_request(self.llm.identity, request)

    def key_for(self, request: ChatRequest) -> str:
        """The cache key of ``request`` (whether or not it would be cached).

        Raises ``TypeError`` when a schema holds something that is not JSON data.
        """
        return chat_key(self.llm.identity, request)

    def _checked_key(
        self, request: ChatRequest, policy: CachePolicy, operation: str
    ) -> tuple[str | None, InvalidRequest | None]:
        """``request``'s key under ``policy`` (``None``: do not cache), or why it is invalid."""
        identity = self.llm.identity
        problem = validate_chat(request, service=identity.provider, operation=operation)
        if problem is not None:
            return None, problem
        if not policy.uses_cache_for(request):
            return None, None
        try:
            return chat_key(identity, request), None
        except (TypeError, ValueError) as exc:
            # A tool schema holding something JSON cannot encode: answer, do not cache.
            _log.warning("request cannot be keyed, not cached: %s", exc)
            return None, None

    # --- chat -------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The answer to ``request``, from the cache when an identical one was stored."""
        policy = self._override.get() or self.policy
        key, problem = self._checked_key(request, policy, "complete")
        if problem is not None:
            return Failure(problem)
        if key is None:
            return _with_info(self.llm.complete(request), _MISS)
        store = self._store
        if policy.read:
            hit = store.answer(key)
            if hit is not None:
                return Success(hit)
        store.metrics.cache_miss()
        result, shared = self._single.do(
            f"{key}|{policy.write}", lambda: self._fill(key, request, policy)
        )
        if shared and isinstance(result, Success):
            done = result.unwrap()
            if done.cache is None or not done.cache.hit:
                store.metrics.cache_hit(done.usage)
                shared_hit = CacheInfo(hit=True, age=0.0, saved=done.usage)
                return Success(attrs.evolve(done, cache=shared_hit))
        return result

    def _fill(
        self, key: str, request: ChatRequest, policy: CachePolicy
    ) -> Result[Completion, ServiceError]:
        store = self._store
        # Read again (with the fill lock in the same step) inside the flight: a caller
        # that missed just before the previous flight or another process stored its
        # answer must not call upstream a second time.
        fill, entry = store.take(key, read=policy.read, with_deltas=False)
        if entry is not None:
            return Success(attrs.evolve(entry.completion, cache=store.hit(entry)))
        try:
            result = self.llm.complete(request)
            if isinstance(result, Success):
                done = result.unwrap()
                if policy.write and done.finish_reason in STORABLE_FINISHES:
                    stored = ChatEntry(attrs.evolve(done, cache=None), self.clock.now())
                    store.write(fill, stored, policy.ttl)
            return _with_info(result, _MISS)
        finally:
            store.release(fill)

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """The answer as deltas; a hit replays the stored deltas one for one."""
        policy = self.current_policy
        key, problem = self._checked_key(request, policy, "stream")
        if problem is not None:
            yield Failure(problem)
            return
        if key is None:
            yield from stream_upstream(self.llm, request, self._store, None, policy)
            return
        yield from stream_through_cache(self.llm, self._store, self._streams, request, key, policy)

    # --- embeddings -------------------------------------------------------------------

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """One vector per text; cached per (model, dimensions, text), only misses go upstream."""
        # Length limits are the wrapped adapter's to enforce; the shape is checked here
        # because a bare str would be keyed character by character.
        problem = validate_embed(
            texts, model, dimensions, service=self.llm.identity.provider, max_text_chars=_NO_LIMIT
        )
        if problem is not None:
            return Failure(problem)
        store = self._store
        return embed_through_cache(
            self.llm,
            texts,
            model=model,
            dimensions=dimensions,
            policy=self.current_policy,
            cache=store.safe,
            clock=self.clock,
            metrics=store.metrics,
            codec=self.codec,
        )

    def close(self) -> None:
        """Close the wrapped LLM (not the cache, which may be shared)."""
        self.llm.close()


def _with_info(
    result: Result[Completion, ServiceError], info: CacheInfo
) -> Result[Completion, ServiceError]:
    return result.map(lambda done: attrs.evolve(done, cache=info))
