"""Type-level checks of the async LLM port (run by mypy --strict, and imported by pytest)."""

from __future__ import annotations

import asyncio
from typing import assert_type

from returns.result import Result

from portside.adapters.memory import AsyncFakeLLM
from portside.domain import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    Completion,
    Embeddings,
    ServiceError,
)
from portside.ports import AsyncLLMPort


def test_async_llm_methods_await_to_results() -> None:
    """Awaiting an AsyncLLMPort method gives the LLMPort method's Result type."""

    async def scenario(llm: AsyncLLMPort) -> None:
        request = ChatRequest((ChatMessage.user("hi"),))
        assert_type(await llm.complete(request), Result[Completion, ServiceError])
        assert_type(await llm.embed(["hi"]), Result[Embeddings, ServiceError])
        async for event in llm.stream(request):
            assert_type(event, Result[ChatDelta, ServiceError])
        await llm.aclose()

    asyncio.run(scenario(AsyncFakeLLM()))
