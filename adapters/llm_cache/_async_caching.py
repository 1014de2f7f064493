"""``AsyncCachingLLM``: ``CachingLLM`` for any ``AsyncLLMPort``, over any ``AsyncCachePort``.

The same keys, entries, policy, decisions and metrics as ``CachingLLM`` (``_core``,
``_key``, ``_entry``, ``_store``'s fill steps, ``_stream``'s ``Recording``, ``_embed``'s
steps); only the LLM and cache calls are awaited. Concurrent identical misses share one
upstream call across the tasks of an event loop (``AsyncSingleFlight``; a stream's
followers replay the leader's recording) and, through the cache's fill lock, across
processes. A task cancelled mid-call releases the fill lock it holds in a ``finally``
(or, if cancelled again there, leaves it to its TTL); the waiting tasks are not
cancelled with it and the next of them fills afresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.llm_cache._async_store import AsyncEntryStore
from portside.adapters.llm_cache._core import MISS, CachingCore, with_info
from portside.adapters.llm_cache._embed import aembed_through_cache
from portside.adapters.llm_cache._entry import replay
from portside.adapters.llm_cache._policy import CachePolicy
from portside.adapters.llm_cache._store import Fill
from portside.adapters.llm_cache._stream import Outcome, Recording, followed, replayed
from portside.adapters.resilience._singleflight import ABORTED, Aborted, AsyncSingleFlight
from portside.domain._errors import ServiceError
from portside.domain._llm import ChatDelta, ChatRequest, Completion, Embeddings
from portside.ports._cache import AsyncCachePort
from portside.ports._llm import AsyncLLMPort

__all__ = ["AsyncCachingLLM"]

_Events = AsyncGenerator[Result[ChatDelta, ServiceError], None]


@attrs.define
class AsyncCachingLLM(CachingCore[AsyncLLMPort, AsyncCachePort], AsyncLLMPort):
    """An ``AsyncLLMPort`` that answers repeated requests from an ``AsyncCachePort``.

    ``AsyncCachingLLM(llm, cache, ...)`` takes ``CachingLLM``'s arguments and behaves
    like it: ``options()``, ``key_for``, ``explain_key``, ``CacheInfo`` on every answer,
    errors of the wrapped LLM only, cache failures never surfacing. ``aclose()`` closes
    the wrapped LLM only (the cache may be shared).
    """

    _single: AsyncSingleFlight[Result[Completion, ServiceError]] = attrs.field(
        factory=AsyncSingleFlight, init=False, repr=False
    )
    _streams: AsyncSingleFlight[Outcome] = attrs.field(
        factory=AsyncSingleFlight, init=False, repr=False
    )
    _store: AsyncEntryStore = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        breaker, metrics = self._watched()
        self._store = AsyncEntryStore(
            self.cache, self.clock, breaker, metrics, self.codec, self.lock_ttl
        )

    # --- chat -------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The answer to ``request``, from the cache when an identical one was stored."""
        policy = self.current_policy
        key, problem = self._checked_key(request, policy, "complete")
        if problem is not None:
            return Failure(problem)
        if key is None:
            return with_info(await self.llm.complete(request), MISS)
        store = self._store
        if policy.read:
            hit = await store.answer(key)
            if hit is not None:
                return Success(hit)
        store.metrics.cache_miss()
        result, shared = await self._single.do(
            f"{key}|{policy.write}", lambda: self._fill(key, request, policy)
        )
        return self._shared(result, shared, store.metrics)

    async def _fill(
        self, key: str, request: ChatRequest, policy: CachePolicy
    ) -> Result[Completion, ServiceError]:
        store = self._store
        # Read again with the fill lock in the same step, as CachingLLM._fill does.
        fill, entry = await store.take(key, read=policy.read, with_deltas=False)
        if entry is not None:
            return Success(attrs.evolve(entry.completion, cache=store.hit(entry)))
        try:
            result = await self.llm.complete(request)
            stored = None
            if isinstance(result, Success):
                stored = self._to_store(result.unwrap(), policy)
            if stored is not None:
                await store.write(fill, stored, policy.ttl)
            return with_info(result, MISS)
        finally:
            await store.release(fill)

    async def stream(self, request: ChatRequest) -> _Events:
        """The answer as deltas; a hit replays the stored deltas one for one."""
        policy = self.current_policy
        key, problem = self._checked_key(request, policy, "stream")
        if problem is not None:
            yield Failure(problem)
            return
        store = self._store
        if key is None:
            async for event in self._upstream(request, None, policy):
                yield event
            return
        counted = False
        while True:
            if policy.read:
                entry = await store.read(key, with_deltas=True)
                if entry is not None:
                    for event in replayed(entry, store):
                        yield event
                    return
            if not counted:
                store.metrics.cache_miss()
                counted = True
            flight_key = f"{key}|{policy.write}"
            flight, leader = self._streams.join(flight_key)
            if leader:
                landed: Outcome | Aborted = ABORTED
                try:
                    async for led, outcome in self._lead(request, key, policy):
                        if led is not None:
                            yield led
                        landed = outcome if outcome is not None else landed
                finally:
                    self._streams.land(flight_key, flight, landed)
                return
            try:
                shared, _ = await asyncio.wait_for(asyncio.shield(flight), store.lock_ttl)
            except TimeoutError:
                shared = ABORTED
            events = followed(shared, store)
            if events is not None:
                for event in events:
                    yield event
                return
            # The leader's consumer stopped early (or it took too long): try again.

    async def _lead(
        self, request: ChatRequest, key: str, policy: CachePolicy
    ) -> AsyncGenerator[tuple[Result[ChatDelta, ServiceError] | None, Outcome | None], None]:
        """The leader's events, then ``(None, outcome)`` once the stream is over."""
        store = self._store
        fill, entry = await store.take(key, read=policy.read, with_deltas=True)
        if entry is not None:
            for event in replayed(entry, store):
                yield event, None
            yield None, replay(entry, MISS)
            return
        recording: list[Recording] = []
        try:
            async for event in self._upstream(request, fill, policy, recording):
                yield event, None
        finally:
            await store.release(fill)
        yield None, recording[0].outcome

    async def _upstream(
        self,
        request: ChatRequest,
        fill: Fill | None,
        policy: CachePolicy,
        holder: list[Recording] | None = None,
    ) -> _Events:
        """``stream_upstream`` awaited: record, store after a clean finish, yield."""
        recording = Recording(self._store, fill, policy, self.llm.identity.provider)
        if holder is not None:
            holder.append(recording)
        upstream = self.llm.stream(request)
        try:
            async for item in upstream:
                event, entry, outcome = recording.feed(item)
                if entry is not None and fill is not None:
                    # Stored before the final delta is handed over, as in CachingLLM.
                    await self._store.write(fill, entry, policy.ttl)
                yield event
                if outcome is not None:
                    return
            yield Failure(recording.cut())
        finally:
            await upstream.aclose()

    # --- embeddings -------------------------------------------------------------------

    async def embed(
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
        return await aembed_through_cache(
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

    async def aclose(self) -> None:
        """Close the wrapped LLM (not the cache, which may be shared)."""
        await self.llm.aclose()
