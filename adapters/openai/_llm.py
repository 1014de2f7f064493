"""``OpenAILLM``: the LLM port over the official openai SDK, for any compatible server."""

from __future__ import annotations

import functools
import logging
import os
import random
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, Final, TypeVar

import attrs
import httpx2
import openai
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
    not_a_stream,
    vectors_from_body,
)
from portside.adapters.openai._deadline import Expired, read_within
from portside.adapters.openai._errors import (
    SDK_ERRORS,
    SERVICE,
    is_final,
    map_error,
    map_error_event,
    redact,
)
from portside.adapters.openai._sse import sse_data
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
from portside.ports._llm import LLMPort, Moderates
from portside.ports.llm_rules import (
    MAX_EMBED_TEXT_CHARS,
    check_real_llm_allowed,
    validate_chat,
    validate_embed,
    validate_moderate,
)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_DEADLINE", "OpenAILLM"]

T = TypeVar("T")

#: The public OpenAI endpoint, used when neither ``base_url`` nor ``OPENAI_BASE_URL`` is set.
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"

#: Seconds a whole call may take by default, retries and backoff included.
DEFAULT_DEADLINE: Final = 120.0

log = logging.getLogger("portside.openai")


def _retry_policy() -> RetryPolicy:
    # 2 retries matches PORTSIDE_LLM_MAX_RETRIES' default; the SDK's own are off.
    return RetryPolicy(attempts=3, base=0.5, cap=8.0, jitter=1.0, max_retry_after=60.0)


