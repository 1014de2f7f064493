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
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, TypeVar

import attrs
from returns.result import Failure, Result, Success

from adapters._flights import ABORTED, Flights
from adapters._llm_cache_entry import STORABLE_FINISHES, ChatEntry, assemble, replay
from adapters._llm_cache_key import canonical_request, chat_key
from adapters._llm_embed_cache import embed_through_cache
from adapters._llm_rules import validate_chat, validate_embed
from adapters.codec import Codec, default_codec
from adapters.memory.clock import SystemClock
from adapters.observability import Metrics, default_metrics, watch_breaker
from adapters.resilience import CircuitBreaker, default_trips
from adapters.singleflight import SingleFlight
from domain.errors import ProtocolError, ServiceError
from domain.llm import CacheInfo, ChatDelta, ChatRequest, Completion, Embeddings, LLMIdentity
from ports.cache import CachePort
from ports.clock import Clock
from ports.llm import LLMPort

__all__ = ["DEFAULT_TTL", "CachePolicy", "CachingLLM"]

T = TypeVar("T")

#: How long an answer is kept unless the policy says otherwise: a day.
DEFAULT_TTL: Final = 86_400.0

_MISS: Final = CacheInfo(hit=False)
_NO_LIMIT: Final = 2**62
_Outcome = list[ChatDelta] | ServiceError
_log: Final = logging.getLogger("portside.llm_cache")


class _Unset:
    """Marks an ``options()`` argument the caller did not pass (``None`` is a TTL)."""


_UNSET: Final = _Unset()


@attrs.frozen
class CachePolicy:
    """How one call uses the cache.

    ``read=False`` skips lookups (the answer is fetched and, if ``write``, stored);
    ``write=False`` reads but never stores; both ``False`` bypasses the cache. ``ttl``
    is the lifetime of what is stored (``None``: no expiry). ``cache_nondeterministic``
    opts in to caching sampled requests, whose answers would otherwise differ per call.
    """

    read: bool = True
    write: bool = True
    ttl: float | None = DEFAULT_TTL
    cache_nondeterministic: bool = False

    def __attrs_post_init__(self) -> None:
        if self.ttl is not None and not self.ttl > 0:
            raise ValueError("ttl must be positive (None means no expiry)")


