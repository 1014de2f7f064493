"""Cancelling AsyncOpenAILLM calls at each await point leaves no connection or task behind.

The adapter gets an ``httpx2.AsyncClient`` with one connection, so a connection left
checked out by a cancelled call would make the next call wait for the pool and fail.
Each test cancels a call while it waits at one point (sending and awaiting headers,
reading the body, a backoff wait, between and inside stream deltas), then checks: the
pool has no waiting request and no busy connection, the next call on the same adapter
succeeds, and no task but the test's own is left on the loop once it has run a few
iterations. A sweep cancels after
0, 1, 2... loop iterations, reaching the early await points in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx2
import pytest
from returns.result import Success

from portside.adapters.openai import AsyncOpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import (
    Delay,
    HttpError,
    OpenAITestServer,
    Reply,
    StreamFault,
    Trickle,
)
from portside.domain import ChatMessage, ChatRequest

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]

KEY = "sk-async-cancel-0123456789"
REQUEST = ChatRequest((ChatMessage.user("one two three"),), model="m")


@pytest.fixture(name="server")
def _server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(api_key=KEY, stall_seconds=10.0) as server:
        yield server


def _llm(server: OpenAITestServer) -> tuple[AsyncOpenAILLM, httpx2.AsyncClient]:
    client = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=1))
    llm = AsyncOpenAILLM(
        api_key=KEY,
        base_url=server.base_url,
        timeout=5.0,
        deadline=20.0,
        retry=RetryPolicy(attempts=2, base=5.0, cap=5.0, jitter=0.0),
        http_client=client,
    )
    return llm, client


async def _drain(llm: AsyncOpenAILLM) -> list[Any]:
    return [event async for event in llm.stream(REQUEST)]


CALLS: dict[str, Callable[[AsyncOpenAILLM], Coroutine[Any, Any, Any]]] = {
    "complete": lambda llm: llm.complete(REQUEST),
    "stream": _drain,
    "embed": lambda llm: llm.embed(["hello"]),
}


async def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def _left_clean(llm: AsyncOpenAILLM, client: httpx2.AsyncClient, call: str) -> None:
    """The invariants after a cancellation: pool free, next call works, no stray task."""
    # A reader abandoned mid-body is finalised by the loop (the SDK's and httpx's
    # nested async generators): let those few callbacks and tasks finish first.
    for _ in range(20):
        if not asyncio.all_tasks() - {asyncio.current_task()}:
            break
        await asyncio.sleep(0)
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert not pool._requests, "a request still waits in the pool"
    busy = [c for c in pool.connections if not (c.is_idle() or c.is_closed())]
    assert not busy, f"connections left busy: {busy}"
    others = asyncio.all_tasks() - {asyncio.current_task()}
    assert not others, f"tasks left running: {others}"
    outcome = await asyncio.wait_for(CALLS[call](llm), timeout=5.0)
    if call == "stream":
        assert all(isinstance(event, Success) for event in outcome), outcome
    else:
        assert isinstance(outcome, Success), outcome


def _cancel_when(
    server: OpenAITestServer, call: str, ready: Callable[[], bool], *behaviours: Any
) -> None:
    async def scenario() -> None:
        llm, client = _llm(server)
        try:
            server.script(*behaviours)
            task = asyncio.create_task(CALLS[call](llm))
            await _wait_for(ready)
            await asyncio.sleep(0.05)
            assert not task.done(), "the call ended before it could be cancelled"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await _left_clean(llm, client, call)
        finally:
            await llm.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("call", list(CALLS))
def test_cancelled_while_awaiting_the_headers(call: str, server: OpenAITestServer) -> None:
    """Cancelled while the server holds the answer back: the request is abandoned cleanly."""
    _cancel_when(server, call, lambda: len(server.requests) == 1, Delay(3.0))


@pytest.mark.parametrize("call", list(CALLS))
def test_cancelled_while_reading_the_body(call: str, server: OpenAITestServer) -> None:
    """Cancelled while a trickled body is read: the connection is closed, not leaked."""
    trickle = Trickle(0.2, Reply("one two three four five six seven eight"))
    _cancel_when(server, call, lambda: len(server.requests) == 1, trickle)


@pytest.mark.parametrize("call", list(CALLS))
def test_cancelled_during_a_backoff_wait(call: str, server: OpenAITestServer) -> None:
    """Cancelled while waiting out a Retry-After: no second request is ever sent."""
    limited = HttpError(429, type="rate_limit", headers=(("Retry-After", "4"),))
    _cancel_when(server, call, lambda: len(server.requests) == 1, limited)
    assert len(server.requests) == 2  # the refused one and the check's call, no retry


def test_a_stream_cancelled_mid_stream_then_closed(server: OpenAITestServer) -> None:
    """A consumer cancelled while awaiting the third delta, then aclose(): all released."""

    async def scenario() -> None:
        llm, client = _llm(server)
        try:
            server.script(StreamFault("stall", after=2, reply=Reply("one two three four")))
            events = llm.stream(REQUEST)
            seen = [await anext(events), await anext(events)]
            assert all(isinstance(event, Success) for event in seen)
            waiting = asyncio.create_task(anext(events))
            await asyncio.sleep(0.1)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await events.aclose()
            await _left_clean(llm, client, "stream")
        finally:
            await llm.aclose()

    asyncio.run(scenario())


def test_a_stream_left_between_deltas_then_closed(server: OpenAITestServer) -> None:
    """A consumer that stops after one delta and closes the stream frees its connection."""

    async def scenario() -> None:
        llm, client = _llm(server)
        try:
            server.script(Reply("one two three four five"))
            async with contextlib.aclosing(llm.stream(REQUEST)) as events:
                async for event in events:
                    assert isinstance(event, Success)
                    break
            await _left_clean(llm, client, "stream")
        finally:
            await llm.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("call", list(CALLS))
def test_cancelled_after_each_number_of_loop_iterations(
    call: str, server: OpenAITestServer
) -> None:
    """Cancelling after 0, 1, 2... loop iterations, up to completion, never leaks anything."""

    async def scenario() -> None:
        llm, client = _llm(server)
        try:
            for ticks in range(200):
                task = asyncio.create_task(CALLS[call](llm))
                for _ in range(ticks):
                    await asyncio.sleep(0)
                if task.done():
                    assert isinstance(task.result(), Success | list)
                    return
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await _left_clean(llm, client, call)
        finally:
            await llm.aclose()

    asyncio.run(scenario())
