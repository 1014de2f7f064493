"""CachingLLM behaviour over the fake LLM and the in-memory cache, on a manual clock."""

from __future__ import annotations

import attrs
import pytest
from returns.result import Failure, Result, Success

from portside.adapters.llm_cache import CachingLLM
from portside.adapters.memory import FakeLLM, ManualClock, MemoryCache
from portside.adapters.observability import Metrics
from portside.adapters.resilience import CircuitBreaker
from portside.domain import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    FillClaim,
    InvalidRequest,
    ServiceError,
    ToolCall,
    Unavailable,
    Usage,
)

ASK = ChatRequest((ChatMessage.user("what is the capital of France?"),), temperature=0.0)


@attrs.define
class _Env:
    llm: FakeLLM
    cache: MemoryCache
    clock: ManualClock
    metrics: Metrics
    caching: CachingLLM


@pytest.fixture(name="env")
def _env(manual_clock: ManualClock) -> _Env:
    llm = FakeLLM()
    cache = MemoryCache(clock=manual_clock)
    metrics = Metrics()
    caching = CachingLLM(llm, cache, clock=manual_clock, metrics=metrics)
    return _Env(llm, cache, manual_clock, metrics, caching)


def _deltas(items: list[Result[ChatDelta, ServiceError]]) -> list[ChatDelta]:
    return [attrs.evolve(i.unwrap(), cache=None) for i in items]


def test_second_identical_request_is_a_hit_with_age_and_savings(env: _Env) -> None:
    """The second call is answered from the cache, says so, its age and the usage saved."""
    env.llm.reply("Paris.", usage=Usage(12, 3))
    first = env.caching.complete(ASK).unwrap()
    env.clock.advance(42)
    second = env.caching.complete(ASK).unwrap()
    assert env.llm.received() == 1
    assert first.cache is not None
    assert not first.cache.hit
    assert second.text == "Paris."
    assert second.cache is not None
    assert (second.cache.hit, second.cache.age, second.cache.saved) == (True, 42.0, Usage(12, 3))
    assert env.metrics.count("cache.hits") == 1
    assert env.metrics.count("cache.misses") == 1
    assert env.metrics.count("cache.saved_output_tokens") == 3


def test_nondeterministic_requests_are_not_cached_unless_asked(env: _Env) -> None:
    """Sampling without a seed goes upstream every time, unless the policy opts in."""
    sampled = attrs.evolve(ASK, temperature=0.7)
    env.caching.complete(sampled)
    env.caching.complete(sampled)
    assert env.llm.received() == 2
    assert env.caching.complete(attrs.evolve(ASK, temperature=None)).unwrap().cache is not None
    with env.caching.options(cache_nondeterministic=True):
        env.caching.complete(sampled)
        assert env.caching.complete(sampled).unwrap().cache.hit  # type: ignore[union-attr]
    seeded = attrs.evolve(sampled, seed=3)
    env.caching.complete(seeded)
    assert env.caching.complete(seeded).unwrap().cache.hit  # type: ignore[union-attr]


@pytest.mark.parametrize("finish", ["length", "content_filter"])
def test_truncated_or_filtered_answers_are_not_stored(env: _Env, finish: str) -> None:
    """A length or content_filter finish is returned but never stored."""
    env.llm.reply("Par", finish_reason=finish)  # type: ignore[arg-type]
    assert env.caching.complete(ASK).unwrap().finish_reason == finish
    assert len(env.cache) == 0
    env.caching.complete(ASK)
    assert env.llm.received() == 2


def test_errors_are_not_stored(env: _Env) -> None:
    """A failure reaches the caller and the next call goes upstream again."""
    env.llm.fail("rate_limited", retry_after=2)
    assert isinstance(env.caching.complete(ASK), Failure)
    assert len(env.cache) == 0
    assert env.caching.complete(ASK).unwrap().cache.hit is False  # type: ignore[union-attr]


def test_invalid_requests_fail_before_the_cache(env: _Env) -> None:
    """A request with no messages is InvalidRequest and touches neither cache nor LLM."""
    result = env.caching.complete(ChatRequest(()))
    assert isinstance(result.failure(), InvalidRequest)
    assert env.llm.received() == 0
    assert len(env.cache) == 0


def test_per_call_options_skip_read_only_and_ttl(env: _Env) -> None:
    """Skipping bypasses, write=False reads without storing, ttl bounds the entry's life."""
    with env.caching.options(read=False, write=False):
        env.caching.complete(ASK)
    assert len(env.cache) == 0
    with env.caching.options(write=False):
        env.caching.complete(ASK)
    assert len(env.cache) == 0
    with env.caching.options(ttl=10):
        env.caching.complete(ASK)
    assert env.caching.complete(ASK).unwrap().cache.hit  # type: ignore[union-attr]
    with env.caching.options(read=False, write=False):
        assert env.caching.complete(ASK).unwrap().cache.hit is False  # type: ignore[union-attr]
    env.clock.advance(10)
    assert env.caching.complete(ASK).unwrap().cache.hit is False  # type: ignore[union-attr]
    assert env.caching.current_policy == env.caching.policy


