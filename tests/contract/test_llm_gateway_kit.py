"""The gateway rules of the LLM kit on the fake, on OpenAILLM, and on two broken controls."""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping, Sequence

import httpx2
import pytest
from returns.result import Failure, Result

from portside.adapters.llm_gateway import FallbackLLM, MemoryRateLimiter, RateLimit
from portside.adapters.memory import ManualClock
from portside.adapters.openai import OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import (
    GatewayKitOptions,
    LLMScript,
    OpenAITestServer,
    fake_llm_subject,
    run_gateway_contract,
)
from portside.domain import ChatDelta, ChatRequest, ServiceError
from portside.ports import Clock, LLMPort

pytestmark = pytest.mark.timeout(180)

_TLS = ssl.create_default_context()


def test_the_fake_meets_the_gateway_rules() -> None:
    """Fallbacks, the limiter and budgets over FakeLLM pass every gateway rule."""
    run_gateway_contract(fake_llm_subject, max_examples=30, steps=8)


@pytest.fixture(name="kit_server", scope="module")
def _kit_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(api_key="sk-gateway-kit", stall_seconds=10.0) as server:
        yield server


def test_the_openai_adapter_meets_the_gateway_rules(kit_server: OpenAITestServer) -> None:
    """The same rules over OpenAILLM talking real HTTP and SSE to the local server."""

    def subject() -> tuple[LLMPort, LLMScript]:
        kit_server.clear()
        llm = OpenAILLM(
            api_key="sk-gateway-kit",
            base_url=kit_server.base_url,
            timeout=0.5,
            retry=RetryPolicy(attempts=1),
            clock=ManualClock(),
            http_client=httpx2.Client(verify=_TLS),
        )
        return llm, kit_server

    run_gateway_contract(subject, max_examples=15, steps=6)


class ReplayingFallback(FallbackLLM):
    """Broken on purpose: moves to the next member even after a stream yielded text."""

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        last: Result[ChatDelta, ServiceError] | None = None
        for member in self.members:
            for event in member.stream(request):
                if isinstance(event, Failure):
                    last = event
                    break
                yield event
            else:
                return
        if last is not None:
            yield last


class DeafLimiter(MemoryRateLimiter):
    """Broken on purpose: ignores Retry-After (a pause changes nothing)."""

    def pause(self, model: str, seconds: float) -> None:
        """Forget the pause."""


def _replaying(members: Sequence[LLMPort], clock: Clock) -> LLMPort:
    return ReplayingFallback(tuple(members), clock=clock)


def _deaf(limits: Mapping[str, RateLimit], clock: Clock) -> MemoryRateLimiter:
    return DeafLimiter(limits, clock)


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        (GatewayKitOptions(fallback=_replaying), "a started stream"),
        (GatewayKitOptions(limiter=_deaf), "pause"),
    ],
    ids=["fallback-replays-a-started-stream", "limiter-ignores-retry-after"],
)
def test_a_broken_decorator_fails_the_gateway_rules(options: GatewayKitOptions, rule: str) -> None:
    """Each negative control breaks a gateway rule, and the kit says which."""
    with pytest.raises(AssertionError, match=rule):
        run_gateway_contract(fake_llm_subject, options, max_examples=60, steps=8)
