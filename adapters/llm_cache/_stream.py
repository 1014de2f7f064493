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
from typing import Any, Final

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.llm_cache._entry import STORABLE_FINISHES, ChatEntry, assemble, replay
from portside.adapters.llm_cache._policy import CachePolicy
from portside.adapters.llm_cache._store import EntryStore, Fill, StoreCore
from portside.adapters.resilience._singleflight import ABORTED, Aborted, SingleFlight
from portside.domain._errors import ProtocolError, ServiceError
from portside.domain._llm import CacheInfo, ChatDelta, ChatRequest, Completion
from portside.ports._llm import LLMPort

__all__ = [
    "Outcome",
    "Recording",
    "followed",
    "replayed",
    "stream_through_cache",
    "stream_upstream",
]

#: What a leader hands its followers: the recorded deltas or the failure.
Outcome = list[ChatDelta] | ServiceError
_MISS: Final = CacheInfo(hit=False)
_Stream = Iterator[Result[ChatDelta, ServiceError]]
_Events = list[Result[ChatDelta, ServiceError]]


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
                yield from replayed(entry, store)
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
        shared = followed(flight.wait(store.lock_ttl), store)
        if shared is not None:
            yield from shared
            return
        # The leader's consumer stopped early (or it took too long): try again.


def _lead(
    llm: LLMPort, store: EntryStore, request: ChatRequest, key: str, policy: CachePolicy
) -> Generator[Result[ChatDelta, ServiceError], None, Outcome]:
    # Read again (with the fill lock in the same step) inside the flight: the previous
    # leader, or another process, may have stored it meanwhile.
    fill, entry = store.take(key, read=policy.read, with_deltas=True)
    if entry is not None:
        yield from replayed(entry, store)
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
    recording = Recording(store, fill, policy, llm.identity.provider)
    upstream = llm.stream(request)
    try:
        for item in upstream:
            event, entry, outcome = recording.feed(item)
            if entry is not None and fill is not None:
                # Stored before the final delta is handed over, so a consumer that
                # stops right after it still leaves a complete entry behind.
                store.write(fill, entry, policy.ttl)
            yield event
            if outcome is not None:
                return outcome
        error = recording.cut()
        yield Failure(error)
        return error
    finally:
        close = getattr(upstream, "close", None)
        if close is not None:
            close()


def followed(outcome: Outcome | Aborted, store: StoreCore[Any]) -> _Events | None:
    """What a follower yields for its leader's ``outcome``; ``None``: try again itself."""
    if isinstance(outcome, ServiceError):
        return [Failure(outcome)]
    if isinstance(outcome, list):
        done = assemble(outcome) or Completion(text="")
        store.metrics.cache_hit(done.usage)
        info = CacheInfo(hit=True, age=0.0, saved=done.usage)
        return [Success(d) for d in replay(ChatEntry(done, 0.0, tuple(outcome)), info)]
    return None


def replayed(entry: ChatEntry, store: StoreCore[Any]) -> _Events:
    """The events of a hit on ``entry``: its deltas, the last carrying the counted hit."""
    return [Success(delta) for delta in replay(entry, store.hit(entry))]


class Recording:
    """One upstream stream as it is recorded: what to yield, store and hand followers.

    The decisions of ``stream_upstream`` and its async twin, with no I/O: each upstream
    item goes in, and out come the event to yield, the entry to store first (after a
    clean, storable finish when a fill is held and the policy writes) and, once the
    stream is over, its outcome.
    """

    __slots__ = ("_fill", "_policy", "_provider", "_recorded", "_store", "outcome")

    def __init__(
        self, store: StoreCore[Any], fill: Fill | None, policy: CachePolicy, provider: str
    ) -> None:
        self._store = store
        self._fill = fill
        self._policy = policy
        self._provider = provider
        self._recorded: list[ChatDelta] = []
        #: How the stream ended, once it has: the recording or the failure.
        self.outcome: Outcome | None = None

    def feed(
        self, item: Result[ChatDelta, ServiceError]
    ) -> tuple[Result[ChatDelta, ServiceError], ChatEntry | None, Outcome | None]:
        """``(event, entry to store or None, outcome or None while the stream goes on)``."""
        if isinstance(item, Failure):
            failure: ServiceError = item.failure()
            self.outcome = failure
            return item, None, failure
        delta = item.unwrap()
        self._recorded.append(delta)
        if delta.finish_reason is None:
            return item, None, None
        entry = None
        if self._fill is not None and self._policy.write:
            done = assemble(self._recorded)
            if done is not None and done.finish_reason in STORABLE_FINISHES:
                entry = ChatEntry(done, self._store.clock.now(), tuple(self._recorded))
        self.outcome = self._recorded
        return Success(attrs.evolve(delta, cache=_MISS)), entry, self._recorded

    def cut(self) -> ServiceError:
        """The error of a stream that ended without a finish reason."""
        error = ProtocolError(
            service=self._provider,
            operation="stream",
            message="stream ended without a finish reason",
        )
        self.outcome = error
        return error
