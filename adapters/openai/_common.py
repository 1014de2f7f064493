"""What ``OpenAILLM`` and ``AsyncOpenAILLM`` share: settings, checks, decisions, decoding.

Everything here is sans-I/O: building and checking the adapter, checking a call before
it goes out, the parameters sent, what is left of a call's deadline, turning a body or
a stream's events into values, mapping an exception to the taxonomy, and deciding
whether (and how long) to wait before another attempt. The two adapters add only the
SDK client and the calls that send and read, so they cannot drift apart.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import httpx2
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.observability import retry_logger
from portside.adapters.openai._config import (
    check_api_key,
    check_base_url,
    check_counts,
    check_seconds,
)
from portside.adapters.openai._convert import (
    ErrorEvent,
    Malformed,
    MaxTokensField,
    NotJSON,
    StreamState,
    chat_params,
    completion_from_body,
    moderations_from_body,
    vectors_from_body,
)
from portside.adapters.openai._deadline import Expired
from portside.adapters.openai._errors import (
    SDK_ERRORS,
    SERVICE,
    is_final,
    map_error,
    map_error_event,
    redact,
)
from portside.adapters.resilience._retry import RetryPolicy
from portside.domain._errors import (
    ContentFiltered,
    InvalidRequest,
    ProtocolError,
    ServiceError,
    TimedOut,
    Unavailable,
)
from portside.domain._llm import (
    ChatDelta,
    ChatRequest,
    Completion,
    Embeddings,
    LLMIdentity,
    Moderations,
    Usage,
)
from portside.ports._clock import Clock
from portside.ports.llm_rules import (
    MAX_EMBED_TEXT_CHARS,
    check_real_llm_allowed,
    validate_chat,
    validate_embed,
    validate_moderate,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DEADLINE",
    "STREAM_ERRORS",
    "EmbedParts",
    "OpenAICommon",
    "worth_retrying",
]

#: The public OpenAI endpoint, used when neither ``base_url`` nor ``OPENAI_BASE_URL`` is set.
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"

#: Seconds a whole call may take by default, retries and backoff included.
DEFAULT_DEADLINE: Final = 120.0

#: What reading one stream attempt can raise; ``OpenAICommon.stream_failure`` maps each.
STREAM_ERRORS: Final = (Expired, Malformed, ErrorEvent, *SDK_ERRORS)

log = logging.getLogger("portside.openai")


def _retry_policy() -> RetryPolicy:
    # 2 retries matches PORTSIDE_LLM_MAX_RETRIES' default; the SDK's own are off.
    return RetryPolicy(attempts=3, base=0.5, cap=8.0, jitter=1.0, max_retry_after=60.0)


def worth_retrying(error: ServiceError) -> bool:
    """Whether another attempt could answer differently (not a final error)."""
    return not is_final(error)


@attrs.define
class EmbedParts:
    """The batches of one embeddings call, joined in order."""

    model: str
    vectors: list[tuple[float, ...]] = attrs.field(factory=list)
    usage: Usage = attrs.field(factory=Usage)

    def add(self, part: tuple[list[tuple[float, ...]], str, Usage]) -> None:
        """Append one batch's vectors; its usage adds up, its model (if said) is kept."""
        vectors, model, usage = part
        self.vectors.extend(vectors)
        self.usage += usage
        self.model = model or self.model

    def done(self) -> Embeddings:
        """All the batches as one answer."""
        return Embeddings(tuple(self.vectors), self.model, self.usage)