def is_deterministic(request: ChatRequest) -> bool:
    """Whether ``request`` should give one answer: one choice, temperature 0 or a seed."""
    return request.n == 1 and (request.seed is not None or request.temperature == 0)


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
    _streams: Flights[list[ChatDelta] | ServiceError] = attrs.field(
        factory=Flights, init=False, repr=False
    )
    _override: ContextVar[CachePolicy | None] = attrs.field(init=False, repr=False)
    _breaker: CircuitBreaker = attrs.field(init=False, repr=False)
    _metrics: Metrics = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._override = ContextVar(f"portside_llm_cache_{id(self)}", default=None)
        self._metrics = self.metrics or default_metrics()
        self._breaker = self.breaker or CircuitBreaker(self.clock, name="llm_cache")
        watch_breaker(self._breaker, metrics=self._metrics, logger=_log)

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
        reads without storing; ``options(ttl=60)`` stores for a minute.
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
        """Every field that went into ``request``'s key, as plain JSON data."""
        return canonical_request(self.llm.identity, request)

    def key_for(self, request: ChatRequest) -> str:
        """The cache key of ``request`` (whether or not it would be cached)."""
        return chat_key(canonical_request(self.llm.identity, request))

    def _usable_key(self, request: ChatRequest, policy: CachePolicy) -> str | None:
        if not (policy.read or policy.write):
            return None
        if not (policy.cache_nondeterministic or is_deterministic(request)):
            return None
        try:
            return self.key_for(request)
        except (TypeError, ValueError) as exc:
            # A tool schema holding something JSON cannot encode: answer, do not cache.
            _log.warning("request cannot be keyed, not cached: %s", exc)
            return None

    # --- cache access, failing open ---------------------------------------------------

    def _cache(self, operation: str, call: Callable[[], Result[T, ServiceError]]) -> T | None:
        """``call()``'s value, or ``None`` when the cache failed or the breaker is open."""
        if not self._breaker.allow():
            self._metrics.incr("cache.skipped")
            return None
        result = call()
        self._breaker.record(result, default_trips)
        if isinstance(result, Failure):
            self._metrics.incr("cache.errors")
            _log.warning(
                "cache %s failed; answering without the cache: %s",
                operation,
                result.failure(),
                extra={"service": "llm_cache", "operation": operation, "outcome": "error"},
            )
            return None
        return result.unwrap()

    def _read(self, key: str) -> ChatEntry | None:
        data = self._cache("get", lambda: self.cache.get(key))
        return None if data is None else ChatEntry.decode(data, self.codec)

    def _store(self, key: str, entry: ChatEntry, policy: CachePolicy) -> None:
        data = entry.encode(self.codec)
        if data is not None:
            self._cache("set", lambda: self.cache.set(key, data, policy.ttl))

    def _hit(self, entry: ChatEntry) -> CacheInfo:
        info = CacheInfo(
            hit=True,
            age=max(0.0, self.clock.now() - entry.stored_at),
            saved=entry.completion.usage,
        )
        self._metrics.cache_hit(info.saved)
        return info

    # --- cross-process lock -----------------------------------------------------------

    def _lock(self, key: str) -> bytes | None:
        """A token if this process now owns the fill of ``key``; ``None`` if another does."""
        token = uuid.uuid4().hex.encode()
        won = self._cache("add", lambda: self.cache.add(key + ":fill", token, self.lock_ttl))
        # A failing cache cannot coordinate: go ahead rather than wait on nothing.
        return token if won is not False else None

    def _unlock(self, key: str, token: bytes) -> None:
        compare_and_delete = getattr(self.cache, "delete_if_equal", None)
        if compare_and_delete is not None:
            self._cache("unlock", lambda: compare_and_delete(key + ":fill", token))
        # Without an atomic compare-and-delete the lock expires on its own: deleting
        # after a GET could remove a lock another process took in between.

    def _await_other(self, key: str) -> ChatEntry | None:
        """Poll for the entry another process is filling, until its lock would expire."""
        deadline = self.clock.monotonic() + self.lock_ttl
        pause = 0.02
        while self.clock.monotonic() < deadline:
            self.clock.sleep(pause)
            entry = self._read(key)
            if entry is not None:
                return entry
            held = self._cache("get", lambda: self.cache.get(key + ":fill"))
            if held is None:
                return None  # the other process gave up or failed: fill it ourselves
            pause = min(pause * 2, 0.5)
        return None

    # --- chat -------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The answer to ``request``, from the cache when an identical one was stored."""
        problem = validate_chat(request, service=self.llm.identity.provider, operation="complete")
        if problem is not None:
            return Failure(problem)
        policy = self.current_policy
        key = self._usable_key(request, policy)
        if key is None:
            return _with_info(self.llm.complete(request), _MISS)
        if policy.read:
            entry = self._read(key)
            if entry is not None:
                return Success(attrs.evolve(entry.completion, cache=self._hit(entry)))
        self._metrics.cache_miss()
        result, shared = self._single.do(
            f"{key}|{policy.write}", lambda: self._fill(key, request, policy)
        )
        if shared and isinstance(result, Success):
            done = result.unwrap()
            if done.cache is None or not done.cache.hit:
                self._metrics.cache_hit(done.usage)
                return Success(attrs.evolve(done, cache=CacheInfo(True, 0.0, done.usage)))
        return result

    def _fill(
        self, key: str, request: ChatRequest, policy: CachePolicy
    ) -> Result[Completion, ServiceError]:
        # Checked again inside the flight: a caller that missed just before the
        # previous flight stored its answer must not call upstream a second time.
        entry = self._read(key) if policy.read else None
        if entry is not None:
            return Success(attrs.evolve(entry.completion, cache=self._hit(entry)))
        token = self._lock(key)
        if token is None:
            entry = self._await_other(key)
            if entry is not None:
                return Success(attrs.evolve(entry.completion, cache=self._hit(entry)))
            token = self._lock(key)
        try:
            result = self.llm.complete(request)
            if isinstance(result, Success):
                done = result.unwrap()
                if policy.write and done.finish_reason in STORABLE_FINISHES:
                    self._store(key, ChatEntry(done, self.clock.now()), policy)
            return _with_info(result, _MISS)
        finally:
            if token is not None:
                self._unlock(key, token)

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """The answer as deltas; a hit replays the stored deltas one for one."""
        problem = validate_chat(request, service=self.llm.identity.provider, operation="stream")
        if problem is not None:
            yield Failure(problem)
            return
        policy = self.current_policy
        key = self._usable_key(request, policy)
        if key is None:
            yield from self._upstream(request, None, policy)
            return
        counted = False
        while True:
            if policy.read:
                entry = self._read(key)
                if entry is not None:
                    yield from map(Success, replay(entry, self._hit(entry)))
                    return
            if not counted:
                self._metrics.cache_miss()
                counted = True
            flight_key = f"{key}|{policy.write}"
            flight, leader = self._streams.join(flight_key)
            if leader:
                outcome: list[ChatDelta] | ServiceError | object = ABORTED
                try:
                    outcome = yield from self._lead(key, request, policy)
                finally:
                    self._streams.land(flight_key, flight, outcome)
                return
            outcome = flight.wait(self.lock_ttl)
            if isinstance(outcome, ServiceError):
                yield Failure(outcome)
                return
            if isinstance(outcome, list):
                done = assemble(outcome) or Completion("")
                self._metrics.cache_hit(done.usage)
                info = CacheInfo(hit=True, age=0.0, saved=done.usage)
                yield from map(Success, replay(ChatEntry(done, 0.0, tuple(outcome)), info))
                return
            # The leader's consumer stopped early (or it took too long): try again.

    def _lead(
        self, key: str, request: ChatRequest, policy: CachePolicy
    ) -> Generator[Result[ChatDelta, ServiceError], None, _Outcome]:
        entry = self._read(key) if policy.read else None
        if entry is not None:
            yield from map(Success, replay(entry, self._hit(entry)))
            return replay(entry, _MISS)
        token = self._lock(key)
        if token is None:
            entry = self._await_other(key)
            if entry is not None:
                yield from map(Success, replay(entry, self._hit(entry)))
                return replay(entry, _MISS)
            token = self._lock(key)
        try:
            return (yield from self._upstream(request, key, policy))
        finally:
            if token is not None:
                self._unlock(key, token)

    def _upstream(
        self, request: ChatRequest, key: str | None, policy: CachePolicy
    ) -> Generator[Result[ChatDelta, ServiceError], None, _Outcome]:
        """Stream from the LLM, recording deltas; store them after a clean finish."""
        recorded: list[ChatDelta] = []
        upstream = self.llm.stream(request)
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
                done = assemble(recorded)
                if (
                    key is not None
                    and done is not None
                    and policy.write
                    and done.finish_reason in STORABLE_FINISHES
                ):
                    # Stored before the final delta is handed over, so a consumer that
                    # stops right after it still leaves a complete entry behind.
                    self._store(key, ChatEntry(done, self.clock.now(), tuple(recorded)), policy)
                yield Success(attrs.evolve(delta, cache=_MISS))
                return recorded
            error = ProtocolError(
                service=self.llm.identity.provider,
                operation="stream",
                message="stream ended without a finish reason",
            )
            yield Failure(error)
            return error
        finally:
            close = getattr(upstream, "close", None)
            if close is not None:
                close()

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
        return embed_through_cache(
            self.llm,
            texts,
            model=model,
            dimensions=dimensions,
            policy=self.current_policy,
            fail_open=self._cache,
            cache=self.cache,
            clock=self.clock,
            metrics=self._metrics,
            codec=self.codec,
        )

    def close(self) -> None:
        """Close the wrapped LLM (not the cache, which may be shared)."""
        self.llm.close()


def _with_info(
    result: Result[Completion, ServiceError], info: CacheInfo
) -> Result[Completion, ServiceError]:
    return result.map(lambda done: attrs.evolve(done, cache=info))
