"""The LLM kit's gateway rules: fallbacks, the rate limiter and budgets over any adapter.

The same ``LLMFactory`` as the LLM contract kit gives the adapter under test and its
backend's script; the machine puts the gateway decorators over it, on a manual clock,
and checks:

- a fallback chain moves on after a retryable failure and answers from the next member;
  a non-retryable failure comes back at once; a stream that has yielded text is never
  replayed on another member (it ends with its own failure, and only one request was
  sent);
- a limiter of N requests a minute admits N, refuses the next before sending with the
  wait until the oldest leaves the window, and admits again once it has; a 429's
  ``Retry-After`` pauses every caller sharing the limiter, and a waiting caller goes
  through once the pause is over;
- a budget refuses a tenant's call with ``QuotaExceeded`` before sending once the
  tenant spent its limit, prices each answer by its usage, and leaves other tenants
  alone.

``GatewayKitOptions`` picks the fallback and limiter classes, so the kit's negative
controls (a fallback that replays a started stream, a limiter that ignores
``Retry-After``) can show the rules catch them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import attrs
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from returns.result import Failure, Result, Success

from portside.adapters.llm_gateway import (
    Budget,
    FallbackLLM,
    MemoryRateLimiter,
    Price,
    PricedLLM,
    PriceTable,
    RateLimit,
    RateLimitedLLM,
    RateLimiter,
)
from portside.adapters.memory._clock import ManualClock
from portside.adapters.memory._llm import FAILURE_KINDS
from portside.adapters.observability import Metrics
from portside.adapters.testing._llm_kit import LLMFactory, collect_stream, fake_llm_subject
from portside.domain._errors import (
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    ServiceError,
)
from portside.domain._llm import ChatMessage, ChatRequest, Usage
from portside.ports._clock import Clock
from portside.ports._llm import LLMPort

__all__ = [
    "FallbackFactory",
    "GatewayContract",
    "GatewayKitOptions",
    "LimiterFactory",
    "gateway_contract",
    "run_gateway_contract",
]

#: Builds the fallback chain under test over ``members``, sleeping on ``clock``.
FallbackFactory = Callable[[Sequence[LLMPort], Clock], LLMPort]
#: Builds the limiter under test with ``limits``, on ``clock``.
LimiterFactory = Callable[[Mapping[str, RateLimit], Clock], RateLimiter]

HELLO = ChatRequest((ChatMessage.user("hello"),))
_WORD = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=6)


def _chain(members: Sequence[LLMPort], clock: Clock) -> LLMPort:
    return FallbackLLM(tuple(members), clock=clock)


def _limiter(limits: Mapping[str, RateLimit], clock: Clock) -> RateLimiter:
    return MemoryRateLimiter(limits, clock)


@attrs.frozen
class GatewayKitOptions:
    """The decorators under test, and the failure kinds the backend can script."""

    fallback: FallbackFactory = _chain
    limiter: LimiterFactory = _limiter
    retryable_kinds: tuple[str, ...] = ("rate_limited", "unavailable")
    final_kinds: tuple[str, ...] = ("unauthorized", "quota_exceeded", "content_filtered")


def _error(result: Result[Any, ServiceError], what: str) -> ServiceError:
    match result:
        case Failure(ServiceError() as error):
            return error
    raise AssertionError(f"{what} should have failed, got {result!r}")


def _text(result: Result[Any, ServiceError], what: str) -> str:
    match result:
        case Success(completion):
            return str(completion.text)
    raise AssertionError(f"{what} failed unexpectedly: {result!r}")


class GatewayContract(RuleBasedStateMachine):
    """The gateway rules; ``gateway_contract(factory)`` binds them to an adapter."""

    factory: ClassVar[LLMFactory] = staticmethod(fake_llm_subject)
    options: ClassVar[GatewayKitOptions] = GatewayKitOptions()

    def __init__(self) -> None:
        super().__init__()
        self.llm, self.script = type(self).factory()
        self.sent = self.script.received()
        self.clock = ManualClock()

    def teardown(self) -> None:
        """Close the port under test."""
        self.llm.close()

    def _direct(self, expected: str) -> None:
        """Take a scripted answer left for later straight from the adapter."""
        assert _text(self.llm.complete(HELLO), "complete") == expected
        self.sent += 1

    # --- fallbacks ------------------------------------------------------------------

    @rule(data=st.data(), words=st.lists(_WORD, min_size=1, max_size=4), streamed=st.booleans())
    def fallback_moves_on_after_a_retryable_failure(
        self, data: st.DataObject, words: list[str], streamed: bool
    ) -> None:
        """A retryable failure of the first member is answered by the next one."""
        kind = data.draw(st.sampled_from(self.options.retryable_kinds), label="kind")
        chain = self.options.fallback([self.llm, self.llm], self.clock)
        text = " ".join(words)
        self.script.fail(kind)  # type: ignore[arg-type]
        self.script.reply(text)
        if streamed:
            collected = collect_stream(chain.stream(HELLO))
            assert collected.error is None, f"the chain did not move on: {collected.error!r}"
            assert collected.completion is not None
            assert collected.completion.text == text
        else:
            assert _text(chain.complete(HELLO), "the chain") == text
        self.sent += 2

    @rule(data=st.data())
    def fallback_returns_a_final_failure_at_once(self, data: st.DataObject) -> None:
        """A non-retryable failure (a refused key, a spent quota) is not tried elsewhere."""
        kind = data.draw(st.sampled_from(self.options.final_kinds), label="kind")
        chain = self.options.fallback([self.llm, self.llm], self.clock)
        self.script.fail(kind)  # type: ignore[arg-type]
        self.script.reply("left for later")
        error = _error(chain.complete(HELLO), "the chain")
        self.sent += 1
        assert isinstance(error, FAILURE_KINDS[kind]), f"{kind} came back as {error.kind}"  # type: ignore[index]
        assert self.script.received() == self.sent, "a final failure was tried on another member"
        self._direct("left for later")

    @rule(n=st.integers(1, 3), words=st.lists(_WORD, min_size=3, max_size=6))
    def fallback_never_replays_a_started_stream(self, n: int, words: list[str]) -> None:
        """A stream cut after it yielded text ends with its failure; no other member runs."""
        chain = self.options.fallback([self.llm, self.llm], self.clock)
        text = " ".join(words)
        self.script.drop_stream_after(n, text=text)
        self.script.reply("a second answer")
        collected = collect_stream(chain.stream(HELLO))
        self.sent += 1
        assert isinstance(collected.error, ProtocolError), (
            f"a started stream must end with its own failure, got {collected!r}"
        )
        assert self.script.received() == self.sent, "a started stream was replayed"
        self._direct("a second answer")

    # --- the limiter ----------------------------------------------------------------

    @rule(limit=st.integers(1, 4), gap=st.floats(0.0, 5.0), streamed=st.booleans())
    def limiter_caps_requests_per_window(self, limit: int, gap: float, streamed: bool) -> None:
        """N requests a minute: N go, the next is refused unsent, and goes a window later."""
        limiter = self.options.limiter({"*": RateLimit(requests=limit)}, self.clock)
        gated = RateLimitedLLM(self.llm, limiter, policy="fail", clock=self.clock)
        for _ in range(limit):
            self.script.reply("admitted")
            assert _text(gated.complete(HELLO), "an admitted call") == "admitted"
            self.sent += 1
            self.clock.advance(gap)
        if streamed:
            events = list(gated.stream(HELLO))
            assert len(events) == 1, f"a refused stream yields one Failure, got {events!r}"
            error = _error(events[0], "the call over the limit")
        else:
            error = _error(gated.complete(HELLO), "the call over the limit")
        assert isinstance(error, RateLimited), f"over the limit gave {error.kind}"
        assert self.script.received() == self.sent, "a call over the limit was sent"
        expected = 60.0 - gap * limit
        assert error.retry_after is not None
        assert abs(error.retry_after - expected) < 1e-6, (
            f"retry_after {error.retry_after} should be the wait until the oldest leaves"
        )
        self.clock.advance(error.retry_after)
        self.script.reply("admitted again")
        assert _text(gated.complete(HELLO), "a call a window later") == "admitted again"
        self.sent += 1

    @rule(retry_after=st.integers(1, 30))
    def retry_after_pauses_every_caller_sharing_the_limiter(self, retry_after: int) -> None:
        """A 429 one caller met stops the others before they send; a waiting one goes after."""
        limiter = self.options.limiter({"*": RateLimit()}, self.clock)
        first = RateLimitedLLM(self.llm, limiter, policy="fail", clock=self.clock)
        other = RateLimitedLLM(self.llm, limiter, policy="fail", clock=self.clock)
        waiting = RateLimitedLLM(self.llm, limiter, policy="wait", max_wait=60, clock=self.clock)
        self.script.fail("rate_limited", retry_after=retry_after)
        met = _error(first.complete(HELLO), "the call that met the 429")
        self.sent += 1
        assert isinstance(met, RateLimited)
        refused = _error(other.complete(HELLO), "another caller during the pause")
        assert isinstance(refused, RateLimited), f"during a pause: {refused.kind}"
        assert self.script.received() == self.sent, "another caller sent during the pause"
        assert refused.retry_after is not None
        assert abs(refused.retry_after - retry_after) < 1e-6
        started = self.clock.monotonic()
        self.script.reply("after the pause")
        assert _text(waiting.complete(HELLO), "a waiting caller") == "after the pause"
        self.sent += 1
        assert abs(self.clock.monotonic() - started - retry_after) < 1e-6, "waited the pause"

    # --- budgets --------------------------------------------------------------------

    @rule(
        limit=st.integers(1, 50),
        usages=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=4),
    )
    def budget_refuses_before_sending(self, limit: int, usages: list[tuple[int, int]]) -> None:
        """Priced by usage; once a tenant spent its limit its calls are refused unsent."""
        # One currency unit per token: costs are the token counts, exactly.
        prices = PriceTable({"*": Price(input=1_000_000, output=2_000_000)})
        budget = Budget({"capped": float(limit)})
        priced = PricedLLM(self.llm, prices, budget, metrics=Metrics())
        capped = attrs.evolve(HELLO, metadata={"tenant": "capped"})
        spent = 0.0
        for index, (given, made) in enumerate(usages):
            if spent >= limit:
                error = _error(priced.complete(capped), "a call over the budget")
                assert isinstance(error, QuotaExceeded), f"over the budget gave {error.kind}"
                assert self.script.received() == self.sent, "a call over the budget was sent"
                continue
            self.script.reply(f"answer {index}", usage=Usage(given, made))
            completion = priced.complete(capped).unwrap()
            self.sent += 1
            assert completion.cost == given + 2 * made, "the cost is the usage at its price"
            spent += given + 2 * made
        assert budget.spent("capped") == spent
        self.script.reply("another tenant")
        assert _text(priced.complete(HELLO), "another tenant") == "another tenant"
        self.sent += 1

    @invariant()
    def each_call_reaches_the_backend_as_counted(self) -> None:
        """The backend saw exactly the calls the rules expected to send."""
        assert self.script.received() == self.sent, (
            f"the backend saw {self.script.received()} calls, the kit expected {self.sent}"
        )


def gateway_contract(
    factory: LLMFactory, options: GatewayKitOptions | None = None
) -> type[GatewayContract]:
    """The gateway rules bound to ``factory``; its ``.TestCase`` runs them."""
    namespace = {"factory": staticmethod(factory), "options": options or GatewayKitOptions()}
    return type("BoundGatewayContract", (GatewayContract,), namespace)


def run_gateway_contract(
    factory: LLMFactory,
    options: GatewayKitOptions | None = None,
    *,
    max_examples: int = 20,
    steps: int = 6,
    settings: Settings | None = None,
) -> None:
    """Run the gateway rules against ``factory``'s subjects; raise on the first violation."""
    chosen = settings or Settings(max_examples=max_examples, stateful_step_count=steps)
    run_state_machine_as_test(gateway_contract(factory, options), settings=chosen)
