"""``AsyncOpenAILLM``: the async LLM port over ``openai.AsyncOpenAI``, for any compatible server."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs
import httpx2
import openai
from returns.result import Failure, Result, Success

from portside.adapters.clock import async_sleeper
from portside.adapters.openai._common import STREAM_ERRORS, EmbedParts, OpenAICommon
from portside.adapters.openai._convert import StreamState, not_a_stream
from portside.adapters.openai._deadline import Expired, aread_within
from portside.adapters.openai._errors import SDK_ERRORS
from portside.adapters.openai._sse import asse_data
from portside.domain._errors import ServiceError
from portside.domain._llm import (
    ChatDelta,
    ChatRequest,
    Completion,
    Embeddings,
    Moderations,
    Usage,
)
from portside.ports._llm import AsyncLLMPort, AsyncModerates

__all__ = ["AsyncOpenAILLM"]

T = TypeVar("T")


@attrs.define
class AsyncOpenAILLM(OpenAICommon, AsyncLLMPort, AsyncModerates):
    """``OpenAILLM`` for asyncio, over ``openai.AsyncOpenAI``: the same settings and answers.

    Every argument, rule, retry decision, conversion and error is ``OpenAILLM``'s (they
    are written once, shared by both); only sending and reading are awaited. The
    deadline (``deadline``, or a request's own) is kept on the event loop's clock: each
    await of an attempt (sending, the headers, every chunk of the body) is bounded by
    what is left of it, so a trickled body or keep-alive comments end ``TimedOut``
    without a watchdog thread. Backoff waits with ``asyncio.sleep`` (on a test clock
    such as ``ManualClock`` it advances the clock instead). ``http_client`` must be an
    ``httpx2.AsyncClient``.

    Cancellation: a task cancelled at any await (sending, waiting for headers, reading
    the body, a backoff wait) gets ``CancelledError`` as asyncio expects; the response
    is closed on the way out, so its connection goes back to the pool or is dropped,
    never left checked out. A stream left early must be closed (``await
    stream.aclose()``, or ``contextlib.aclosing``) to release its connection at once.
    ``aclose()`` closes the SDK client and its pool; later calls are
    ``Failure(Unavailable)``.
    """

    http_client: httpx2.AsyncClient | None = attrs.field(default=None, repr=False)
    _client: openai.AsyncOpenAI = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        key = self._configure()
        http_client = self.http_client or openai.DefaultAsyncHttpxClient(
            max_redirects=self.max_redirects
        )
        self._client = openai.AsyncOpenAI(**self._client_options(key), http_client=http_client)

    async def aclose(self) -> None:
        """Close the SDK client and its pool; later calls are ``Failure(Unavailable)``."""
        self._closed = True
        await self._client.close()

    # --- plumbing ------------------------------------------------------------------

    async def _body(
        self,
        operation: str,
        ends: float,
        read: float | None,
        send: Callable[[httpx2.Timeout], Any],
    ) -> bytes | ServiceError:
        """One attempt's whole body, read within the call's deadline, or its error."""
        left = ends - self.clock.monotonic()
        if left <= 0:
            return self._expired(operation)
        try:
            async with aread_within(send(self._timeouts(read, left)), self.clock, ends) as (
                _,
                chunks,
            ):
                return b"".join([chunk async for chunk in chunks])
        except Expired:
            return self._expired(operation)
        except SDK_ERRORS as exc:
            return self._error(exc, operation)

    async def _with_retries(
        self,
        operation: str,
        ends: float,
        attempt: Callable[[], Awaitable[Result[T, ServiceError]]],
    ) -> Result[T, ServiceError]:
        return await self.retry.acall(attempt, **self._retry_options(operation, ends))

    # --- complete ------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The whole answer to ``request``; errors as listed on ``OpenAILLM``."""
        params = self._chat_params(request, "complete")
        if isinstance(params, ServiceError):
            return Failure(params)
        ends = self._ends(request.deadline)
        return await self._with_retries(
            "complete", ends, functools.partial(self._complete_once, params, request.timeout, ends)
        )

    async def _complete_once(
        self, params: dict[str, Any], read: float | None, ends: float
    ) -> Result[Completion, ServiceError]:
        create = self._client.chat.completions.with_streaming_response.create
        body = await self._body(
            "complete", ends, read, lambda timeout: create(**params, timeout=timeout)
        )
        if isinstance(body, ServiceError):
            return Failure(body)
        return self._completion(body, params["model"])

    # --- stream --------------------------------------------------------------------

    async def stream(
        self, request: ChatRequest
    ) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
        """``OpenAILLM.stream``, as an async generator: deltas, then one final event."""
        params = self._chat_params(request, "stream")
        if isinstance(params, ServiceError):
            yield Failure(params)
            return
        ends = self._ends(request.deadline)
        sleep = async_sleeper(self.clock)
        attempt = 1
        while True:
            yielded = False
            error: ServiceError | None = None
            attempt_items = self._stream_once(params, request.timeout, ends)
            try:
                async for item in attempt_items:
                    if isinstance(item, Success):
                        yielded = True
                        yield item
                    else:
                        error = item.failure()
            finally:
                await attempt_items.aclose()
            if error is None:
                return
            wait = self._next_wait(
                error, operation="stream", attempt=attempt, ends=ends, yielded=yielded
            )
            if wait is None:
                yield Failure(error)
                return
            await sleep(wait)
            attempt += 1

    async def _stream_once(
        self, params: dict[str, Any], read: float | None, ends: float
    ) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
        left = ends - self.clock.monotonic()
        if left <= 0:
            yield Failure(self._expired("stream"))
            return
        state = StreamState(params["model"])
        # The raw SSE body, parsed here, as in OpenAILLM.
        opened = self._client.chat.completions.with_streaming_response.create(
            **params, timeout=self._timeouts(read, left)
        )
        try:
            async with aread_within(opened, self.clock, ends) as (response, chunks):
                refused = not_a_stream(response.headers.get("content-type"))
                if refused is not None:
                    yield Failure(refused)
                    return
                async for data in asse_data(chunks):
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

    async def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """``OpenAILLM.embed``: one float vector per text, ``embed_batch_size`` a request."""
        refused = self._embed_refusal(texts, model, dimensions)
        if refused is not None:
            return Failure(refused)
        chosen = model or self.embedding_model
        ends = self._ends(None)
        parts = EmbedParts(chosen)
        for batch in self._batches(texts):
            result = await self._with_retries(
                "embed", ends, functools.partial(self._embed_once, batch, chosen, dimensions, ends)
            )
            if isinstance(result, Failure):
                return result
            parts.add(result.unwrap())
        return Success(parts.done())

    async def _embed_once(
        self, batch: list[str], model: str, dimensions: int | None, ends: float
    ) -> Result[tuple[list[tuple[float, ...]], str, Usage], ServiceError]:
        create = self._client.embeddings.with_streaming_response.create
        extra = self._embed_extra(dimensions)
        body = await self._body(
            "embed",
            ends,
            None,
            lambda timeout: create(input=batch, model=model, timeout=timeout, **extra),
        )
        if isinstance(body, ServiceError):
            return Failure(body)
        return self._vectors(body, len(batch), dimensions)

    # --- moderate ------------------------------------------------------------------

    async def moderate(
        self, texts: Sequence[str], *, model: str | None = None
    ) -> Result[Moderations, ServiceError]:
        """``OpenAILLM.moderate``: one verdict per text from ``/moderations``."""
        refused = self._moderate_refusal(texts, model)
        if refused is not None:
            return Failure(refused)
        ends = self._ends(None)
        chosen = model or self.moderation_model
        return await self._with_retries(
            "moderate", ends, functools.partial(self._moderate_once, list(texts), chosen, ends)
        )

    async def _moderate_once(
        self, texts: list[str], model: str, ends: float
    ) -> Result[Moderations, ServiceError]:
        create = self._client.moderations.with_streaming_response.create
        body = await self._body(
            "moderate",
            ends,
            None,
            lambda timeout: create(input=texts, model=model, timeout=timeout),
        )
        if isinstance(body, ServiceError):
            return Failure(body)
        return self._moderations(body, len(texts), model)
