"""The API key never shows in a repr, a log line or an error; real providers can be barred."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest
from returns.result import Failure

from portside.adapters.openai import OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import HttpError, OpenAITestServer
from portside.domain import ChatMessage, ChatRequest, InvalidRequest, ServiceError, Unauthorized
from portside.ports.llm_rules import forbid_real_llm
from tests.integration.conftest import API_KEY, MakeLLM

pytestmark = pytest.mark.timeout(20)

REQUEST = ChatRequest((ChatMessage.user("hi"),))


def _everything_shown(error: ServiceError) -> str:
    """str, repr and the full traceback (causes included) of ``error``."""
    shown = "".join(traceback.format_exception(error))
    return f"{error}\n{error!r}\n{shown}"


def test_repr_hides_the_key(make_llm: MakeLLM) -> None:
    """The adapter's repr shows its configuration but not its key."""
    llm = make_llm()
    assert API_KEY not in repr(llm)
    assert "local-chat" in repr(llm)


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
def test_errors_hide_a_key_the_server_echoes(
    make_llm: MakeLLM, openai_server: OpenAITestServer, status: int
) -> None:
    """Even when the server quotes the key back, no error text or cause shows it."""
    openai_server.script(HttpError(status, f"Incorrect API key provided: {API_KEY}."))
    result = make_llm().complete(REQUEST)
    assert isinstance(result, Failure)
    assert API_KEY not in _everything_shown(result.failure())
    assert API_KEY[:12] not in _everything_shown(result.failure())


def test_unauthorized_has_a_fixed_message(
    openai_server: OpenAITestServer,
) -> None:
    """A wrong key is Unauthorized, and the message does not quote either key."""
    llm = OpenAILLM(api_key="sk-wrong-key-999999999", base_url=openai_server.base_url)
    try:
        result = llm.complete(REQUEST)
    finally:
        llm.close()
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, Unauthorized)
    assert "sk-wrong" not in _everything_shown(error)


def test_logs_never_show_the_key(
    make_llm: MakeLLM, openai_server: OpenAITestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, across retries and failures, no log line carries the key."""
    caplog.set_level(logging.DEBUG)
    openai_server.script(HttpError(503, f"key {API_KEY} is overloaded"), HttpError(400, API_KEY))
    llm = make_llm(retry=RetryPolicy(attempts=3, jitter=0.0))
    assert isinstance(llm.complete(REQUEST), Failure)
    list(llm.stream(REQUEST))
    llm.embed(["x"])
    assert caplog.records, "the retry must have been logged"
    assert any("retrying" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in str(record.__dict__)


@pytest.fixture(name="real_llm_forbidden")
def _real_llm_forbidden() -> Iterator[None]:
    forbid_real_llm(True)
    yield
    forbid_real_llm(False)


@pytest.mark.usefixtures("real_llm_forbidden")
def test_guard_refuses_a_public_endpoint() -> None:
    """With real providers forbidden, an adapter for a non-loopback URL is refused."""
    with pytest.raises(RuntimeError, match="forbidden"):
        OpenAILLM(api_key=API_KEY, base_url="https://api.openai.com/v1")


@pytest.mark.usefixtures("real_llm_forbidden")
def test_guard_allows_the_local_server(make_llm: MakeLLM) -> None:
    """With real providers forbidden, the loopback test server still works."""
    assert make_llm().complete(REQUEST).unwrap().text == "hi"


def test_validation_happens_before_the_guard_and_the_network(make_llm: MakeLLM) -> None:
    """An invalid request is InvalidRequest even against an unreachable server."""
    llm = make_llm(base_url="http://127.0.0.1:9/v1")
    result = llm.complete(ChatRequest((ChatMessage.user("x"),), model=""))
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), InvalidRequest)


def test_pretty_printers_show_no_key() -> None:
    """Hypothesis (and IPython) pretty-print the safe repr, not every attrs field."""
    from hypothesis.vendor.pretty import pretty

    llm = OpenAILLM(api_key="sk-pretty-0123456789abcdef", base_url="http://127.0.0.1:9/v1")
    try:
        assert "sk-pretty-0123456789abcdef" not in pretty(llm)
        assert "OpenAILLM(" in pretty(llm)
    finally:
        llm.close()
