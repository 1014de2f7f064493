"""AsyncOpenAILLM against the local server's faults: deadlines on the loop's clock, retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from returns.result import Failure, Result, Success

import portside.domain as errors
from portside.adapters.clock import SystemClock
from portside.adapters.memory import ManualClock
from portside.adapters.openai import AsyncOpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import (
    Behaviour,
    Delay,
    HttpError,
    KeepAliveForever,
    OpenAITestServer,
    Reply,
    StreamFault,
    Trickle,
)
from portside.domain import ChatMessage, ChatRequest

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]

KEY = "sk-async-faults-0123456789"
REQUEST = ChatRequest((ChatMessage.user("one two three"),), model="m")
DEADLINE = 1.5
SLACK = 1.0


@pytest.fixture(name="server")
def _server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(api_key=KEY, stall_seconds=30.0) as server:
        yield server


def _llm(server: OpenAITestServer, *, attempts: int = 1, **changes: Any) -> AsyncOpenAILLM:
    settings: dict[str, Any] = {
        "api_key": KEY,
        "base_url": server.base_url,
        "timeout": 5.0,
        "connect_timeout": 1.0,
        "deadline": DEADLINE,
        "retry": RetryPolicy(attempts=attempts, base=0.2, cap=1.0, jitter=0.0),
        "clock": SystemClock(),
    }
    settings.update(changes)
    return AsyncOpenAILLM(**settings)


async def _last(llm: AsyncOpenAILLM, request: ChatRequest = REQUEST) -> Result[Any, Any]:
    items = [item async for item in llm.stream(request)]
    assert all(isinstance(item, Success) for item in items[:-1])
    return items[-1]


async def _call(llm: AsyncOpenAILLM, call: str) -> Result[Any, Any]:
    if call == "complete":
        return await llm.complete(REQUEST)
    if call == "embed":
        return await llm.embed(["hello"])
    return await _last(llm)


DEADLINE_FAULTS = [
    ("keep-alive comments forever", KeepAliveForever(0.2)),
    ("a byte every half second", Trickle(0.5, Reply("one two three four five six seven"))),
    ("never answers", Delay(30.0)),
]


@pytest.mark.parametrize("call", ["complete", "stream", "embed"])
@pytest.mark.parametrize(
    "behaviour", [f[1] for f in DEADLINE_FAULTS], ids=[f[0] for f in DEADLINE_FAULTS]
)
def test_every_call_ends_timed_out_within_its_deadline(
    call: str, behaviour: Behaviour, server: OpenAITestServer
) -> None:
    """Trickles, keep-alives and silence end TimedOut within deadline + 1 s on the loop."""
    server.script(behaviour, behaviour, behaviour)

    async def scenario() -> tuple[Result[Any, Any], float]:
        llm = _llm(server, attempts=3)
        started = time.monotonic()
        try:
            return await _call(llm, call), time.monotonic() - started
        finally:
            await llm.aclose()

    result, elapsed = asyncio.run(scenario())
    assert isinstance(result, Failure), result
    assert isinstance(result.failure(), errors.TimedOut), result.failure()
    assert elapsed < DEADLINE + SLACK, elapsed


def test_a_request_deadline_replaces_the_adapter_setting(server: OpenAITestServer) -> None:
    """ChatRequest(deadline=0.5) ends a keep-alive stream in about half a second."""
    server.script(KeepAliveForever(0.1))
    request = ChatRequest(REQUEST.messages, model="m", deadline=0.5)

    async def scenario() -> tuple[Result[Any, Any], float]:
        llm = _llm(server, deadline=30.0)
        started = time.monotonic()
        try:
            return await _last(llm, request), time.monotonic() - started
        finally:
            await llm.aclose()

    result, elapsed = asyncio.run(scenario())
    assert isinstance(result.failure(), errors.TimedOut)
    assert elapsed < 0.5 + SLACK


@pytest.mark.parametrize("call", ["complete", "stream", "embed"])
def test_retry_after_is_honoured_on_the_manual_clock(call: str, server: OpenAITestServer) -> None:
    """A 429 asking for 1.5 s is waited exactly 1.5 s (on the clock), then retried once."""
    clock = ManualClock()
    server.script(HttpError(429, type="rate_limit", headers=(("Retry-After", "1.5"),)))

    async def scenario() -> Result[Any, Any]:
        llm = _llm(server, attempts=2, clock=clock, deadline=60.0)
        try:
            return await _call(llm, call)
        finally:
            await llm.aclose()

    assert isinstance(asyncio.run(scenario()), Success)
    assert clock.monotonic() == pytest.approx(1.5)
    assert len(server.requests) == 2


def test_backoff_waits_on_the_event_loop(server: OpenAITestServer) -> None:
    """While the adapter waits out a Retry-After on the system clock, other tasks run."""
    server.script(HttpError(503, type="server_error", headers=(("Retry-After", "0.3"),)))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def scenario() -> Result[Any, Any]:
        llm = _llm(server, attempts=2, deadline=10.0)
        side = asyncio.create_task(ticker())
        try:
            return await llm.complete(REQUEST)
        finally:
            side.cancel()
            await llm.aclose()

    assert isinstance(asyncio.run(scenario()), Success)
    assert ticks >= 10, "the loop was blocked during the backoff"


def test_a_stream_is_never_repeated_after_a_delta(server: OpenAITestServer) -> None:
    """A stream dropped after its first delta ends Unavailable, with one request sent."""
    server.script(StreamFault("drop", after=1, reply=Reply("one two three")))

    async def scenario() -> list[Result[Any, Any]]:
        llm = _llm(server, attempts=3, deadline=10.0)
        try:
            return [item async for item in llm.stream(REQUEST)]
        finally:
            await llm.aclose()

    items = asyncio.run(scenario())
    assert isinstance(items[0], Success)
    assert isinstance(items[-1], Failure)
    assert isinstance(items[-1].failure(), errors.Unavailable | errors.ProtocolError)
    assert len(server.requests) == 1


def test_calls_after_aclose_are_unavailable(server: OpenAITestServer) -> None:
    """A closed adapter refuses every call with Unavailable and sends nothing."""

    async def scenario() -> list[Result[Any, Any]]:
        llm = _llm(server)
        await llm.aclose()
        return [await _call(llm, call) for call in ("complete", "stream", "embed")]

    for result in asyncio.run(scenario()):
        assert isinstance(result.failure(), errors.Unavailable)
    assert server.requests == []
