"""Isolation: cache namespaces and queue topics never see each other, whatever their names."""

from __future__ import annotations

import string
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.result import Success

from portside.adapters.memory import MemoryCache, MemoryQueue, MemoryStore
from portside.ports import CachePort, QueuePort
from portside.ports.queue_rules import QueueOptions

redis_cache = pytest.importorskip("portside.adapters.redis._cache")
redis_queue = pytest.importorskip("portside.adapters.redis._queue")

namespaces = st.text(
    alphabet=string.ascii_letters + string.digits + "_.:-", min_size=1, max_size=20
)
keys = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=30
)  # fmt: skip
PAIRS = st.tuples(namespaces, namespaces).filter(lambda p: p[0] != p[1])

CacheFactory = Callable[[str], CachePort]


@pytest.fixture(name="cache_pair", params=["memory", "redis"])
def _cache_pair(request: pytest.FixtureRequest) -> Iterator[CacheFactory]:
    made: list[CachePort] = []
    if request.param == "memory":
        store = MemoryStore()

        def make(ns: str) -> CachePort:
            cache = MemoryCache(namespace=ns, store=store)
            made.append(cache)
            return cache

    else:
        url = request.getfixturevalue("redis_url")
        tag = uuid.uuid4().hex[:8]

        def make(ns: str) -> CachePort:
            cache: CachePort = redis_cache.RedisCache.from_url(url, namespace=f"ps-iso-{tag}-{ns}")
            made.append(cache)
            return cache

    yield make
    for cache in made:
        cache.clear()
        cache.close()


@pytest.mark.services
# The fixture is a factory: every example builds its own caches from it.
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=PAIRS, key=keys)
def test_cache_namespaces_never_see_each_others_keys(
    cache_pair: CacheFactory, pair: tuple[str, str], key: str
) -> None:
    """A key written in one namespace is absent in another, and clear() of one spares the other."""
    one, two = cache_pair(pair[0]), cache_pair(pair[1])
    assert one.set(key, b"one") == Success(None)
    assert two.get(key) == Success(None)
    assert two.set(key, b"two") == Success(None)
    assert one.clear() == Success(None)
    assert one.get(key) == Success(None)
    assert two.get(key) == Success(b"two")
    assert two.clear() == Success(None)


QueueFactory = Callable[[], QueuePort]


@pytest.fixture(name="make_queue", params=["memory", "redis"])
def _make_queue(request: pytest.FixtureRequest) -> Iterator[QueueFactory]:
    options = QueueOptions(lease_timeout=5.0, max_deliveries=1)
    made: list[Any] = []
    namespace = f"ps-iso-{uuid.uuid4().hex[:8]}"

    def make() -> QueuePort:
        if request.param == "memory":
            queue: Any = MemoryQueue(options=options)
        else:
            url = request.getfixturevalue("redis_url")
            queue = redis_queue.RedisQueue.from_url(url, options=options, namespace=namespace)
        made.append(queue)
        return queue  # type: ignore[no-any-return]

    yield make
    for queue in made:
        client = getattr(queue, "client", None)
        if client is not None:  # only this test's own keys on the shared server
            for name in client.scan_iter(match=f"{namespace}:*"):
                client.delete(name)
        queue.close()


HOSTILE = ["a", "a}", "{a}", "a}:g:b", "b}:g:c", "*", "?", "[x]", "a:s", "a b", "ключ", "x" * 200]


@pytest.mark.services
@pytest.mark.parametrize("topic", HOSTILE)
def test_a_hostile_topic_name_is_its_own_topic(make_queue: QueueFactory, topic: str) -> None:
    """A topic named with glob, brace or separator characters holds only its own messages."""
    queue = make_queue()
    assert queue.receive(topic, "g", "c") == Success([])
    assert queue.receive("a", "g", "c") == Success([])
    assert isinstance(queue.publish(topic, b"mine"), Success)
    got = queue.receive(topic, "g", "c", max_messages=10).unwrap()
    assert [d.message.body for d in got] == [b"mine"]
    assert [d.message.topic for d in got] == [topic]
    if topic != "a":
        assert queue.receive("a", "g", "c", max_messages=10) == Success([])


@pytest.mark.services
def test_crafted_topic_and_group_names_do_not_share_dead_letters(
    make_queue: QueueFactory,
) -> None:
    """Dead letters of topic 'a' group 'b}:g:c' never show up under topic 'a}:g:b' group 'c'."""
    queue = make_queue()
    assert queue.receive("a}:g:b", "c", "x") == Success([])
    assert queue.receive("a", "b}:g:c", "y") == Success([])
    assert isinstance(queue.publish("a", b"private to topic a"), Success)
    (delivery,) = queue.receive("a", "b}:g:c", "y").unwrap()
    assert queue.nack(delivery) == Success(None)  # max_deliveries=1: dead-lettered
    assert len(queue.dead_letters("a", "b}:g:c").unwrap()) == 1
    assert queue.dead_letters("a}:g:b", "c") == Success([])
