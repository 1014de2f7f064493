"""What ``CachingLLM`` and ``AsyncCachingLLM`` share: settings, policy, keys and decisions.

The two differ only in awaiting the wrapped LLM and the cache; everything decided
between those calls (the policy in force, whether and how a request is keyed, what a
shared answer says, what may be stored) is here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, Generic, Protocol, TypeVar

import attrs
from returns.result import Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.codec import Codec, default_codec
from portside.adapters.llm_cache._entry import STORABLE_FINISHES, ChatEntry
from portside.adapters.llm_cache._key import canonical_request, chat_key
from portside.adapters.llm_cache._policy import CachePolicy
from portside.adapters.observability import Metrics, default_metrics, watch_breaker
from portside.adapters.resilience._breaker import CircuitBreaker
from portside.domain._errors import InvalidRequest, ServiceError
from portside.domain._llm import CacheInfo, ChatRequest, Completion, LLMIdentity
from portside.ports._clock import Clock
from portside.ports.llm_rules import validate_chat, validate_embed

__all__ = ["MISS", "CachingCore", "with_info"]

#: The ``CacheInfo`` of an answer that came from upstream.
MISS: Final = CacheInfo(hit=False)
_NO_LIMIT: Final = 2**62
_log: Final = logging.getLogger("portside.llm_cache")


class _Identified(Protocol):
    @property
    def identity(self) -> LLMIdentity: ...


L = TypeVar("L", bound=_Identified)
C = TypeVar("C")


class _Unset:
    """Marks an ``options()`` argument the caller did not pass (``None`` is a TTL)."""


_UNSET: Final = _Unset()


@attrs.define
class CachingCore(Generic[L, C]):
    """Settings and sans-I/O behaviour of the LLM response caches (see ``CachingLLM``)."""

    llm: L
    cache: C
    clock: Clock = attrs.field(factory=SystemClock)
    policy: CachePolicy = attrs.field(factory=CachePolicy)
    breaker: CircuitBreaker | None = None
    metrics: Metrics | None = None
    lock_ttl: float = 30.0
    codec: Codec = default_codec
    _override: ContextVar[CachePolicy | None] = attrs.field(init=False, repr=False)

    def _watched(self) -> tuple[CircuitBreaker, Metrics]:
        """The breaker and metrics the store uses, the breaker's changes reported."""
        self._override = ContextVar(f"portside_llm_cache_{id(self)}", default=None)
        metrics = self.metrics or default_metrics()
        breaker = self.breaker or CircuitBreaker(self.clock, name="llm_cache")
        watch_breaker(breaker, metrics=metrics, logger=_log)
        return breaker, metrics

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

    def _embed_problem(
        self, texts: Sequence[str], model: str | None, dimensions: int | None
    ) -> InvalidRequest | None:
        # Length limits are the wrapped adapter's to enforce; the shape is checked here
        # because a bare str would be keyed character by character.
        return validate_embed(
            texts, model, dimensions, service=self.llm.identity.provider, max_text_chars=_NO_LIMIT
        )

    # --- decisions --------------------------------------------------------------------

    def _to_store(self, done: Completion, policy: CachePolicy) -> ChatEntry | None:
        """The entry to store for an upstream answer, or ``None`` when it may not be."""
        if policy.write and done.finish_reason in STORABLE_FINISHES:
            return ChatEntry(attrs.evolve(done, cache=None), self.clock.now())
        return None

    @staticmethod
    def _shared(
        result: Result[Completion, ServiceError], shared: bool, metrics: Metrics
    ) -> Result[Completion, ServiceError]:
        """A flight's result as this caller sees it: another caller's answer is a hit."""
        if shared and isinstance(result, Success):
            done = result.unwrap()
            if done.cache is None or not done.cache.hit:
                metrics.cache_hit(done.usage)
                shared_hit = CacheInfo(hit=True, age=0.0, saved=done.usage)
                return Success(attrs.evolve(done, cache=shared_hit))
        return result


def with_info(
    result: Result[Completion, ServiceError], info: CacheInfo
) -> Result[Completion, ServiceError]:
    """``result`` with ``info`` as its answer's ``CacheInfo``."""
    return result.map(lambda done: attrs.evolve(done, cache=info))