@attrs.define
class OpenAILLM(LLMPort, Moderates):
    """Chat completions, streaming and embeddings over the openai SDK.

    Works with OpenAI and any OpenAI-compatible server (``base_url``). One long-lived
    SDK client serves every call; ``close()`` releases its connections. The adapter is
    the one retry owner: the SDK's retries are off and ``retry`` (backing off on
    ``clock``) repeats retryable failures, honouring ``Retry-After``, and never repeats
    a stream once it has yielded anything. ``resilience.retries_disabled()`` turns the
    retries off process-wide in tests.

    ``timeout`` is the read timeout (seconds without a byte from the server), so a
    stalled stream is cut; ``connect_timeout`` bounds connecting; ``deadline`` bounds a
    whole call, retries, backoff and a stream's last delta included (a request's own
    ``ChatRequest.deadline`` replaces it): past it the call is ``TimedOut``, even when
    the server trickles bytes or sends keep-alive comments forever. Redirects are
    followed ``max_redirects`` times at most (a loop is a ``ProtocolError``, not
    retried). Embeddings are asked for as floats, ``embed_batch_size`` texts per HTTP
    request. The API key is never shown in a repr, a log line, an error or any
    exception of an error's chain of causes.

    Building raises ``ValueError`` for a configuration no request could use: no API
    key, a key with whitespace, control or non-ASCII characters, a base URL that is not
    ``http(s)://host[:port]`` with a port in 1-65535, non-positive timeouts.

    Every method returns its errors as values: ``InvalidRequest`` for a request the
    port's rules reject (before any network call), ``RateLimited`` (with
    ``retry_after``), ``TimedOut``, ``Unavailable``, ``Unauthorized``, ``NotFound``,
    ``QuotaExceeded``, ``ContentFiltered`` (a prompt refused, or a model refusal) and
    ``ProtocolError`` for a malformed, wrong-shaped or incomplete answer. A reply cut
    by the content filter is a ``Completion`` with ``finish_reason="content_filter"``.
    """

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
    http_client: httpx2.Client | None = attrs.field(default=None, repr=False)
    _client: openai.OpenAI = attrs.field(init=False, repr=False)
    _rng: Callable[[], float] = attrs.field(default=random.random, init=False, repr=False)
    _closed: bool = attrs.field(default=False, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
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
        http_client = self.http_client or openai.DefaultHttpxClient(
            max_redirects=self.max_redirects
        )
        self._client = openai.OpenAI(
            api_key=key,
            base_url=self.base_url,
            max_retries=0,  # one retry owner: this adapter
            timeout=httpx2.Timeout(self.timeout, connect=self.connect_timeout),
            http_client=http_client,
        )

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

    def close(self) -> None:
        """Close the SDK client and its pool; later calls are ``Failure(Unavailable)``."""
        self._closed = True
        self._client.close()

    def _refusal(self, operation: str) -> ServiceError | None:
        """Why a call that passed validation may not go out: the adapter is closed."""
        # The guard raises on purpose (a programming error in a test suite).
        check_real_llm_allowed(self.base_url or DEFAULT_BASE_URL)
        if self._closed:
            return Unavailable(
                service=SERVICE, operation=operation, message="the adapter is closed"
            )
        return None

    # --- plumbing ------------------------------------------------------------------

    def _error(self, exc: BaseException, operation: str) -> ServiceError:
        return map_error(exc, operation=operation, now=self.clock.now(), secret=self.api_key)

    def _malformed(self, exc: Malformed, operation: str) -> ServiceError:
        message = redact(str(exc), self.api_key)
        return ProtocolError(service=SERVICE, operation=operation, message=message).caused_by(exc)

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

    def _body(
        self,
        operation: str,
        ends: float,
        read: float | None,
        send: Callable[[httpx2.Timeout], Any],
    ) -> bytes | ServiceError:
        """One attempt's whole body, read within the call's deadline, or its error.

        ``send(timeout)`` opens a streaming response: even a whole body is read as a
        stream, so the deadline can cut one the server trickles (a buffered read would
        wait for all of it).
        """
        left = ends - self.clock.monotonic()
        if left <= 0:
            return self._expired(operation)
        try:
            with read_within(send(self._timeouts(read, left)), self.clock, ends) as (_, chunks):
                return b"".join(chunks)
        except Expired:
            return self._expired(operation)
        except SDK_ERRORS as exc:
            return self._error(exc, operation)

    def _with_retries(
        self, operation: str, ends: float, attempt: Callable[[], Result[T, ServiceError]]
    ) -> Result[T, ServiceError]:
        on_retry = retry_logger(SERVICE, operation, log)
        return self.retry.call(
            attempt,
            clock=self.clock,
            on_retry=on_retry,
            rng=self._rng,
            deadline=ends,
            retry_on=_worth_retrying,
        )

    def _params(self, request: ChatRequest, operation: str) -> dict[str, Any] | ServiceError:
        try:
            return chat_params(
                request, default_model=self.model, max_tokens_field=self.max_tokens_field
            )
        except NotJSON as exc:
            return InvalidRequest(service=SERVICE, operation=operation, message=str(exc))

    # --- complete ------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The whole answer to ``request``; errors as listed on the class."""
        invalid = validate_chat(request, service=SERVICE, operation="complete")
        if invalid is not None:
            return Failure(invalid)
        refused = self._refusal("complete")
        if refused is not None:
            return Failure(refused)
        params = self._params(request, "complete")
        if isinstance(params, ServiceError):
            return Failure(params)
        ends = self._ends(request.deadline)
        model = params["model"]
        return self._with_retries(
            "complete", ends, lambda: self._complete_once(params, request.timeout, ends, model)
        )

    def _complete_once(
        self, params: dict[str, Any], read: float | None, ends: float, fallback_model: str
    ) -> Result[Completion, ServiceError]:
        create = self._client.chat.completions.with_streaming_response.create
        body = self._body("complete", ends, read, lambda timeout: create(**params, timeout=timeout))
        if isinstance(body, ServiceError):
            return Failure(body)
        try:
            completion, refusal = completion_from_body(body, fallback_model=fallback_model)
        except Malformed as exc:
            return Failure(self._malformed(exc, "complete"))
        if refusal is not None and not completion.text and not completion.tool_calls:
            message = redact(refusal, self.api_key)[:200]
            return Failure(ContentFiltered(service=SERVICE, operation="complete", message=message))
        return Success(completion)

    # --- stream --------------------------------------------------------------------

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """The answer as deltas, ending with one delta carrying finish reason and usage.

        Or ending with one ``Failure``: a stream that stops without a finish reason is
        ``ProtocolError``, a stalled one ``TimedOut`` (read timeout), a dropped one
        ``Unavailable``. Retries happen only before the first delta is yielded.
        """
        invalid = validate_chat(request, service=SERVICE, operation="stream")
        if invalid is not None:
            yield Failure(invalid)
            return
        refused = self._refusal("stream")
        if refused is not None:
            yield Failure(refused)
            return
        params = self._params(request, "stream")
        if isinstance(params, ServiceError):
            yield Failure(params)
            return
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        ends = self._ends(request.deadline)
        limit = self.retry.effective_attempts
        attempt = 1
        while True:
            yielded = False
            error: ServiceError | None = None
            attempt_items = self._stream_once(params, request.timeout, ends)
            try:
                for item in attempt_items:
                    if isinstance(item, Success):
                        yielded = True
                        yield item
                    else:
                        error = item.failure()
            finally:
                attempt_items.close()
            if error is None:
                return
            wait = (
                None
                if yielded or attempt >= limit or not _worth_retrying(error)
                else self.retry.delay(attempt, error, self._rng())
            )
            if wait is None or self.clock.monotonic() + wait >= ends:
                yield Failure(error)
                return
            retry_logger(SERVICE, "stream", log)(attempt, error, wait)
            self.clock.sleep(wait)
            attempt += 1

    def _stream_once(
        self, params: dict[str, Any], read: float | None, ends: float
    ) -> Generator[Result[ChatDelta, ServiceError], None, None]:
        left = ends - self.clock.monotonic()
        if left <= 0:
            yield Failure(self._expired("stream"))
            return
        state = StreamState(params["model"])
        # The raw SSE body, parsed here: the SDK's chunk models would accept a
        # wrong-shaped event silently, and orjson over plain dicts is faster.
        opened = self._client.chat.completions.with_streaming_response.create(
            **params, timeout=self._timeouts(read, left)
        )
        try:
            with read_within(opened, self.clock, ends) as (response, chunks):
                refused = not_a_stream(response.headers.get("content-type"))
                if refused is not None:
                    yield Failure(refused)
                    return
                for data in sse_data(chunks):
                    if data == b"[DONE]":
                        break
                    text, calls = state.read(data)
                    if text or calls:
                        yield Success(ChatDelta(text, calls, model=state.model))
        except Expired:
            yield Failure(self._expired("stream"))
            return
        except SDK_ERRORS as exc:
            yield Failure(self._error(exc, "stream"))
            return
        except Malformed as exc:
            yield Failure(self._malformed(exc, "stream"))
            return
        except ErrorEvent as event:
            yield Failure(map_error_event(event.body, operation="stream", secret=self.api_key))
            return
        if state.finish_reason is None:
            yield Failure(
                ProtocolError(
                    service=SERVICE,
                    operation="stream",
                    message="the stream ended without a finish reason (truncated answer)",
                )
            )
            return
        yield Success(
            ChatDelta(
                finish_reason=state.finish_reason,
                usage=state.usage if state.usage is not None else Usage(),
                model=state.model,
                provider_finish_reason=state.provider_finish_reason,
            )
        )

    # --- embed ---------------------------------------------------------------------

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """One float vector per text, in order, ``embed_batch_size`` texts per request.

        A failed batch fails the whole call (after its retries); nothing partial is
        returned. Errors as listed on the class.
        """
        invalid = validate_embed(
            texts, model, dimensions, service=SERVICE, max_text_chars=self.max_embed_text_chars
        )
        if invalid is not None:
            return Failure(invalid)
        refused = self._refusal("embed")
        if refused is not None:
            return Failure(refused)
        chosen = model or self.embedding_model
        ends = self._ends(None)
        vectors: list[tuple[float, ...]] = []
        usage = Usage()
        served_by = chosen
        size = self.embed_batch_size
        for start in range(0, len(texts), size):
            batch = list(texts[start : start + size])
            result = self._with_retries(
                "embed", ends, functools.partial(self._embed_once, batch, chosen, dimensions, ends)
            )
            if isinstance(result, Failure):
                return result
            batch_vectors, batch_model, batch_usage = result.unwrap()
            vectors.extend(batch_vectors)
            usage += batch_usage
            served_by = batch_model or served_by
        return Success(Embeddings(tuple(vectors), served_by, usage))

    def moderate(
        self, texts: Sequence[str], *, model: str | None = None
    ) -> Result[Moderations, ServiceError]:
        """One verdict per text from ``/moderations`` (``moderation_model`` by default).

        The same rules, retries and deadline as ``embed``; errors as on the class.
        """
        invalid = validate_moderate(
            texts, model, service=SERVICE, max_text_chars=self.max_embed_text_chars
        )
        if invalid is not None:
            return Failure(invalid)
        refused = self._refusal("moderate")
        if refused is not None:
            return Failure(refused)
        ends = self._ends(None)
        chosen = model or self.moderation_model
        batch = list(texts)
        return self._with_retries(
            "moderate", ends, functools.partial(_moderate_once, self, batch, chosen, ends)
        )

    def _embed_once(
        self, batch: list[str], model: str, dimensions: int | None, ends: float
    ) -> Result[tuple[list[tuple[float, ...]], str, Usage], ServiceError]:
        extra: dict[str, Any] = {} if dimensions is None else {"dimensions": dimensions}
        create = self._client.embeddings.with_streaming_response.create
        body = self._body(
            "embed",
            ends,
            None,
            lambda timeout: create(
                input=batch, model=model, encoding_format="float", timeout=timeout, **extra
            ),
        )
        if isinstance(body, ServiceError):
            return Failure(body)
        try:
            return Success(vectors_from_body(body, count=len(batch), dimensions=dimensions))
        except Malformed as exc:
            return Failure(self._malformed(exc, "embed"))


def _worth_retrying(error: ServiceError) -> bool:
    return not is_final(error)


def _moderate_once(
    llm: OpenAILLM, texts: list[str], model: str, ends: float
) -> Result[Moderations, ServiceError]:
    create = llm._client.moderations.with_streaming_response.create
    body = llm._body(
        "moderate", ends, None, lambda timeout: create(input=texts, model=model, timeout=timeout)
    )
    if isinstance(body, ServiceError):
        return Failure(body)
    try:
        return Success(moderations_from_body(body, count=len(texts), fallback_model=model))
    except Malformed as exc:
        return Failure(llm._malformed(exc, "moderate"))
