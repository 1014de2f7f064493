"""Streams through the LLM cache: replay on a hit, record and store on a miss, coalesce.

- A hit replays the stored deltas one for one (tool-call fragments and the final usage
  delta included), the last carrying the ``CacheInfo``.
- A miss is recorded while it is yielded and stored only after a clean finish (before
  the final delta is handed over, so a consumer that stops right after it still leaves
  a complete entry). Failures, truncations, filtered answers, streams that end without
  a finish reason and streams the consumer abandons are never stored.
- Concurrent identical streams in one process share one upstream stream: the first
  caller leads a ``SingleFlight``, the others wait on it and replay its recording; if the
  leader's consumer stopped early they try again on their own. Across processes the
  leader takes the store's fill lock (``EntryStore.take``).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Final

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.llm_cache._entry import STORABLE_FINISHES, ChatEntry, assemble, replay
from portside.adapters.llm_cache._policy import CachePolicy
from portside.adapters.llm_cache._store import EntryStore, Fill
from portside.adapters.resilience._singleflight import ABORTED, Aborted, SingleFlight
from portside.domain._errors import ProtocolError, ServiceError
from portside.domain._llm import CacheInfo, ChatDelta, ChatRequest, Completion
from portside.ports._llm import LLMPort

__all__ = ["Outcome", "stream_through_cache", "stream_upstream"]

#: What a leader hands its followers: the recorded deltas or the failure.
Outcome = list[ChatDelta] | ServiceError
_MISS: Final = CacheInfo(hit=False)
_Stream = Iterator[Result[ChatDelta, ServiceError]]


def stream_through_cache(
    llm: LLMPort,
    store: EntryStore,
    flights: SingleFlight[Outcome],
    request: ChatRequest,
    key: str,
    policy: CachePolicy,
) -> _Stream:
    """``llm.stream(request)`` answered from, recorded into and coalesced on ``key``."""
    counted = False
    while True:
        if policy.read:
            entry = store.read(key, with_deltas=True)
            if entry is not None:
                yield from map(Success, replay(entry, store.hit(entry)))
                return
        if not counted:
            store.metrics.cache_miss()
            counted = True
        flight_key = f"{key}|{policy.write}"
        flight, leader = flights.join(flight_key)
        if leader:
            landed: Outcome | Aborted = ABORTED
            try:
                landed = yield from _lead(llm, store, request, key, policy)
            finally:
                flights.land(flight_key, flight, landed)
            return
        outcome = flight.wait(store.lock_ttl)
        if isinstance(outcome, ServiceError):
            yield Failure(outcome)
            return
        if isinstance(outcome, list):
            done = assemble(outcome) or Completion(text="")
            store.metrics.cache_hit(done.usage)
            info = CacheInfo(hit=True, age=0.0, saved=done.usage)
            yield from map(Success, replay(ChatEntry(done, 0.0, tuple(outcome)), info))
            return
        # The leader's consumer stopped early (or it took too long): try again.


def _lead(
    llm: LLMPort, store: EntryStore, request: ChatRequest, key: str, policy: CachePolicy
) -> Generator[Result[ChatDelta, ServiceError], None, Outcome]:
    # Read again (with the fill lock in the same step) inside the flight: the previous
    # leader, or another process, may have stored it meanwhile.
    fill, entry = store.take(key, read=policy.read, with_deltas=True)
    if entry is not None:
        yield from map(Success, replay(entry, store.hit(entry)))
        return replay(entry, _MISS)
    try:
        return (yield from stream_upstream(llm, request, store, fill, policy))
    finally:
        store.release(fill)


def stream_upstream(
    llm: LLMPort,
    request: ChatRequest,
    store: EntryStore,
    fill: Fill | None,
    policy: CachePolicy,
) -> Generator[Result[ChatDelta, ServiceError], None, Outcome]:
    """Stream from the LLM, recording deltas; store them through ``fill`` after a clean finish.

    With ``fill=None`` nothing is stored (the request is not cacheable). Returns the
    recording, or the failure that ended the stream (``ProtocolError`` when the stream
    ends without a finish reason).
    """
    recorded: list[ChatDelta] = []
    upstream = llm.stream(request)
    try:
        for item in upstream:
            if isinstance(item, Failure):
                yield item
                failure: ServiceError = item.failure()
                return failure
            delta = item.unwrap()
            recorded.append(delta)
            if delta.finish_reason is None:
                yield item
                continue
            done = assemble(recorded) if fill is not None and policy.write else None
            if fill is not None and done is not None and done.finish_reason in STORABLE_FINISHES:
                # Stored before the final delta is handed over, so a consumer that
                # stops right after it still leaves a complete entry behind.
                entry = ChatEntry(done, store.clock.now(), tuple(recorded))
                store.write(fill, entry, policy.ttl)
            yield Success(attrs.evolve(delta, cache=_MISS))
            return recorded
        error = ProtocolError(
            service=llm.identity.provider,
            operation="stream",
            message="stream ended without a finish reason",
        )
        yield Failure(error)
        return error
    finally:
        close = getattr(upstream, "close", None)
        if close is not None:
            close()