@attrs.define
class OpenAICommon:
    """Settings and sans-I/O behaviour of the OpenAI adapters (see ``OpenAILLM``)."""

    api_key: str | None = attrs.field(default=None, repr=False)
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    embedding_model: str = "text-embedding-3-small"
    moderation_model: str = "omni-moderation-latest"
    timeout: float = 60.0
    connect_timeout: float = 5.0
    deadline: float = DEFAULT_DEADLINE
    max_redirects: int = 5
    retry: RetryPolicy = attrs.field(factory=_retry_policy)
    clock: Clock = attrs.field(factory=SystemClock)
    embed_batch_size: int = 2048
    max_embed_text_chars: int = MAX_EMBED_TEXT_CHARS
    max_tokens_field: MaxTokensField = "max_tokens"
    _rng: Callable[[], float] = attrs.field(default=random.random, init=False, repr=False)
    _closed: bool = attrs.field(default=False, init=False, repr=False)

    def _configure(self) -> str:
        """Check the settings, resolve the base URL and the key; the key to send.

        Raises ``ValueError`` for a configuration no request could use, and the
        real-LLM guard's ``RuntimeError`` for a non-loopback URL when it is on.
        """
        check_counts(self.embed_batch_size, self.max_redirects)
        check_seconds(self.timeout, self.connect_timeout, self.deadline)
        self.base_url = (
            self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        ).rstrip("/")
        check_base_url(self.base_url)
        check_real_llm_allowed(self.base_url)
        key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ValueError("no API key: pass api_key or set OPENAI_API_KEY")
        check_api_key(key)
        self.api_key = key
        return key

    def _client_options(self, key: str) -> dict[str, Any]:
        """How the SDK client is built (its HTTP client aside)."""
        return {
            "api_key": key,
            "base_url": self.base_url,
            "max_retries": 0,  # one retry owner: this adapter
            "timeout": httpx2.Timeout(self.timeout, connect=self.connect_timeout),
        }

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Pretty printers (IPython, hypothesis' failing examples) show the safe repr.

        Without this they list every attrs field, ``repr=False`` or not: the API key
        would be printed in a test's falsifying example.
        """
        printer.text(repr(self))

    @property
    def identity(self) -> LLMIdentity:
        """``LLMIdentity("openai", base_url, model)``."""
        return LLMIdentity("openai", self.base_url or DEFAULT_BASE_URL, self.model)

    # --- before sending --------------------------------------------------------------

    def _refusal(self, operation: str) -> ServiceError | None:
        """Why a call that passed validation may not go out: the adapter is closed."""
        # The guard raises on purpose (a programming error in a test suite).
        check_real_llm_allowed(self.base_url or DEFAULT_BASE_URL)
        if self._closed:
            return Unavailable(
                service=SERVICE, operation=operation, message="the adapter is closed"
            )
        return None

    def _chat_params(self, request: ChatRequest, operation: str) -> dict[str, Any] | ServiceError:
        """The parameters to send for ``request``, or why it may not be sent."""
        invalid = validate_chat(request, service=SERVICE, operation=operation)
        if invalid is not None:
            return invalid
        refused = self._refusal(operation)
        if refused is not None:
            return refused
        try:
            params = chat_params(
                request, default_model=self.model, max_tokens_field=self.max_tokens_field
            )
        except NotJSON as exc:
            return InvalidRequest(service=SERVICE, operation=operation, message=str(exc))
        if operation == "stream":
            params["stream"] = True
            params["stream_options"] = {"include_usage": True}
        return params

    def _embed_refusal(
        self, texts: Sequence[str], model: str | None, dimensions: int | None
    ) -> ServiceError | None:
        invalid = validate_embed(
            texts, model, dimensions, service=SERVICE, max_text_chars=self.max_embed_text_chars
        )
        return invalid if invalid is not None else self._refusal("embed")

    def _moderate_refusal(self, texts: Sequence[str], model: str | None) -> ServiceError | None:
        invalid = validate_moderate(
            texts, model, service=SERVICE, max_text_chars=self.max_embed_text_chars
        )
        return invalid if invalid is not None else self._refusal("moderate")

    def _batches(self, texts: Sequence[str]) -> list[list[str]]:
        size = self.embed_batch_size
        return [list(texts[start : start + size]) for start in range(0, len(texts), size)]

    @staticmethod
    def _embed_extra(dimensions: int | None) -> dict[str, Any]:
        # Floats, not base64: every compatible server speaks them.
        extra: dict[str, Any] = {"encoding_format": "float"}
        if dimensions is not None:
            extra["dimensions"] = dimensions
        return extra

    # --- deadlines -------------------------------------------------------------------

    def _ends(self, deadline: float | None) -> float:
        """When (on the clock) a call started now must be over."""
        return self.clock.monotonic() + (deadline if deadline is not None else self.deadline)

    def _expired(self, operation: str) -> TimedOut:
        return TimedOut(
            service=SERVICE,
            operation=operation,
            message="the call passed its deadline (retries, backoff and reading included)",
        )

    def _timeouts(self, read: float | None, left: float) -> httpx2.Timeout:
        """Each wait of one attempt, capped by what is left of the call's deadline."""
        read = min(read if read is not None else self.timeout, left)
        return httpx2.Timeout(read, connect=min(self.connect_timeout, left))

    # --- errors and retries ----------------------------------------------------------

    def _error(self, exc: BaseException, operation: str) -> ServiceError:
        return map_error(exc, operation=operation, now=self.clock.now(), secret=self.api_key)

    def _malformed(self, exc: Malformed, operation: str) -> ServiceError:
        message = redact(str(exc), self.api_key)
        return ProtocolError(service=SERVICE, operation=operation, message=message).caused_by(exc)

    def _stream_failure(self, exc: BaseException) -> ServiceError:
        """The taxonomy error for one of ``STREAM_ERRORS`` raised reading a stream."""
        if isinstance(exc, Expired):
            return self._expired("stream")
        if isinstance(exc, Malformed):
            return self._malformed(exc, "stream")
        if isinstance(exc, ErrorEvent):
            return map_error_event(exc.body, operation="stream", secret=self.api_key)
        return self._error(exc, "stream")

    def _retry_options(self, operation: str, ends: float) -> dict[str, Any]:
        """How ``retry.call`` and ``retry.acall`` repeat an attempt of ``operation``."""
        return {
            "clock": self.clock,
            "on_retry": retry_logger(SERVICE, operation, log),
            "rng": self._rng,
            "deadline": ends,
            "retry_on": worth_retrying,
        }

    def _next_wait(
        self, error: ServiceError, *, operation: str, attempt: int, ends: float, yielded: bool
    ) -> float | None:
        """Seconds to wait before a stream's attempt ``attempt + 1``; ``None``: give up.

        ``RetryPolicy.call``'s decision, with the retry logged, for the one call
        ``retry`` cannot wrap: a stream is never repeated once it has yielded a delta
        (the caller has it).
        """
        wait = (
            None
            if yielded or attempt >= self.retry.effective_attempts or not worth_retrying(error)
            else self.retry.delay(attempt, error, self._rng())
        )
        if wait is None or self.clock.monotonic() + wait >= ends:
            return None
        retry_logger(SERVICE, operation, log)(attempt, error, wait)
        return wait

    # --- decoding --------------------------------------------------------------------

    def _completion(self, body: bytes, fallback_model: str) -> Result[Completion, ServiceError]:
        try:
            completion, refusal = completion_from_body(body, fallback_model=fallback_model)
        except Malformed as exc:
            return Failure(self._malformed(exc, "complete"))
        if refusal is not None and not completion.text and not completion.tool_calls:
            message = redact(refusal, self.api_key)[:200]
            return Failure(ContentFiltered(service=SERVICE, operation="complete", message=message))
        return Success(completion)

    def _vectors(
        self, body: bytes, count: int, dimensions: int | None
    ) -> Result[tuple[list[tuple[float, ...]], str, Usage], ServiceError]:
        try:
            return Success(vectors_from_body(body, count=count, dimensions=dimensions))
        except Malformed as exc:
            return Failure(self._malformed(exc, "embed"))

    def _moderations(
        self, body: bytes, count: int, model: str
    ) -> Result[Moderations, ServiceError]:
        try:
            return Success(moderations_from_body(body, count=count, fallback_model=model))
        except Malformed as exc:
            return Failure(self._malformed(exc, "moderate"))

    @staticmethod
    def _delta(state: StreamState, data: bytes) -> ChatDelta | None:
        """The delta one event carries, if any (raises what ``StreamState.read`` raises)."""
        text, calls = state.read(data)
        return ChatDelta(text, calls, model=state.model) if text or calls else None

    @staticmethod
    def _stream_end(state: StreamState) -> Result[ChatDelta, ServiceError]:
        """The final delta of a stream read to its end, or why it is incomplete."""
        if state.finish_reason is None:
            return Failure(
                ProtocolError(
                    service=SERVICE,
                    operation="stream",
                    message="the stream ended without a finish reason (truncated answer)",
                )
            )
        return Success(
            ChatDelta(
                finish_reason=state.finish_reason,
                usage=state.usage if state.usage is not None else Usage(),
                model=state.model,
                provider_finish_reason=state.provider_finish_reason,
            )
        )
