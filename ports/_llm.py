"""The LLM port: chat completions, streaming and embeddings."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Protocol

from returns.result import Result

from portside.domain._errors import ServiceError
from portside.domain._llm import (
    ChatDelta,
    ChatRequest,
    Completion,
    Embeddings,
    LLMIdentity,
    Moderations,
)

__all__ = ["AsyncLLMPort", "AsyncModerates", "LLMPort", "Moderates"]


class LLMPort(Protocol):
    """A chat and embeddings model behind any provider.

    Invalid requests (no messages, an unknown role, an empty model name, a tool without
    a name, negative ``max_tokens``, no texts to embed) are ``Failure(InvalidRequest)``
    before any network call, and so is an argument of any wrong type anywhere (a
    ``str`` for the request, a dict for a message, ``content=5``, ``max_tokens="10"``,
    ``embed(None)``): the message names the argument. Nothing is raised.

    Programming errors that do raise, all when a value or an adapter is built, never
    from a port method: the value classes (``ChatMessage``, ``ChatRequest``...) check
    nothing themselves (a request is checked as a whole when it is sent, so a wrong
    field is reported by the call, not by the constructor); building an adapter with a
    configuration no call could use raises ``ValueError`` (``OpenAILLM`` with a key
    holding a newline or a non-ASCII character, a bad base URL or port; ``FakeLLM``
    with ``dimensions`` above ``MAX_EMBED_DIMENSIONS``); the real-LLM guard raises
    ``RuntimeError`` (see ``llm_rules.check_real_llm_allowed``).

    Provider errors map to the taxonomy: ``RateLimited`` (with ``retry_after``),
    ``TimedOut``, ``Unavailable``, ``Unauthorized``, ``QuotaExceeded``,
    ``ContentFiltered``, and ``ProtocolError`` for any malformed or incomplete answer.
    """

    @property
    def identity(self) -> LLMIdentity:
        """Provider, endpoint and default model; cache keys include it."""
        ...

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The whole answer to ``request``."""
        ...

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """The answer as deltas.

        Ends with exactly one ``Success`` delta carrying ``finish_reason`` and
        ``usage``, or with one ``Failure`` (after which nothing more is yielded). The
        texts of the deltas concatenate to what ``complete`` would return.
        """
        ...

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """One vector per text, in order, each of ``dimensions`` floats when given."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class Moderates(Protocol):
    """An optional capability beside ``LLMPort``: a moderation model.

    ``FakeLLM`` and ``OpenAILLM`` have it; a decorator or a custom adapter may not, so
    it is not part of ``LLMPort``.
    """

    def moderate(
        self, texts: Sequence[str], *, model: str | None = None
    ) -> Result[Moderations, ServiceError]:
        """One verdict per text, in order.

        Errors: ``InvalidRequest`` for texts the embeddings rules refuse (checked by
        ``llm_rules.validate_moderate`` before sending), and the provider errors of
        ``LLMPort``.
        """
        ...


class AsyncLLMPort(Protocol):
    """``LLMPort`` for asyncio: the same methods, semantics and errors, awaited.

    Every method means exactly what the ``LLMPort`` method of the same name means (the
    request rules of ``portside.ports.llm_rules``, the error taxonomy, the shape of a
    stream); only the I/O is awaited. ``stream`` is an async generator: iterate it with
    ``async for`` and, when leaving it early, ``await stream.aclose()`` (or wrap it in
    ``contextlib.aclosing``) so its connection is released at once. A call cancelled at
    any await point (``CancelledError`` is raised, as asyncio expects, never turned
    into a ``Failure``) leaves no connection checked out and the adapter usable.
    ``aclose()`` replaces ``close()``.
    """

    @property
    def identity(self) -> LLMIdentity:
        """Provider, endpoint and default model; cache keys include it."""
        ...

    async def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """See ``LLMPort.complete``."""
        ...

    def stream(self, request: ChatRequest) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
        """See ``LLMPort.stream``: deltas, then one final delta or one ``Failure``."""
        ...

    async def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """See ``LLMPort.embed``."""
        ...

    async def aclose(self) -> None:
        """Release connections; later calls are ``Failure(Unavailable)``."""
        ...


class AsyncModerates(Protocol):
    """``Moderates`` for asyncio: an optional capability beside ``AsyncLLMPort``."""

    async def moderate(
        self, texts: Sequence[str], *, model: str | None = None
    ) -> Result[Moderations, ServiceError]:
        """See ``Moderates.moderate``."""
        ...
