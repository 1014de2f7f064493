"""CachingLLM over real Redis (one server and a cluster): hits, the fill lock, Redis going away."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import attrs
import pytest
import redis
from returns.result import Result, Success

from portside.adapters.llm_cache import CachingLLM
from portside.adapters.memory import FakeLLM, ManualClock
from portside.adapters.observability import Metrics
from portside.adapters.redis import RedisCache, RedisOptions
from portside.adapters.resilience import CircuitBreaker
from portside.adapters.testing import FaultToolError, throwaway_redis
from portside.domain import ChatMessage, ChatRequest, Completion, ServiceError

ASK = ChatRequest((ChatMessage.user("name three rivers"),), temperature=0.0)


@pytest.fixture(name="cache", params=["server", pytest.param("cluster", marks=pytest.mark.slow)])
def _cache(request: pytest.FixtureRequest) -> Iterator[RedisCache]:
    """A Redis cache (one server, or the throwaway cluster) in a namespace of its own."""
    if request.param == "cluster":
        url = request.getfixturevalue("redis_cluster").url
    else:
        url = request.getfixturevalue("redis_url")
    cache = RedisCache.from_url(url, namespace=f"test-llm-{uuid.uuid4().hex[:12]}")
    yield cache
    cache.clear()
    cache.close()


@pytest.mark.services
def test_hit_from_redis_across_instances(cache: RedisCache) -> None:
    """An answer stored by one CachingLLM is a hit for another on the same Redis."""
    llm = FakeLLM()
    llm.reply("Nile, Amazon, Danube.")
    CachingLLM(llm, cache, metrics=Metrics()).complete(ASK)
    other = CachingLLM(FakeLLM(), cache, metrics=Metrics()).complete(ASK).unwrap()
    assert other.text == "Nile, Amazon, Danube."
    assert other.cache is not None
    assert other.cache.hit


@pytest.mark.services
def test_streams_round_trip_through_redis(cache: RedisCache) -> None:
    """A stream stored in Redis replays the same deltas from another instance."""
    llm = FakeLLM()
    llm.reply("one two three")
    first = [d.unwrap() for d in CachingLLM(llm, cache, metrics=Metrics()).stream(ASK)]
    again = [d.unwrap() for d in CachingLLM(FakeLLM(), cache, metrics=Metrics()).stream(ASK)]
    assert [attrs.evolve(d, cache=None) for d in again] == [
        attrs.evolve(d, cache=None) for d in first
    ]
    assert again[-1].cache is not None
    assert again[-1].cache.hit


@attrs.define
class _GatedLLM(FakeLLM):
    """Blocks each call until the gate opens; counts calls."""

    gate: threading.Event = attrs.field(factory=threading.Event)
    upstream: int = 0

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """Counts, waits for the gate, answers."""
        self.upstream += 1
        self.gate.wait(30)
        return super().complete(request)


@pytest.mark.services
def test_fill_lock_coalesces_across_processes(cache: RedisCache) -> None:
    """Two instances with separate single-flights (as two processes) make one upstream call."""
    first_llm, second_llm = _GatedLLM(), _GatedLLM()
    second_llm.gate.set()
    first = CachingLLM(first_llm, cache, metrics=Metrics())
    second = CachingLLM(second_llm, cache, metrics=Metrics())
    results: list[Result[Completion, ServiceError]] = []
    leader = threading.Thread(target=lambda: results.append(first.complete(ASK)))
    leader.start()
    lock_key = first.key_for(ASK) + ":fill"
    while cache.get(lock_key).unwrap() is None:
        assert leader.is_alive()
    follower = threading.Thread(target=lambda: results.append(second.complete(ASK)))
    follower.start()
    first_llm.gate.set()
    leader.join(30)
    follower.join(30)
    assert first_llm.upstream + second_llm.upstream == 1
    assert len(results) == 2
    assert all(isinstance(r, Success) for r in results)


@attrs.define
class _Counting:
    """Counts every cache call that reaches Redis."""

    cache: RedisCache
    calls: int = 0

    def __getattr__(self, name: str) -> object:
        method = getattr(self.cache, name)
        if not callable(method):
            return method

        def counted(*args: object, **kwargs: object) -> object:
            self.calls += 1
            return method(*args, **kwargs)

        return counted


@pytest.mark.services
@pytest.mark.faults
def test_redis_down_breaker_opens_then_recovers(manual_clock: ManualClock) -> None:
    """With Redis killed answers keep coming, the breaker stops calls, then recovers."""
    try:
        server_cm = throwaway_redis()
        server = server_cm.__enter__()
    except FaultToolError as exc:
        pytest.skip(str(exc))
    try:
        options = RedisOptions(socket_timeout=0.2, connect_timeout=0.2)
        redis_cache = RedisCache.from_url(server.url, namespace="llm", options=options)
        counting = _Counting(redis_cache)
        breaker = CircuitBreaker(manual_clock, failure_threshold=3, reset_timeout=10, name="rc")
        metrics = Metrics()
        llm = FakeLLM()
        caching = CachingLLM(
            llm,
            counting,  # type: ignore[arg-type]
            clock=manual_clock,
            breaker=breaker,
            metrics=metrics,
        )
        assert isinstance(caching.complete(ASK), Success)
        assert caching.complete(ASK).unwrap().cache.hit  # type: ignore[union-attr]

        server.kill()
        for i in range(3):
            asked = attrs.evolve(ASK, seed=i)
            assert isinstance(caching.complete(asked), Success)
        assert breaker.state == "open"
        reached = counting.calls
        before = llm.received()
        for i in range(5):
            assert isinstance(caching.complete(attrs.evolve(ASK, seed=100 + i)), Success)
        assert counting.calls == reached
        assert llm.received() == before + 5
        assert metrics.count("cache.skipped") >= 5

        server.start()
        manual_clock.advance(10)
        assert isinstance(caching.complete(ASK), Success)
        assert breaker.state == "closed"
        assert caching.complete(ASK).unwrap().cache.hit  # type: ignore[union-attr]
        redis_cache.close()
    finally:
        server_cm.__exit__(None, None, None)


class _CountedConnection(redis.Connection):
    """A redis-py connection that counts requests sent: one per round trip."""

    sent = 0

    def send_packed_command(self, command: object, check_health: bool = True) -> None:
        """Counts the request, then sends it as usual."""
        type(self).sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[arg-type]


@pytest.mark.services
def test_a_miss_costs_three_round_trips_and_a_hit_one(redis_url: str) -> None:
    """A miss is GET, get_or_lock and set_and_unlock; a hit is one GET (complete and stream)."""
    pool = redis.ConnectionPool.from_url(
        redis_url, connection_class=_CountedConnection, health_check_interval=0
    )
    cache = RedisCache(redis.Redis(connection_pool=pool), namespace=f"rt-{uuid.uuid4().hex}")
    caching = CachingLLM(FakeLLM(), cache, metrics=Metrics())
    try:
        caching.complete(attrs.evolve(ASK, seed=1)).unwrap()  # loads the scripts once
        costs: dict[str, int] = {}
        for name, call in [
            ("complete miss", lambda: caching.complete(ASK).unwrap()),
            ("complete hit", lambda: caching.complete(ASK).unwrap()),
            ("stream miss", lambda: list(caching.stream(attrs.evolve(ASK, seed=2)))),
            ("stream hit", lambda: list(caching.stream(attrs.evolve(ASK, seed=2)))),
        ]:
            before = _CountedConnection.sent
            call()
            costs[name] = _CountedConnection.sent - before
        assert costs == {"complete miss": 3, "complete hit": 1, "stream miss": 3, "stream hit": 1}
        assert cache.get(caching.key_for(ASK) + ":fill") == Success(None)
    finally:
        cache.clear()
        pool.disconnect()
