"""Rows ``async_llm_complete``, ``async_llm_stream``: AsyncOpenAILLM vs raw ``AsyncOpenAI``.

Both sides call the same local OpenAI-compatible server (a child process, as in the
``llm_*`` rows), each from one event loop, in the same run. The raw client is built
like the adapter's (no SDK retries, same timeout); it streams through the SDK's own
chunk parsing, which is what an application using ``AsyncOpenAI`` directly pays. Each
timed call awaits ``CALLS`` requests one after another on the loop, so the loop's own
cost is on both sides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import openai

from benchmarks._harness import Case
from benchmarks.bench_llm import KEY, WORDS, _server
from portside.adapters.openai import AsyncOpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.domain import ChatMessage, ChatRequest

NAMES = ("async_llm_complete", "async_llm_stream")

#: Awaited requests per timed call.
CALLS = 5


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    with _server() as url:
        loop = asyncio.new_event_loop()
        llm = AsyncOpenAILLM(
            api_key=KEY,
            base_url=url,
            model="bench-chat",
            timeout=30.0,
            retry=RetryPolicy(attempts=1),
        )
        raw = openai.AsyncOpenAI(api_key=KEY, base_url=url, max_retries=0, timeout=30.0)
        words = " ".join(f"word{i}" for i in range(WORDS))
        request = ChatRequest((ChatMessage.user(words),))
        messages: list[Any] = [{"role": "user", "content": words}]

        def repeated(op: Callable[[], Awaitable[Any]]) -> Callable[[], None]:
            async def many() -> None:
                for _ in range(CALLS):
                    await op()

            return lambda: loop.run_until_complete(many())

        async def ours_complete() -> object:
            return (await llm.complete(request)).unwrap()

        async def raw_complete() -> object:
            answer = await raw.chat.completions.create(model="bench-chat", messages=messages)
            return answer.choices[0].message.content

        async def ours_stream() -> object:
            deltas = 0
            async for event in llm.stream(request):
                event.unwrap()
                deltas += 1
            return deltas

        async def raw_stream() -> object:
            deltas = 0
            chunks = await raw.chat.completions.create(
                model="bench-chat",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    deltas += 1
            return deltas

        try:
            yield [
                Case(
                    "async_llm_complete",
                    repeated(ours_complete),
                    repeated(raw_complete),
                    goal=0.95,
                    unit="requests/s",
                    ops=CALLS,
                ),
                Case(
                    "async_llm_stream",
                    repeated(ours_stream),
                    repeated(raw_stream),
                    goal=0.95,
                    unit="deltas/s",
                    ops=CALLS * WORDS,
                ),
            ]
        finally:
            loop.run_until_complete(llm.aclose())
            loop.run_until_complete(raw.close())
            loop.close()
