"""``FallbackLLM``: one ``LLMPort`` over an ordered list of models or providers.

A call goes to the first member; a retryable failure moves it to the next, and after
the last member it starts again from the first, backing off as the retry policy says,
until the shared attempt budget or the call's deadline is spent. A stream moves on only
while it has yielded nothing: once text reached the caller, a failure ends it (a
replay would repeat text the caller already showed).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeVar

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.resilience._retry import RetryPolicy
from portside.domain._errors import ServiceError, TimedOut
from portside.domain._llm import ChatDelta, ChatRequest, Completion, Embeddings, LLMIdentity
from portside.ports._clock import Clock
from portside.ports._llm import LLMPort
from portside.ports.llm_rules import validate_chat

__all__ = ["FallbackLLM"]

T = TypeVar("T")

_SERVICE: Final = "fallback"


def _as_tuple(members: Sequence[LLMPort]) -> tuple[LLMPort, ...]:
    # A tuple: the chain's order is fixed once it is built.
    return tuple(members)


def _no_backoff() -> RetryPolicy:
    return RetryPolicy(attempts=1, base=0.5, cap=8.0, jitter=1.0)


@attrs.define
class FallbackLLM(LLMPort):
    """Tries ``members`` in order on retryable failures, within one budget and deadline.

    ``attempts`` is the number of member calls a request may cost in all (default: one
    per member); ``deadline`` (seconds, or ``ChatRequest.deadline``) bounds the whole
    call, and each member gets what is left of it as its request's ``deadline``.
    Members should have their own retries off: this decorator is the call path's retry
    owner. ``retry`` sets the backoff before a pass over the members starts again
    (``Retry-After`` honoured); moving to the next member waits nothing.

    Non-retryable failures (``InvalidRequest``, ``Unauthorized``, ``QuotaExceeded``,
    ``ContentFiltered``, ``NotFound``) are returned at once: the next member would
    refuse the same request, or the caller must know. The request is sent to each
    member as it is: leave ``model=None`` so each answers with its own default model;
    ``Completion.model`` says which one served.

    ``embed`` uses the first member only unless ``embed_fallback`` is set: vectors of
    two embedding models are not comparable, and mixing them silently corrupts an
    index. The same deadline and budget rules apply when it is set.

    ``identity`` names every member (provider, endpoint and model), so a cache in front
    of the chain keys answers by the model asked for and never mixes them with the
    first member's own answers; each cached answer keeps the model that served it.
    """

    members: Sequence[LLMPort] = attrs.field(converter=_as_tuple)
    attempts: int | None = None
    deadline: float = 120.0
    retry: RetryPolicy = attrs.field(factory=_no_backoff)
    clock: Clock = attrs.field(factory=SystemClock)
    embed_fallback: bool = False
    _rng: Callable[[], float] = attrs.field(default=random.random, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.members:
            raise ValueError("a fallback chain needs at least one member")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 < self.deadline <= 86_400:
            raise ValueError("deadline must be in (0, 86400] seconds")

    @property
    def budget(self) -> int:
        """Member calls one request may cost: ``attempts``, else one per member."""
        return self.attempts if self.attempts is not None else len(self.members)

    @property
    def identity(self) -> LLMIdentity:
        """``LLMIdentity("fallback", <every member's endpoint and model>, <first model>)``."""
        names = "|".join(
            f"{m.identity.provider}:{m.identity.base_url}#{m.identity.model}" for m in self.members
        )
        return LLMIdentity("fallback", names, self.members[0].identity.model)

    def close(self) -> None:
        """Close every member."""
        for member in self.members:
            member.close()

    # --- the chain ------------------------------------------------------------------

    def _pause(self, attempt: int, error: ServiceError, ends: float) -> bool:
        """Wait before attempt ``attempt + 1`` if it starts a new pass; False: give up."""
        if attempt % len(self.members):
            return self.clock.monotonic() < ends  # the next member: no wait
        wait = self.retry.delay(max(1, attempt // len(self.members)), error, self._rng())
        if wait is None or self.clock.monotonic() + wait >= ends:
            return False
        self.clock.sleep(wait)
        return True

    def _chain(
        self, call: Callable[[LLMPort, float], Result[T, ServiceError]], ends: float
    ) -> Result[T, ServiceError]:
        attempt = 0
        while True:
            left = ends - self.clock.monotonic()
            if left <= 0:
                return Failure(_expired())
            result = call(self.members[attempt % len(self.members)], left)
            attempt += 1
            if isinstance(result, Success):
                return result
            error = result.failure()
            if (
                not error.retryable
                or attempt >= self.budget
                or not self._pause(attempt, error, ends)
            ):
                return result

    def _ends(self, request: ChatRequest | None) -> float:
        own = request.deadline if request is not None and request.deadline else self.deadline
        return self.clock.monotonic() + own

    # --- the port -------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The first member's answer that succeeds; errors as the members return them."""
        invalid = validate_chat(request, service=_SERVICE, operation="complete")
        if invalid is not None:
            return Failure(invalid)
        ends = self._ends(request)
        return self._chain(lambda m, left: m.complete(_within(request, left)), ends)

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """The first member's stream that starts; never a second one after text flowed."""
        invalid = validate_chat(request, service=_SERVICE, operation="stream")
        if invalid is not None:
            yield Failure(invalid)
            return
        ends = self._ends(request)
        attempt = 0
        while True:
            left = ends - self.clock.monotonic()
            if left <= 0:
                yield Failure(_expired())
                return
            member = self.members[attempt % len(self.members)]
            attempt += 1
            started = False
            error: ServiceError | None = None
            events = member.stream(_within(request, left))
            try:
                for event in events:
                    if isinstance(event, Success):
                        started = True
                        yield event
                    else:
                        error = event.failure()
                        break
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
            if error is None:
                return
            if (
                started
                or not error.retryable
                or attempt >= self.budget
                or not self._pause(attempt, error, ends)
            ):
                yield Failure(error)
                return

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """The first member's vectors (or, with ``embed_fallback``, the first that answers)."""
        if not self.embed_fallback:
            return self.members[0].embed(texts, model=model, dimensions=dimensions)
        ends = self._ends(None)
        return self._chain(lambda m, _: m.embed(texts, model=model, dimensions=dimensions), ends)


def _within(request: ChatRequest, left: float) -> ChatRequest:
    """``request`` with what is left of the chain's deadline as its own."""
    if request.deadline is not None and request.deadline <= left:
        return request
    return attrs.evolve(request, deadline=left)


def _expired() -> TimedOut:
    return TimedOut(
        service=_SERVICE, operation="call", message="the fallback chain passed its deadline"
    )
