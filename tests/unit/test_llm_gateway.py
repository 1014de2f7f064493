"""Fallback chains, rate limits, prices and budgets over fakes, on a manual clock."""

from __future__ import annotations

import attrs
import pytest
from returns.result import Failure, Success

from portside.adapters.llm_cache import CachingLLM
from portside.adapters.llm_gateway import (
    Budget,
    FallbackLLM,
    MemoryRateLimiter,
    Price,
    PricedLLM,
    PriceTable,
    RateLimit,
    RateLimitedLLM,
    estimate_tokens,
)
from portside.adapters.memory import FakeLLM, ManualClock, MemoryCache
from portside.adapters.observability import Metrics
from portside.adapters.resilience import RetryPolicy
from portside.adapters.testing import collect_stream
from portside.domain import (
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    QuotaExceeded,
    RateLimited,
    Unavailable,
    Usage,
)

HELLO = ChatRequest((ChatMessage.user("hello"),), seed=1, temperature=0)


def _members() -> tuple[FakeLLM, FakeLLM]:
    return FakeLLM(model="primary"), FakeLLM(model="backup")


# --- fallbacks ----------------------------------------------------------------------------


def test_the_first_member_that_answers_serves_and_says_so() -> None:
    """An Unavailable first member moves the call to the next; Completion.model names it."""
    first, second = _members()
    first.fail("unavailable")
    chain = FallbackLLM([first, second], clock=ManualClock())
    completion = chain.complete(HELLO).unwrap()
    assert (completion.text, completion.model) == ("hello", "backup")
    assert (first.received(), second.received()) == (1, 1)


def test_the_budget_is_shared_and_passes_back_off() -> None:
    """attempts=4 over two members: two passes, with the retry policy's wait between them."""
    first, second = _members()
    for fake in (first, second):
        fake.fail("unavailable")
    clock = ManualClock()
    retry = RetryPolicy(attempts=3, base=0.5, jitter=0.0)
    chain = FallbackLLM([first, second], attempts=4, retry=retry, clock=clock)
    assert chain.complete(HELLO).unwrap().model == "primary"
    assert (first.received(), second.received()) == (2, 1)
    assert clock.monotonic() - ManualClock().monotonic() == pytest.approx(0.5)
    for fake in (first, second, first, second):
        fake.fail("unavailable")
    assert isinstance(chain.complete(HELLO).failure(), Unavailable)
    assert (first.received(), second.received()) == (4, 3)


def test_a_wait_past_the_deadline_ends_the_chain() -> None:
    """A Retry-After beyond the chain's deadline is returned at once, not slept."""
    first, second = _members()
    first.fail("rate_limited", retry_after=500)
    second.fail("rate_limited", retry_after=500)
    clock = ManualClock()
    chain = FallbackLLM([first, second], attempts=4, deadline=10, clock=clock, retry=RetryPolicy())
    error = chain.complete(HELLO).failure()
    assert isinstance(error, RateLimited)
    assert clock.monotonic() == ManualClock().monotonic()


def test_members_get_what_is_left_of_the_deadline() -> None:
    """Each member's request carries the chain's remaining deadline."""
    first, second = _members()
    chain = FallbackLLM([first, second], deadline=7.0, clock=ManualClock())
    chain.complete(HELLO)
    assert first.requests[-1].deadline == pytest.approx(7.0)


def test_no_member_is_tried_after_the_deadline() -> None:
    """A member that used up the deadline ends the chain with its failure; no next member."""
    clock = ManualClock()

    class Slow(FakeLLM):
        def complete(self, request: ChatRequest):  # type: ignore[no-untyped-def]
            clock.advance(20)
            return Failure(Unavailable(service="x", operation="complete"))

    backup = FakeLLM()
    chain = FallbackLLM([Slow(), backup], deadline=10, clock=clock)
    assert isinstance(chain.complete(HELLO).failure(), Unavailable)
    assert backup.received() == 0


