"""``AsyncFakeLLM``: the fake LLM for asyncio, over ``FakeLLM``.

NOT A LANGUAGE MODEL. It holds a ``FakeLLM`` and awaits nothing: every port method is
the sync fake's method of the same name, so the async fake has no state model of its
own that could drift from the reference model the LLM contract kit checks against. Its
``sync`` attribute is that ``FakeLLM``; scripting either view scripts both, and the
requests one records are the other's.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Sequence

import attrs
from returns.result import Result

from portside.adapters.memory._llm import EmbedCall, FailureKind, FakeLLM
from portside.domain._errors import ServiceError
from portside.domain._llm import (
    ChatDelta,
    ChatRequest,
    Completion,
    Embeddings,
    FinishReason,
    LLMIdentity,
    Moderations,
    ToolCall,
    Usage,
)
from portside.ports._llm import AsyncLLMPort, AsyncModerates

__all__ = ["AsyncFakeLLM"]


@attrs.define
class AsyncFakeLLM(AsyncLLMPort, AsyncModerates):
    """``AsyncLLMPort`` on a ``FakeLLM`` (same script, same answers). For tests only.

    ``AsyncFakeLLM()`` builds its own ``FakeLLM()``; pass ``sync=FakeLLM(...)`` to choose
    its models, dimensions or responder, or to share one fake between sync and async
    code. Returns what ``FakeLLM`` returns: ``Failure(InvalidRequest)`` for bad input
    (nothing recorded, nothing consumed), the scripted failures, ``Unavailable`` after
    ``aclose``. As with ``FakeLLM.stream``, ``stream`` validates, records and takes its
    script entry when it is called, not when iteration starts. A coroutine of this fake
    never suspends, so it cannot be cancelled halfway.
    """

    sync: FakeLLM = attrs.field(factory=FakeLLM)

    # -- scripting: the sync fake's, so one script serves both views -----------------

    def reply(
        self,
        text: str = "",
        *,
        finish_reason: FinishReason | None = None,
        tool_calls: Sequence[ToolCall] = (),
        usage: Usage | None = None,
    ) -> None:
        """``FakeLLM.reply``: queue the answer to the next chat call."""
        self.sync.reply(text, finish_reason=finish_reason, tool_calls=tool_calls, usage=usage)

    def fail(self, kind: FailureKind | ServiceError, *, retry_after: float | None = None) -> None:
        """``FakeLLM.fail``: queue a failure for the next call."""
        self.sync.fail(kind, retry_after=retry_after)

    def drop_stream_after(self, n: int, *, text: str = "the answer was cut short here") -> None:
        """``FakeLLM.drop_stream_after``: the next stream stops after ``n`` deltas."""
        self.sync.drop_stream_after(n, text=text)

    def flag(self, word: str, category: str = "harassment", *, score: float = 0.9) -> None:
        """``FakeLLM.flag``: ``moderate`` flags texts holding ``word``."""
        self.sync.flag(word, category, score=score)

    def received(self) -> int:
        """``FakeLLM.received``: chat and embeddings calls past validation."""
        return self.sync.received()

    @property
    def requests(self) -> tuple[ChatRequest, ...]:
        """``FakeLLM.requests``: every chat request accepted so far, in order."""
        return self.sync.requests

    @property
    def embed_calls(self) -> tuple[EmbedCall, ...]:
        """``FakeLLM.embed_calls``: every embeddings call accepted so far, in order."""
        return self.sync.embed_calls

    @property
    def pending(self) -> int:
        """``FakeLLM.pending``: scripted entries not consumed yet."""
        return self.sync.pending

    # -- the port ----------------------------------------------------------------------

    @property
    def identity(self) -> LLMIdentity:
        """``FakeLLM.identity``."""
        return self.sync.identity

    async def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """``FakeLLM.complete``."""
        return self.sync.complete(request)

    def stream(self, request: ChatRequest) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
        """``FakeLLM.stream``, as an async generator of the same events."""
        return _events(self.sync.stream(request))

    async def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """``FakeLLM.embed``."""
        return self.sync.embed(texts, model=model, dimensions=dimensions)

    async def moderate(
        self, texts: Sequence[str], *, model: str | None = None
    ) -> Result[Moderations, ServiceError]:
        """``FakeLLM.moderate``."""
        return self.sync.moderate(texts, model=model)

    async def aclose(self) -> None:
        """``FakeLLM.close``: later calls are ``Failure(Unavailable)``."""
        self.sync.close()


async def _events(
    events: Iterable[Result[ChatDelta, ServiceError]],
) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
    for event in events:
        yield event