def test_streamed_miss_is_stored_and_replayed_delta_for_delta(env: _Env) -> None:
    """A streamed hit yields exactly the recorded deltas, tool calls and usage included."""
    env.llm.reply(
        "Let me look that up.",
        tool_calls=[ToolCall("call_1", "lookup", '{"city": "Paris"}')],
        usage=Usage(20, 9),
    )
    first = list(env.caching.stream(ASK))
    again = list(env.caching.stream(ASK))
    assert env.llm.received() == 1
    assert _deltas(again) == _deltas(first)
    assert any(d.tool_calls for d in _deltas(again))
    final = again[-1].unwrap()
    assert final.usage == Usage(20, 9)
    assert final.cache is not None
    assert final.cache.hit
    done = env.caching.complete(ASK).unwrap()
    assert done.tool_calls == (ToolCall("call_1", "lookup", '{"city": "Paris"}'),)
    assert done.text == "".join(d.text for d in _deltas(first))


def test_streamed_hit_of_a_completed_answer(env: _Env) -> None:
    """An answer stored by complete() streams as text, then the final delta with usage."""
    env.llm.reply("Paris.", usage=Usage(5, 2))
    env.caching.complete(ASK)
    replayed = _deltas(list(env.caching.stream(ASK)))
    assert "".join(d.text for d in replayed) == "Paris."
    assert replayed[-1].finish_reason == "stop"
    assert replayed[-1].usage == Usage(5, 2)


def test_dropped_or_abandoned_streams_are_never_stored(env: _Env) -> None:
    """A stream cut mid-way, or one the consumer stops reading, leaves no entry."""
    env.llm.drop_stream_after(2)
    items = list(env.caching.stream(ASK))
    assert isinstance(items[-1], Failure)
    assert len(env.cache) == 0
    env.llm.reply("one two three four")
    stream = env.caching.stream(ASK)
    next(stream)
    stream.close()
    assert len(env.cache) == 0
    assert not list(env.caching.stream(ASK))[-1].unwrap().cache.hit  # type: ignore[union-attr]


def test_embeddings_merge_partial_hits(env: _Env) -> None:
    """Only texts not cached go upstream; vectors come back in input order either way."""
    whole = env.llm.embed(["red apple", "green pear", "blue sky"]).unwrap()
    env.caching.embed(["red apple", "blue sky"])
    mixed = env.caching.embed(["blue sky", "green pear", "red apple", "green pear"]).unwrap()
    calls = env.llm.embed_calls
    assert calls[-1].texts == ("green pear",)
    assert mixed.vectors == (whole.vectors[2], whole.vectors[1], whole.vectors[0], whole.vectors[1])
    assert mixed.cache is not None
    assert not mixed.cache.hit
    assert mixed.cache.saved.input_tokens > 0
    full = env.caching.embed(["green pear", "red apple"]).unwrap()
    assert full.cache is not None
    assert full.cache.hit
    assert full.usage == Usage()
    assert len(env.llm.embed_calls) == 3


def test_embeddings_key_on_dimensions_and_model(env: _Env) -> None:
    """The same text at other dimensions or model is a separate entry."""
    env.caching.embed(["hello world"], dimensions=8)
    env.caching.embed(["hello world"], dimensions=16)
    env.caching.embed(["hello world"], model="other-embedding", dimensions=8)
    assert len(env.llm.embed_calls) == 3
    assert env.caching.embed(["hello world"], dimensions=8).unwrap().dimensions == 8
    assert len(env.llm.embed_calls) == 3


@attrs.define
class _DownCache(MemoryCache):
    """A cache whose every read and write fails as if the server were gone."""

    calls: int = 0

    def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """Always Unavailable."""
        self.calls += 1
        return Failure(Unavailable(service="cache", operation="get"))

    def set(self, key: str, value: bytes, ttl: float | None = None) -> Result[None, ServiceError]:
        """Always Unavailable."""
        self.calls += 1
        return Failure(Unavailable(service="cache", operation="set"))

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        """Always Unavailable."""
        self.calls += 1
        return Failure(Unavailable(service="cache", operation="add"))

    def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """Always Unavailable."""
        self.calls += 1
        return Failure(Unavailable(service="cache", operation="get_or_lock"))

    def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """Always Unavailable."""
        self.calls += 1
        return Failure(Unavailable(service="cache", operation="set_and_unlock"))


def test_a_failing_cache_never_breaks_answers_and_the_breaker_opens(
    manual_clock: ManualClock,
) -> None:
    """With the cache down every call is answered, and once open the cache is not called."""
    cache = _DownCache(clock=manual_clock)
    breaker = CircuitBreaker(manual_clock, failure_threshold=3, reset_timeout=5, name="c")
    caching = CachingLLM(FakeLLM(), cache, clock=manual_clock, breaker=breaker, metrics=Metrics())
    for _ in range(3):
        assert isinstance(caching.complete(ASK), Success)
    assert breaker.state == "open"
    calls = cache.calls
    assert isinstance(caching.complete(ASK), Success)
    assert cache.calls == calls
    manual_clock.advance(5)
    assert isinstance(caching.complete(ASK), Success)
    assert cache.calls == calls + 1
    assert breaker.state == "open"
