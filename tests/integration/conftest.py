"""Fixtures for the OpenAI adapter's tests: the local server and adapters pointed at it."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from portside.adapters.memory import ManualClock
from portside.adapters.openai import OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import OpenAITestServer

#: The key the local server demands; tests check it never leaks.
API_KEY = "sk-portside-test-0123456789abcdef"

MakeLLM = Callable[..., OpenAILLM]

# Building a TLS context loads the CA bundle (~60 ms); the local server is plain HTTP,
# so one context shared by every test's HTTP client keeps the suite fast.
_TLS = ssl.create_default_context()


@pytest.fixture(name="openai_server")
def _openai_server() -> Iterator[OpenAITestServer]:
    """A fresh local OpenAI-compatible server; stalled answers end when it stops."""
    with OpenAITestServer(api_key=API_KEY, stall_seconds=10.0) as server:
        yield server


@pytest.fixture(name="make_llm")
def _make_llm(openai_server: OpenAITestServer, manual_clock: ManualClock) -> Iterator[MakeLLM]:
    """Builds OpenAILLMs on the local server and the manual clock (no retries by default)."""
    built: list[OpenAILLM] = []

    def make(**overrides: Any) -> OpenAILLM:
        options: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": openai_server.base_url,
            "clock": manual_clock,
            "timeout": 2.0,
            "retry": RetryPolicy(attempts=1),
            "model": "local-chat",
            "embedding_model": "local-embed",
            "http_client": httpx2.Client(verify=_TLS),
        }
        options.update(overrides)
        llm = OpenAILLM(**options)
        built.append(llm)
        return llm

    yield make
    for llm in built:
        llm.close()
