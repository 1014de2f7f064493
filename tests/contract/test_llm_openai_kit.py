"""The LLM contract kit against OpenAILLM over the local OpenAI-compatible server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx2
import pytest

from portside.adapters.memory import ManualClock
from portside.adapters.openai import OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import LLMKitOptions, LLMScript, OpenAITestServer, run_llm_contract
from portside.ports import LLMPort

pytestmark = pytest.mark.timeout(120)

MAX_TEXT_CHARS = 200
# The kit's timed_out failure holds the answer back; the read timeout cuts it. Long
# enough that a loaded machine never times out an ordinary answer, short enough that
# the few timed_out examples stay cheap.
READ_TIMEOUT = 0.5
_TLS = ssl.create_default_context()  # one CA-bundle load for every example's client


@pytest.fixture(name="kit_server", scope="module")
def _kit_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(api_key="sk-kit", stall_seconds=10.0) as server:
        yield server


def test_openai_adapter_meets_the_contract(kit_server: OpenAITestServer) -> None:
    """OpenAILLM over real HTTP and SSE passes every rule the fake passes."""

    def subject() -> tuple[LLMPort, LLMScript]:
        kit_server.clear()
        llm = OpenAILLM(
            api_key="sk-kit",
            base_url=kit_server.base_url,
            timeout=READ_TIMEOUT,
            # The kit counts requests: the adapter's own retries must be off.
            retry=RetryPolicy(attempts=1),
            clock=ManualClock(),
            max_embed_text_chars=MAX_TEXT_CHARS,
            http_client=httpx2.Client(verify=_TLS),
        )
        return llm, kit_server

    run_llm_contract(
        subject, LLMKitOptions(max_text_chars=MAX_TEXT_CHARS), max_examples=20, steps=8
    )
