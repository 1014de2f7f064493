"""The OpenAI adapter's seven defects of the fault campaign, each against the local server.

Every call here ends as a typed result within its deadline plus one second, on the
system clock: trickled bodies, keep-alive comments forever, a server that never
answers, 503/504/529 with Retry-After, corrupt gzip, redirect loops, plain JSON where a
stream was asked for, and finish reasons from outside OpenAI's list. No secret shows in
any ``traceback.format_exception`` output.
"""

from __future__ import annotations

import gzip
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from returns.result import Failure, Result, Success

import portside.domain as errors
from portside.adapters.clock import SystemClock
from portside.adapters.memory import ManualClock
from portside.adapters.openai import OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import (
    Delay,
    EchoKey,
    HttpError,
    KeepAliveForever,
    OpenAITestServer,
    RawBody,
    RedirectLoop,
    Reply,
    Trickle,
)
from portside.domain import ChatMessage, ChatRequest
from portside.ports import LLMPort

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]

KEY = "sk-deadline-0123456789abcdef"
REQUEST = ChatRequest((ChatMessage.user("one two three"),), model="m")
DEADLINE = 1.5
SLACK = 1.0  # the bound: every call ends within its deadline + 1 s


@pytest.fixture(name="server")
def _server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(api_key=KEY, stall_seconds=30.0) as server:
        yield server


def _llm(server: OpenAITestServer, *, attempts: int = 1, **changes: Any) -> OpenAILLM:
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
    return OpenAILLM(**settings)


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    value = call()
    return value, time.monotonic() - started


def _last(llm: LLMPort, request: ChatRequest = REQUEST) -> Result[Any, errors.ServiceError]:
    items = list(llm.stream(request))
    assert all(isinstance(item, Success) for item in items[:-1])
    return items[-1]


def _chain_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


# --- 1 and 2: keys are checked when the adapter is built, and never leak ------------------