def test_invalid_requests_are_refused_by_the_chain_itself() -> None:
    """A bad request is InvalidRequest before any member sees it."""
    first, second = _members()
    chain = FallbackLLM([first, second], clock=ManualClock())
    assert isinstance(chain.complete("hello").failure(), InvalidRequest)  # type: ignore[arg-type]
    assert first.received() == 0


def test_embeddings_stay_on_the_first_member_unless_asked() -> None:
    """Vectors of two models do not mix: embed uses the first member only by default."""
    first, second = _members()
    first.fail("unavailable")
    assert isinstance(FallbackLLM([first, second]).embed(["a"]).failure(), Unavailable)
    first.fail("unavailable")
    chain = FallbackLLM([first, second], embed_fallback=True, clock=ManualClock())
    assert chain.embed(["a"]).unwrap().model == "fake-embedding"
    assert second.received() == 1


def test_a_stream_that_fails_before_text_moves_on() -> None:
    """A stream whose first event is a failure is served by the next member."""
    first, second = _members()
    first.fail("rate_limited")
    collected = collect_stream(FallbackLLM([first, second], clock=ManualClock()).stream(HELLO))
    assert collected.completion is not None
    assert collected.completion.model == "backup"


def test_a_cache_in_front_keys_by_the_model_asked_for_and_keeps_who_served() -> None:
    """A fallback answer is cached under the chain's key with the serving model kept."""
    first, second = _members()
    first.fail("unavailable")
    chain = FallbackLLM([first, second], clock=ManualClock())
    cached = CachingLLM(chain, MemoryCache(), clock=ManualClock())
    served = cached.complete(HELLO).unwrap()
    hit = cached.complete(HELLO).unwrap()
    assert served.model == hit.model == "backup"
    assert hit.cache is not None
    assert hit.cache.hit
    assert second.received() == 1
    direct = CachingLLM(first, MemoryCache(), clock=ManualClock())
    assert chain.identity != first.identity
    assert direct.complete(HELLO).unwrap().model == "primary"


# --- rate limits --------------------------------------------------------------------------


def test_the_window_slides() -> None:
    """Two a minute: a third waits until the first leaves, not until the minute's end."""
    clock = ManualClock()
    limiter = MemoryRateLimiter({"m": RateLimit(requests=2)}, clock)
    assert limiter.admit("m") == 0.0
    clock.advance(30)
    assert limiter.admit("m") == 0.0
    assert limiter.admit("m") == pytest.approx(30.0)
    clock.advance(30)
    assert limiter.admit("m") == 0.0
    assert limiter.admit("other") == 0.0, "a model without a limit is never held"


def test_tokens_per_minute_count_what_answers_used() -> None:
    """A request fits while the window's tokens plus its estimate stay within the limit."""
    clock = ManualClock()
    limiter = MemoryRateLimiter({"*": RateLimit(tokens=100)}, clock)
    assert limiter.admit("m", 500) == 0.0, "an empty window admits even a large estimate"
    limiter.settle("m", 80)
    clock.advance(10)
    limiter.settle("m", 15)
    assert limiter.admit("m", 10) == pytest.approx(50.0)  # once the 80 leave
    assert limiter.admit("m", 5) == 0.0


def test_waiting_callers_sleep_until_admitted_and_fail_fast_callers_do_not() -> None:
    """policy="wait" sleeps on the clock; policy="fail" is RateLimited with the wait."""
    clock = ManualClock()
    limiter = MemoryRateLimiter({"*": RateLimit(requests=1)}, clock)
    fake = FakeLLM()
    waiting = RateLimitedLLM(fake, limiter, policy="wait", max_wait=120, clock=clock)
    failing = RateLimitedLLM(fake, limiter, policy="fail", clock=clock)
    assert isinstance(waiting.complete(HELLO), Success)
    error = failing.complete(HELLO).failure()
    assert isinstance(error, RateLimited)
    assert error.retry_after == pytest.approx(60.0)
    started = clock.monotonic()
    assert isinstance(waiting.complete(HELLO), Success)
    assert clock.monotonic() - started == pytest.approx(60.0)
    short = RateLimitedLLM(fake, limiter, policy="wait", max_wait=5, clock=clock)
    assert isinstance(short.complete(HELLO).failure(), RateLimited), "no wait beyond max_wait"
    assert fake.received() == 2


