"""``OpenAILLM``: the LLM port over the official openai SDK, for any compatible server."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

import attrs
import httpx2
import openai
from returns.result import Failure, Result, Success

from portside.adapters.openai._common import (
    DEFAULT_BASE_URL,
    DEFAULT_DEADLINE,
    STREAM_ERRORS,
    EmbedParts,
    OpenAICommon,
)
from portside.adapters.openai._convert import StreamState, not_a_stream
from portside.adapters.openai._deadline import Expired, read_within
from portside.adapters.openai._errors import SDK_ERRORS
from portside.adapters.openai._sse import sse_data
from portside.domain._errors import ServiceError
from portside.domain._llm import (
    ChatDelta,
    ChatRequest,
    Completion,
    Embeddings,
    Moderations,
    Usage,
)
from portside.ports._llm import LLMPort, Moderates

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_DEADLINE", "OpenAILLM"]

T = TypeVar("T")


@attrs.define
class OpenAILLM(OpenAICommon, LLMPort, Moderates):
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

    http_client: httpx2.Client | None = attrs.field(default=None, repr=False)
    _client: openai.OpenAI = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        key = self._configure()
        http_client = self.http_client or openai.DefaultHttpxClient(
            max_redirects=self.max_redirects
        )
        self._client = openai.OpenAI(**self._client_options(key), http_client=http_client)

    def close(self) -> None:
        """Close the SDK client and its pool; later calls are ``Failure(Unavailable)``."""
        self._closed = True
        self._client.close()

    # --- plumbing ------------------------------------------------------------------

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
        return self.retry.call(attempt, **self._retry_options(operation, ends))

    # --- complete ------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The whole answer to ``request``; errors as listed on the class."""
        params = self._chat_params(request, "complete")
        if isinstance(params, ServiceError):
            return Failure(params)
        ends = self._ends(request.deadline)
        return self._with_retries(
            "complete", ends, lambda: self._complete_once(params, request.timeout, ends)
        )

    def _complete_once(
        self, params: dict[str, Any], read: float | None, ends: float
    ) -> Result[Completion, ServiceError]:
        create = self._client.chat.completions.with_streaming_response.create
        body = self._body("complete", ends, read, lambda timeout: create(**params, timeout=timeout))
        if isinstance(body, ServiceError):
            return Failure(body)
        return self._completion(body, params["model"])

    # --- stream --------------------------------------------------------------------

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """The answer as deltas, ending with one delta carrying finish reason and usage.

        Or ending with one ``Failure``: a stream that stops without a finish reason is
        ``ProtocolError``, a stalled one ``TimedOut`` (read timeout), a dropped one
        ``Unavailable``. Retries happen only before the first delta is yielded.
        """
        params = self._chat_params(request, "stream")
        if isinstance(params, ServiceError):
            yield Failure(params)
            return
        ends = self._ends(request.deadline)
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
            wait = self._next_wait(
                error, operation="stream", attempt=attempt, ends=ends, yielded=yielded
            )
            if wait is None:
                yield Failure(error)
                return
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
                    delta = self._delta(state, data)
                    if delta is not None:
                        yield Success(delta)
        except STREAM_ERRORS as exc:
            yield Failure(self._stream_failure(exc))
            return
        yield self._stream_end(state)

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
        refused = self._embed_refusal(texts, model, dimensions)
        if refused is not None:
            return Failure(refused)
        chosen = model or self.embedding_model
        ends = self._ends(None)
        parts = EmbedParts(chosen)
        for batch in self._batches(texts):
            result = self._with_retries(
                "embed", ends, functools.partial(self._embed_once, batch, chosen, dimensions, ends)
            )
            if isinstance(result, Failure):
                return result
            parts.add(result.unwrap())
        return Success(parts.done())

    def _embed_once(
        self, batch: list[str], model: str, dimensions: int | None, ends: float
    ) -> Result[tuple[list[tuple[float, ...]], str, Usage], ServiceError]:
        create = self._client.embeddings.with_streaming_response.create
        extra = self._embed_extra(dimensions)
        body = self._body(
            "embed",
            ends,
            None,
            lambda timeout: create(input=batch, model=model, timeout=timeout, **extra),
        )
        if isinstance(body, ServiceError):
            return Failure(body)
        return self._vectors(body, len(batch), dimensions)

    # --- moderate ------------------------------------------------------------------

    def moderate(
        self, texts: Sequence[str], *, model: str | None = None
    ) -> Result[Moderations, ServiceError]:
        """One verdict per text from ``/moderations`` (``moderation_model`` by default).

        The same rules, retries and deadline as ``embed``; errors as on the class.
        """
        refused = self._moderate_refusal(texts, model)
        if refused is not None:
            return Failure(refused)
        ends = self._ends(None)
        chosen = model or self.moderation_model
        return self._with_retries(
            "moderate", ends, functools.partial(self._moderate_once, list(texts), chosen, ends)
        )

    def _moderate_once(
        self, texts: list[str], model: str, ends: float
    ) -> Result[Moderations, ServiceError]:
        create = self._client.moderations.with_streaming_response.create
        body = self._body(
            "moderate",
            ends,
            None,
            lambda timeout: create(input=texts, model=model, timeout=timeout),
        )
        if isinstance(body, ServiceError):
            return Failure(body)
        return self._moderations(body, len(texts), model)
