"""The LLM port: chat completions, streaming and embeddings."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from returns.result import Result

from portside.domain._errors import ServiceError
from portside.domain._llm import ChatDelta, ChatRequest, Completion, Embeddings, LLMIdentity

__all__ = ["LLMPort"]


class LLMPort(Protocol):
    """A chat and embeddings model behind any provider.

    Invalid requests (no messages, an unknown role, an empty model name, a tool without
    a name, negative ``max_tokens``, no texts to embed) are ``Failure(InvalidRequest)``
    before any network call. Provider errors map to the taxonomy: ``RateLimited``
    (with ``retry_after``), ``TimedOut``, ``Unavailable``, ``Unauthorized``,
    ``QuotaExceeded``, ``ContentFiltered``, and ``ProtocolError`` for any malformed or
    incomplete answer.
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
