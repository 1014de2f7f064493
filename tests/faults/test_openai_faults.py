"""The OpenAI adapter against every scripted fault of the local server and of a TCP proxy.

Each fault is one call through the adapter with retries off: it must come back as the
documented ``Failure`` (never an exception, never a partial answer) within the
configured read timeout plus a margin for a loaded machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from returns.result import Failure, Result, Success

import portside.domain as errors
from portside.adapters.testing import TcpFaultProxy
from portside.domain import ChatMessage, ChatRequest
from tests.faults.conftest import Campaign

pytest.importorskip("portside.adapters.openai", reason="the OpenAI adapter is not in this tree yet")
server_module = pytest.importorskip("portside.adapters.testing._openai_server")

from portside.adapters.memory import ManualClock  # noqa: E402 - after the skip checks
from portside.adapters.openai import OpenAILLM  # noqa: E402
from portside.adapters.resilience import RetryPolicy  # noqa: E402
from portside.adapters.testing import (  # noqa: E402
    Delay,
    HttpError,
    OpenAITestServer,
    RawBody,
    Reply,
    StreamFault,
)

pytestmark = pytest.mark.faults

TIMEOUT = 0.5  # the adapter's read timeout
MARGIN = 3.0  # scheduling slack on a shared 2-core machine; a hang would take 30 s
KEY = "sk-faultsuite-0123456789abcdef"
REQUEST = ChatRequest((ChatMessage.user("say something long enough to stream"),), model="m")


@pytest.fixture(name="server")
def _server() -> Iterator[OpenAITestServer]:
    # A stall lasts far longer than the read timeout: only the timeout can end it.
    with OpenAITestServer(api_key=KEY, stall_seconds=30.0) as server:
        yield server


def _llm(base_url: str, attempts: int = 1, clock: ManualClock | None = None) -> OpenAILLM:
    return OpenAILLM(
        api_key=KEY,
        base_url=base_url,
        timeout=TIMEOUT,
        connect_timeout=TIMEOUT,
        retry=RetryPolicy(attempts=attempts, base=0.5, cap=4.0, jitter=0.0),
        clock=clock or ManualClock(),
    )


@pytest.fixture(name="llm")
def _llm_fixture(server: OpenAITestServer) -> Iterator[OpenAILLM]:
    llm = _llm(server.base_url)
    yield llm
    llm.close()


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    value = call()
    return value, time.monotonic() - started


def _drain(stream: Iterator[Result[Any, errors.ServiceError]]) -> list[Result[Any, Any]]:
    return list(stream)


HTML = "text/html"
LONG = Reply(text="one two three four five six seven eight nine ten")
WHOLE_BODY_FAULTS: list[tuple[str, object, type[errors.ServiceError]]] = [
    ("429 with Retry-After", HttpError(429, headers=(("Retry-After", "7"),)), errors.RateLimited),
    ("500", HttpError(500, type="server_error"), errors.Unavailable),
    ("503", HttpError(503, type="server_error"), errors.Unavailable),
    ("401", HttpError(401, code="invalid_api_key"), errors.Unauthorized),
    ("400", HttpError(400), errors.InvalidRequest),
    ("quota", HttpError(429, code="insufficient_quota"), errors.QuotaExceeded),
    ("content filter", HttpError(400, code="content_filter"), errors.ContentFiltered),
    ("malformed JSON body", RawBody(b'{"id": "x", "choices": ['), errors.ProtocolError),
    ("HTML page", RawBody(b"<html>502</html>", content_type=HTML), errors.ProtocolError),
    ("wrong-shaped 200", RawBody(b'{"id": "x", "choices": null}'), errors.ProtocolError),
    ("empty 200", RawBody(b""), errors.ProtocolError),
    ("delay beyond the timeout", Delay(30.0, LONG), errors.TimedOut),
    ("stall", StreamFault("stall", reply=LONG), errors.TimedOut),
    ("drop mid-body", StreamFault("drop", reply=LONG), errors.Unavailable),
    ("truncated body", StreamFault("truncated", reply=LONG), errors.ProtocolError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "behaviour", "expected"), WHOLE_BODY_FAULTS, ids=[f[0] for f in WHOLE_BODY_FAULTS]
)
def test_complete_turns_each_server_fault_into_its_failure_in_bounded_time(
    fault: str,
    behaviour: Any,
    expected: type[errors.ServiceError],
    server: OpenAITestServer,
    llm: OpenAILLM,
    campaign: Campaign,
) -> None:
    """complete() returns the documented Failure for every scripted fault, within the timeout."""
    server.script(behaviour)
    result, elapsed = _timed(lambda: llm.complete(REQUEST))
    campaign.name = "openai complete faults"
    campaign.fault(fault)
    assert isinstance(result, Failure), result
    error = result.failure()
    campaign.count(failure=error.kind)
    assert isinstance(error, expected), error
    assert KEY not in str(error)
    assert KEY not in repr(error)
    assert elapsed < TIMEOUT + MARGIN
    if isinstance(error, errors.RateLimited) and fault.startswith("429"):
        assert error.retry_after == pytest.approx(7.0)


STREAM_FAULTS: list[tuple[str, object, type[errors.ServiceError]]] = [
    ("stall after 2 deltas", StreamFault("stall", after=2, reply=LONG), errors.TimedOut),
    ("drop after 2 deltas", StreamFault("drop", after=2, reply=LONG), errors.Unavailable),
    ("malformed chunk", StreamFault("malformed", after=2, reply=LONG), errors.ProtocolError),
    ("no finish reason", StreamFault("truncated", after=2, reply=LONG), errors.ProtocolError),
    ("stall before any delta", StreamFault("stall", after=0, reply=LONG), errors.TimedOut),
    ("503 before the stream", HttpError(503, type="server_error"), errors.Unavailable),
    ("429 before the stream", HttpError(429, headers=(("Retry-After", "1"),)), errors.RateLimited),
    ("HTML instead of SSE", RawBody(b"<html/>", content_type=HTML), errors.ProtocolError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "behaviour", "expected"), STREAM_FAULTS, ids=[f[0] for f in STREAM_FAULTS]
)
def test_stream_ends_with_exactly_one_failure_for_each_fault(
    fault: str,
    behaviour: Any,
    expected: type[errors.ServiceError],
    server: OpenAITestServer,
    llm: OpenAILLM,
    campaign: Campaign,
) -> None:
    """stream() yields deltas then one Failure of the documented kind, and nothing after it."""
    server.script(behaviour)
    items, elapsed = _timed(lambda: _drain(llm.stream(REQUEST)))
    campaign.name = "openai stream faults"
    campaign.fault(fault)
    assert items, "a stream must end with a final item"
    *head, last = items
    assert all(isinstance(item, Success) for item in head)
    assert all(item.unwrap().finish_reason is None for item in head)
    assert isinstance(last, Failure), last
    campaign.count(len(head), failure=last.failure().kind)
    assert isinstance(last.failure(), expected), last.failure()
    text = "".join(item.unwrap().text for item in head)
    assert LONG.text.startswith(text)  # deltas before the fault are a prefix, never garbage
    assert elapsed < TIMEOUT + MARGIN


def test_retries_stop_at_the_policy_and_honour_retry_after(
    server: OpenAITestServer, campaign: Campaign
) -> None:
    """Two 503s then a reply: three requests, backoff on the clock; Retry-After sets the wait."""
    clock = ManualClock()
    llm = _llm(server.base_url, attempts=3, clock=clock)
    try:
        server.script(
            HttpError(503, type="server_error"), HttpError(429, headers=(("Retry-After", "9"),))
        )
        result = llm.complete(REQUEST)
        assert isinstance(result, Success), result
        assert len(server.requests) == 3
        assert clock.monotonic() == pytest.approx(0.5 + 9.0)  # backoff 0.5, then Retry-After
        server.clear()
        server.script(*[HttpError(500, type="server_error")] * 3)
        failed = llm.complete(REQUEST)
        assert isinstance(failed, Failure)
        assert isinstance(failed.failure(), errors.Unavailable)
        assert len(server.requests) == 3
    finally:
        llm.close()
    campaign.name = "openai retries"
    campaign.fault("503, 429 Retry-After 9, 3x500")
    campaign.count(2, failure="Unavailable")


def test_a_started_stream_is_never_replayed(server: OpenAITestServer, campaign: Campaign) -> None:
    """A stream that dropped after yielding deltas is not retried (no duplicated text)."""
    llm = _llm(server.base_url, attempts=3)
    try:
        server.script(StreamFault("drop", after=2, reply=LONG), LONG)
        items = list(llm.stream(REQUEST))
    finally:
        llm.close()
    assert isinstance(items[-1], Failure)
    assert len(server.requests) == 1
    assert server.pending() == 1
    campaign.name = "openai stream no replay"
    campaign.fault("drop after 2 deltas")
    campaign.count(failure=items[-1].failure().kind)


@pytest.mark.parametrize("fault", ["blackhole", "stall", "cut", "close_after"])
def test_network_faults_between_adapter_and_server_are_bounded(
    fault: str, server: OpenAITestServer, campaign: Campaign
) -> None:
    """A blackholing, stalling, cutting or closing proxy gives TimedOut/Unavailable in time."""
    with TcpFaultProxy("127.0.0.1", server.port) as proxy:
        llm = _llm(f"http://127.0.0.1:{proxy.port}/v1")
        try:
            assert isinstance(llm.complete(REQUEST), Success)  # a warm pooled connection
            if fault == "blackhole":
                proxy.blackhole()
                proxy.cut()
            elif fault == "stall":
                proxy.stall()
            elif fault == "cut":
                proxy.cut()
            else:
                proxy.close_after(40)
            result, elapsed = _timed(lambda: llm.complete(REQUEST))
            if fault == "cut":
                # A cut pooled connection may be noticed before sending (a fresh
                # connection then succeeds) or after (Unavailable); never anything else.
                assert isinstance(result, Success) or isinstance(
                    result.failure(), errors.Unavailable
                )
            else:
                assert isinstance(result, Failure), result
                assert isinstance(result.failure(), errors.TimedOut | errors.Unavailable)
            assert elapsed < 2 * TIMEOUT + MARGIN
            proxy.heal()
            healed, recovery = _timed(lambda: llm.complete(REQUEST))
            if isinstance(healed, Failure):  # the first call may meet a connection reset by heal
                healed, recovery = _timed(lambda: llm.complete(REQUEST))
            assert isinstance(healed, Success), healed
        finally:
            llm.close()
    campaign.name = "openai behind a faulty proxy"
    campaign.fault(fault)
    campaign.count(3, failure=None if isinstance(result, Success) else result.failure().kind)
    campaign.recovered(recovery)
