"""Secrets never reach a log line or an error, even with every logger at DEBUG."""

from __future__ import annotations

import io
import logging
import string
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure

from portside.adapters.memory import ManualClock
from portside.domain import ChatMessage, ChatRequest

pytest.importorskip("portside.adapters.openai")
from portside.adapters.openai import OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import HttpError, OpenAITestServer

api_keys = st.text(alphabet=string.ascii_letters + string.digits, min_size=24, max_size=40).map(
    lambda s: "sk-proj-" + s
)
REQUEST = ChatRequest((ChatMessage.user("hello"),), model="m")


@contextmanager
def _all_logs() -> Iterator[io.StringIO]:
    """Every record of every logger, DEBUG and up, formatted with its arguments."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield sink
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture(name="server", scope="module")
def _server() -> Iterator[OpenAITestServer]:
    # No key check on the server: each example scripts the refusals it wants.
    with OpenAITestServer() as server:
        yield server


@settings(max_examples=15)  # each example builds an SDK client and makes HTTP calls
@given(key=api_keys)
def test_the_api_key_is_in_no_log_line_or_error(server: OpenAITestServer, key: str) -> None:
    """With DEBUG logging everywhere, refusals, retries and errors never show the key."""
    server.script(
        HttpError(401, message=f"Incorrect API key provided: {key}", code="invalid_api_key"),
        HttpError(503, message=f"upstream said {key}", type="server_error"),
        HttpError(500, message="again", type="server_error"),
        HttpError(400, message=f"bad request for key {key}"),
    )
    with _all_logs() as logs:
        llm = OpenAILLM(
            api_key=key,
            base_url=server.base_url,
            timeout=2.0,
            retry=RetryPolicy(attempts=2, base=0.1, jitter=0.0),
            clock=ManualClock(),
        )
        try:
            results = [llm.complete(REQUEST) for _ in range(3)]
            shown = [repr(llm)]
        finally:
            llm.close()
    assert all(isinstance(r, Failure) for r in results), results
    for result in results:
        error = result.failure()
        shown += [str(error), repr(error), str(error.__cause__), repr(error.__cause__)]
    shown.append(logs.getvalue())
    assert "openai" in logs.getvalue()  # the SDK and the adapter did log
    for text in shown:
        assert key not in text


@pytest.mark.services
def test_a_redis_password_is_in_no_log_line_or_error(redis_url: str) -> None:
    """A refused Redis password shows in no error, repr or log line."""
    redis_cache = pytest.importorskip("portside.adapters.redis._cache")
    password = "Zq9-unlikely-redis-password-77"
    host = redis_url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    with _all_logs() as logs:
        cache = redis_cache.RedisCache.from_url(
            f"redis://no-such-user:{password}@{host}/0", namespace="ps-sec"
        )
        try:
            result = cache.get("k")
            shown = [repr(cache), str(cache)]
        finally:
            cache.close()
    assert isinstance(result, Failure), result  # the server has no such user
    error = result.failure()
    shown += [str(error), repr(error), logs.getvalue()]
    for text in shown:
        assert password not in text