def test_estimates_count_characters_and_max_tokens() -> None:
    """About four characters a token, plus the answer's max_tokens."""
    request = ChatRequest((ChatMessage.user("x" * 400),), max_tokens=50)
    assert estimate_tokens(request) == 151


# --- cost and budgets ---------------------------------------------------------------------


def test_cached_input_tokens_are_priced_as_such() -> None:
    """1M input with 400k cached, 1M output: each part at its own price."""
    price = Price(input=2.0, output=8.0, cached_input=0.5)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_input_tokens=400_000)
    assert price.of(usage) == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 8.0)


def test_a_dated_model_name_is_priced_as_its_listed_prefix() -> None:
    """gpt-4o-mini-2024-07-18 takes gpt-4o-mini's price, not gpt-4o's; unknown is None."""
    table = PriceTable({"gpt-4o": Price(5.0), "gpt-4o-mini": Price(0.15)})
    usage = Usage(input_tokens=1_000_000)
    assert table.cost("gpt-4o-mini-2024-07-18", usage) == pytest.approx(0.15)
    assert table.cost("llama", usage) is None


def test_costs_are_on_results_and_in_metrics_and_hits_cost_nothing() -> None:
    """complete, stream and embed carry their cost; metrics add it up in micro-units."""
    metrics = Metrics()
    fake = FakeLLM()
    prices = PriceTable({"*": Price(input=1.0, output=2.0)})
    priced = PricedLLM(fake, prices, metrics=metrics)
    fake.reply("two words", usage=Usage(1000, 500))
    assert priced.complete(HELLO).unwrap().cost == pytest.approx(0.002)
    fake.reply("two words", usage=Usage(1000, 500))
    final = list(priced.stream(HELLO))[-1].unwrap()
    assert final.cost == pytest.approx(0.002)
    assert priced.embed(["a b c"]).unwrap().cost == pytest.approx(3 / 1_000_000)
    assert metrics.count("llm.cost_micros") == 4003
    cached = PricedLLM(CachingLLM(FakeLLM(), MemoryCache(), clock=ManualClock()), prices)
    cached.complete(HELLO)
    assert cached.complete(HELLO).unwrap().cost == 0.0


def test_a_spent_budget_refuses_before_sending_and_other_tenants_go_on() -> None:
    """Once a tenant spent its limit, its calls are QuotaExceeded and nothing is sent."""
    fake = FakeLLM()
    budget = Budget({"acme": 0.001}, default=None)
    priced = PricedLLM(fake, PriceTable({"*": Price(input=1.0)}), budget, metrics=Metrics())
    acme = attrs.evolve(HELLO, metadata={"tenant": "acme"})
    fake.reply("x", usage=Usage(1500, 0))
    assert isinstance(priced.complete(acme), Success)
    assert budget.spent("acme") == pytest.approx(0.0015)
    events = list(priced.stream(acme))
    assert len(events) == 1
    assert isinstance(events[0].failure(), QuotaExceeded)
    assert isinstance(priced.complete(acme).failure(), QuotaExceeded)
    assert fake.received() == 1
    assert isinstance(priced.complete(HELLO), Success), "another tenant is not held"


def test_prices_are_configuration_checked_when_built() -> None:
    """A negative or non-numeric price raises ValueError at build."""
    with pytest.raises(ValueError, match="input"):
        Price(input=-1.0)
    with pytest.raises(ValueError, match="requests"):
        RateLimit(requests=0)
