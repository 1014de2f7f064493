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

from collections.abc import Iterator, Sequence

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.llm_cache._core import MISS, CachingCore, with_info
from portside.adapters.llm_cache._embed import embed_through_cache
from portside.adapters.llm_cache._policy import DEFAULT_TTL, CachePolicy, is_deterministic
from portside.adapters.llm_cache._store import EntryStore
from portside.adapters.llm_cache._stream import Outcome, stream_through_cache, stream_upstream
from portside.adapters.resilience._singleflight import SingleFlight
from portside.domain._errors import ServiceError
from portside.domain._llm import ChatDelta, ChatRequest, Completion, Embeddings
from portside.ports._cache import CachePort
from portside.ports._llm import LLMPort

__all__ = ["DEFAULT_TTL", "CachePolicy", "CachingLLM", "is_deterministic"]


@attrs.define
class CachingLLM(CachingCore[LLMPort, CachePort], LLMPort):
    """An ``LLMPort`` that answers repeated requests from a ``CachePort``.

    ``CachingLLM(llm, cache, clock=, policy=, breaker=, metrics=, lock_ttl=30.0,
    codec=)``. Errors are those of the wrapped LLM (``InvalidRequest`` for bad input
    before any lookup); cache failures never surface. ``close()`` closes the wrapped
    LLM only: the cache may be shared and belongs to whoever built it.
    """

    _single: SingleFlight[Result[Completion, ServiceError]] = attrs.field(
        factory=SingleFlight, init=False, repr=False
    )
    _streams: SingleFlight[Outcome] = attrs.field(factory=SingleFlight, init=False, repr=False)
    _store: EntryStore = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        breaker, metrics = self._watched()
        self._store = EntryStore(
            self.cache, self.clock, breaker, metrics, self.codec, self.lock_ttl
        )

    # --- chat -------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The answer to ``request``, from the cache when an identical one was stored."""
        policy = self._override.get() or self.policy
        key, problem = self._checked_key(request, policy, "complete")
        if problem is not None:
            return Failure(problem)
        if key is None:
            return with_info(self.llm.complete(request), MISS)
        store = self._store
        if policy.read:
            hit = store.answer(key)
            if hit is not None:
                return Success(hit)
        store.metrics.cache_miss()
        result, shared = self._single.do(
            f"{key}|{policy.write}", lambda: self._fill(key, request, policy)
        )
        return self._shared(result, shared, store.metrics)

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
            stored = (
                self._to_store(result.unwrap(), policy) if isinstance(result, Success) else None
            )
            if stored is not None:
                store.write(fill, stored, policy.ttl)
            return with_info(result, MISS)
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
        problem = self._embed_problem(texts, model, dimensions)
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
