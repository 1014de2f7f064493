"""``RateLimitedLLM``: any ``LLMPort`` behind a shared client-side rate limiter."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Final, Literal

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.llm_gateway._limits import RateLimiter
from portside.domain._errors import RateLimited, ServiceError
from portside.domain._llm import ChatDelta, ChatRequest, Completion, Embeddings, LLMIdentity
from portside.ports._clock import Clock
from portside.ports._llm import LLMPort
from portside.ports.llm_rules import validate_chat, validate_embed

__all__ = ["RateLimitedLLM", "estimate_tokens"]

_SERVICE: Final = "ratelimit"

#: The limiter key of embeddings calls made with ``model=None``.
EMBEDDINGS_KEY: Final = "embeddings"


def estimate_tokens(request: ChatRequest) -> int:
    """A request's tokens before sending: about four characters a token, plus max_tokens."""
    chars = sum(len(m.content or "") for m in request.messages)
    return chars // 4 + 1 + (request.max_tokens or 0)


@attrs.define
class RateLimitedLLM(LLMPort):
    """Admits each call through ``limiter`` before ``llm`` sees it.

    The limiter key is the model asked for (``ChatRequest.model``, else ``llm``'s
    default; for ``embed`` its ``model``, else ``"embeddings"``). A call the limiter
    does not admit waits on ``clock`` (``policy="wait"``) as long as ``max_wait`` and
    the request's ``deadline`` allow, or fails at once (``policy="fail"``): either way
    an over-limit call is ``Failure(RateLimited(retry_after=...))`` before anything is
    sent. Answers are counted by their usage (``settle``). A ``RateLimited`` answer
    with ``retry_after`` (a 429) pauses the model in the limiter, so every caller
    sharing it waits, not only the one that met the 429.
    """

    llm: LLMPort
    limiter: RateLimiter
    policy: Literal["wait", "fail"] = "wait"
    max_wait: float = 30.0
    clock: Clock = attrs.field(factory=SystemClock)
    estimate: Callable[[ChatRequest], int] = estimate_tokens

    @property
    def identity(self) -> LLMIdentity:
        """The wrapped adapter's identity: limiting never changes an answer."""
        return self.llm.identity

    def close(self) -> None:
        """Close the wrapped adapter."""
        self.llm.close()

    def _admit(
        self, model: str, tokens: int, deadline: float | None, op: str
    ) -> RateLimited | None:
        waited = 0.0
        bound = self.max_wait if deadline is None else min(self.max_wait, deadline)
        while True:
            wait = self.limiter.admit(model, tokens)
            if wait <= 0:
                return None
            if self.policy == "fail" or waited + wait > bound:
                return RateLimited(
                    service=_SERVICE,
                    operation=op,
                    message=f"client-side rate limit of {model[:64]!r} reached",
                    retry_after=wait,
                )
            self.clock.sleep(wait)
            waited += wait

    def _learn(self, model: str, error: ServiceError) -> None:
        if isinstance(error, RateLimited) and error.retry_after:
            self.limiter.pause(model, error.retry_after)

    def _model(self, request: ChatRequest) -> str:
        return request.model if isinstance(request.model, str) else self.llm.identity.model

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """``llm``'s answer once admitted; ``RateLimited`` when not admitted in time."""
        invalid = validate_chat(request, service=_SERVICE, operation="complete")
        if invalid is not None:
            return Failure(invalid)
        model = self._model(request)
        refused = self._admit(model, self.estimate(request), request.deadline, "complete")
        if refused is not None:
            return Failure(refused)
        result = self.llm.complete(request)
        match result:
            case Success(completion):
                self.limiter.settle(model, completion.usage.total_tokens)
            case Failure(error):
                self._learn(model, error)
        return result

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """``llm``'s stream once admitted; the final delta's usage is counted."""
        invalid = validate_chat(request, service=_SERVICE, operation="stream")
        if invalid is not None:
            yield Failure(invalid)
            return
        model = self._model(request)
        refused = self._admit(model, self.estimate(request), request.deadline, "stream")
        if refused is not None:
            yield Failure(refused)
            return
        for event in self.llm.stream(request):
            match event:
                case Success(delta) if delta.usage is not None:
                    self.limiter.settle(model, delta.usage.total_tokens)
                case Failure(error):
                    self._learn(model, error)
            yield event

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """``llm``'s vectors once admitted; usage counted as for chat."""
        invalid = validate_embed(texts, model, dimensions, service=_SERVICE)
        if invalid is not None:
            return Failure(invalid)
        key = model or EMBEDDINGS_KEY
        refused = self._admit(key, sum(len(t) for t in texts) // 4 + 1, None, "embed")
        if refused is not None:
            return Failure(refused)
        result = self.llm.embed(texts, model=model, dimensions=dimensions)
        match result:
            case Success(embeddings):
                self.limiter.settle(key, embeddings.usage.total_tokens)
            case Failure(error):
                self._learn(key, error)
        return result