@pytest.mark.parametrize(
    "key",
    [
        "sk-abc\u200bdef-0123456789",  # a zero-width space from a paste
        "sk-abcdef-0123456789\n",  # a trailing newline from a file
        "sk-abc def-0123456789",
        "sk-ключ-0123456789",
        "sk-abc\x00def",
    ],
    ids=["zero-width-space", "newline", "space", "non-ascii", "nul"],
)
def test_a_key_no_header_can_carry_is_refused_when_built(
    key: str, server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key with a newline, space, NUL or non-ASCII character raises ValueError at build."""
    # An environment variable cannot hold NUL: that one is tried as an argument only.
    for given in (key, None) if "\x00" not in key else (key,):
        if given is None:
            monkeypatch.setenv("OPENAI_API_KEY", key)
        with pytest.raises(ValueError, match="the API key holds") as caught:
            OpenAILLM(api_key=given, base_url=server.base_url)
        assert key.strip() not in _chain_text(caught.value)
    assert server.requests == []


def test_a_key_the_server_echoes_never_reaches_the_error_or_its_chain(
    server: OpenAITestServer,
) -> None:
    """A server that quotes the Authorization header: the key is nowhere in the traceback."""
    llm = _llm(server)
    try:
        for call in ("complete", "stream", "embed"):
            server.script(EchoKey(401 if call != "embed" else 400))
            if call == "complete":
                result = llm.complete(REQUEST)
            elif call == "stream":
                result = _last(llm)
            else:
                result = llm.embed(["hello"])
            assert isinstance(result, Failure), result
            error = result.failure()
            text = _chain_text(error)
            assert KEY not in text, text
            assert KEY not in repr(error)
            if call == "embed":  # a 400 keeps the server's words, with the key masked
                assert "Incorrect API key provided: Bearer ***" in error.message
    finally:
        llm.close()


# --- 3: Retry-After on every status that carries it ------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, errors.RateLimited),
        (503, errors.Unavailable),
        (504, errors.TimedOut),
        (529, errors.Unavailable),
    ],
)
def test_retry_after_is_honoured_on_every_status_that_carries_it(
    status: int, kind: type[errors.ServiceError], server: OpenAITestServer
) -> None:
    """A 429/503/504/529 asking for 1.5 s is waited exactly 1.5 s, then retried once."""
    clock = ManualClock()
    llm = _llm(server, attempts=2, clock=clock, deadline=60.0)
    try:
        asked = HttpError(status, type="server_error", headers=(("Retry-After", "1.5"),))
        server.script(asked)
        assert isinstance(llm.complete(REQUEST), Success)
        assert clock.monotonic() == pytest.approx(1.5)
        assert len(server.requests) == 2
        server.script(asked)
        failed = _llm(server, attempts=1).complete(REQUEST)
        assert isinstance(failed, Failure)
        error = failed.failure()
        assert isinstance(error, kind)
        assert getattr(error, "retry_after", None) == pytest.approx(1.5)
    finally:
        llm.close()


def test_a_retry_after_beyond_the_deadline_is_not_waited(server: OpenAITestServer) -> None:
    """A 503 asking for 30 s inside a 1.5 s deadline returns at once with retry_after."""
    llm = _llm(server, attempts=3)
    try:
        server.script(HttpError(503, type="server_error", headers=(("Retry-After", "30"),)))
        result, elapsed = _timed(lambda: llm.complete(REQUEST))
        assert isinstance(result, Failure)
        assert isinstance(result.failure(), errors.Unavailable)
        assert result.failure().retry_after == pytest.approx(30.0)
        assert len(server.requests) == 1
        assert elapsed < 1.0
    finally:
        llm.close()


# --- 4: a total deadline per call -------------------------------------------------------

DEADLINE_FAULTS = [
    ("keep-alive comments forever", KeepAliveForever(0.2)),
    ("a byte every half second", Trickle(0.5, Reply("one two three four five six seven"))),
    ("never answers", Delay(30.0)),
]


@pytest.mark.parametrize("call", ["complete", "stream"])
@pytest.mark.parametrize(
    "behaviour", [f[1] for f in DEADLINE_FAULTS], ids=[f[0] for f in DEADLINE_FAULTS]
)
def test_every_call_ends_timed_out_within_its_deadline(
    call: str, behaviour: object, server: OpenAITestServer
) -> None:
    """Trickles, keep-alives and silence end TimedOut within deadline + 1 s, retries included."""
    # Three attempts and a read timeout longer than the deadline: only the deadline ends it.
    llm = _llm(server, attempts=3)
    try:
        server.script(behaviour, behaviour, behaviour)
        if call == "complete":
            result, elapsed = _timed(lambda: llm.complete(REQUEST))
        else:
            result, elapsed = _timed(lambda: _last(llm))
    finally:
        llm.close()
    assert isinstance(result, Failure), result
    assert isinstance(result.failure(), errors.TimedOut), result.failure()
    assert elapsed < DEADLINE + SLACK, elapsed


def test_a_request_deadline_replaces_the_adapter_setting(server: OpenAITestServer) -> None:
    """ChatRequest(deadline=0.5) ends a keep-alive stream in about half a second."""
    llm = _llm(server, deadline=30.0)
    try:
        server.script(KeepAliveForever(0.1))
        request = ChatRequest(REQUEST.messages, model="m", deadline=0.5)
        result, elapsed = _timed(lambda: _last(llm, request))
    finally:
        llm.close()
    assert isinstance(result.failure(), errors.TimedOut)
    assert elapsed < 0.5 + SLACK


def test_embeddings_end_within_the_deadline(server: OpenAITestServer) -> None:
    """An embeddings body that never finishes is TimedOut within deadline + 1 s."""
    llm = _llm(server, attempts=3)
    try:
        server.script(KeepAliveForever(0.2))
        result, elapsed = _timed(lambda: llm.embed(["hello"]))
    finally:
        llm.close()
    assert isinstance(result.failure(), errors.TimedOut)
    assert elapsed < DEADLINE + SLACK


def test_a_slow_but_steady_answer_within_the_deadline_succeeds(server: OpenAITestServer) -> None:
    """A trickle that finishes before the deadline is a normal answer."""
    llm = _llm(server, deadline=10.0)
    try:
        server.script(Trickle(0.001, Reply("quick")))
        result = llm.complete(REQUEST)
    finally:
        llm.close()
    assert isinstance(result, Success), result
    assert result.unwrap().text == "quick"


# --- 5: configuration errors at build, honest labels, no wasted attempts ------------------


@pytest.mark.parametrize(
    ("base_url", "words"),
    [
        ("http://127.0.0.1:99999/v1", "port"),
        ("http://127.0.0.1:0/v1", "port"),
        ("http://127.0.0.1:abc/v1", "port"),
        ("ftp://127.0.0.1/v1", "http:// or https://"),
        ("127.0.0.1:8080/v1", "http:// or https://"),
        ("localhost/v1", "http:// or https://"),
        ("http:///v1", "no host"),
        ("http://127.0.0.1:8080/v1\n", "whitespace"),
    ],
)
def test_a_base_url_no_request_could_use_is_refused_when_built(base_url: str, words: str) -> None:
    """Bad ports, other schemes, no scheme or no host raise ValueError at build, not later."""
    with pytest.raises(ValueError, match=words):
        OpenAILLM(api_key=KEY, base_url=base_url)


def test_a_corrupt_gzip_body_is_a_protocol_error(server: OpenAITestServer) -> None:
    """A body labelled gzip that is not gzip is ProtocolError, on complete and embed."""
    llm = _llm(server)
    corrupt = RawBody(b"\x1f\x8b\x08garbage", headers=(("Content-Encoding", "gzip"),))
    try:
        server.script(corrupt, corrupt)
        for result in (llm.complete(REQUEST), llm.embed(["hello"])):
            assert isinstance(result, Failure)
            assert isinstance(result.failure(), errors.ProtocolError), result.failure()
            assert "gzip" in result.failure().message
        good = gzip.compress(
            b'{"choices": [{"message": {"content": "zipped"}, "finish_reason": "stop"}]}'
        )
        server.script(RawBody(good, headers=(("Content-Encoding", "gzip"),)))
        assert llm.complete(REQUEST).unwrap().text == "zipped"
    finally:
        llm.close()


@pytest.mark.parametrize("call", ["complete", "stream", "embed"])
def test_a_redirect_loop_is_capped_and_never_retried(call: str, server: OpenAITestServer) -> None:
    """A 307 loop costs max_redirects + 1 requests once, as a ProtocolError, not 63."""
    llm = _llm(server, attempts=3, max_redirects=3)
    try:
        server.script(RedirectLoop())
        if call == "complete":
            result = llm.complete(REQUEST)
        elif call == "stream":
            result = _last(llm)
        else:
            result = llm.embed(["hello"])
    finally:
        llm.close()
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), errors.ProtocolError), result.failure()
    assert "redirect" in result.failure().message
    assert len(server.requests) == 4


def test_a_plain_json_answer_to_a_stream_says_so(server: OpenAITestServer) -> None:
    """A server answering stream=true with a JSON body is a ProtocolError naming that."""
    llm = _llm(server)
    try:
        body = b'{"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}'
        server.script(RawBody(body))
        result = _last(llm)
    finally:
        llm.close()
    assert isinstance(result.failure(), errors.ProtocolError)
    assert "application/json, not server-sent events" in result.failure().message
    assert "truncated" not in result.failure().message


# --- 6: foreign finish reasons ----------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "normalised"),
    [("end_turn", "stop"), ("eos", "stop"), ("max_tokens", "length"), (None, "stop")],
)
def test_a_foreign_finish_reason_is_kept_with_a_normalised_one_and_not_retried(
    said: str | None, normalised: str, server: OpenAITestServer
) -> None:
    """end_turn, eos, max_tokens or null: a Success after one request, the reason kept."""
    llm = _llm(server, attempts=3)
    try:
        body = (
            b'{"model": "m", "choices": [{"message": {"content": "done"}, "finish_reason": '
            + (b"null" if said is None else b'"' + said.encode() + b'"')
            + b"}]}"
        )
        server.script(RawBody(body))
        result = llm.complete(REQUEST)
        assert isinstance(result, Success), result
        completion = result.unwrap()
        assert (completion.text, completion.finish_reason) == ("done", normalised)
        assert completion.provider_finish_reason == (None if said in (None,) else said)
        assert len(server.requests) == 1
        if said is not None:
            server.script(Reply("streamed done", finish_reason=said))
            final = _last(llm).unwrap()
            assert (final.finish_reason, final.provider_finish_reason) == (normalised, said)
    finally:
        llm.close()
