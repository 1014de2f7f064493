"""AsyncRedisQueue: the queue kit through the bridge, and differentially against RedisQueue."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result

from portside.adapters.memory import ManualClock
from portside.adapters.redis import (
    AsyncRedisQueue,
    RedisOptions,
    RedisQueue,
    connect,
    connect_async,
)
from portside.adapters.testing import (
    KIT_OPTIONS,
    EventLoopThread,
    RedisQueueFaults,
    check_queue_contract,
)
from portside.domain import ServiceError
from portside.ports import Clock, QueuePort
from portside.ports.queue_rules import QueueOptions

pytestmark = pytest.mark.services

#: The queue's own connection settings (``from_url``'s): a loaded machine can take longer
#: than the cache's half second to answer a script.
QUEUE_OPTIONS = RedisOptions(socket_timeout=5.0, connect_timeout=1.0)


@pytest.fixture(name="runner", scope="module")
def _runner() -> Iterator[EventLoopThread]:
    runner = EventLoopThread()
    yield runner
    runner.close()


@pytest.fixture(name="clients")
def _clients(
    redis_url: str, runner: EventLoopThread
) -> Iterator[tuple[redis.Redis, aioredis.Redis]]:
    sync = connect(redis_url, QUEUE_OPTIONS)
    # Used on the runner's loop only: a redis.asyncio pool belongs to one loop.
    aio = connect_async(redis_url, QUEUE_OPTIONS)
    yield sync, aio
    runner.run(aio.aclose())
    sync.close()


def _forget(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


def test_async_redis_queue_meets_the_contract(
    clients: tuple[redis.Redis, aioredis.Redis], runner: EventLoopThread
) -> None:
    """AsyncRedisQueue on a manual clock, through BlockingQueue, behaves like the model."""
    sync, aio = clients
    prefix = f"pstest:aqkit:{uuid.uuid4().hex}"
    made = 0

    def factory(clock: Clock, options: QueueOptions) -> QueuePort:
        nonlocal made
        made += 1
        return runner.blocking_queue(AsyncRedisQueue(aio, clock, options, f"{prefix}:{made}"))

    try:
        check_queue_contract(factory, faults=RedisQueueFaults(), max_examples=20, steps=30)
    finally:
        _forget(sync, prefix)
    assert made > 0


names = st.sampled_from(["t0", "t1", "", "x" * 201])
groups = st.sampled_from(["g0", "g1"])
consumers = st.sampled_from(["c0", "c1"])
ops = st.one_of(
    st.tuples(
        st.just("publish"),
        names,
        st.sampled_from([b"a", b"", b"x" * 70, "text"]),
        st.sampled_from([None, "k0"]),
        st.sampled_from([0.0, 5.0, -1.0]),
    ),
    st.tuples(st.just("publish_many"), names, st.lists(st.just(b"m"), max_size=3)),
    st.tuples(st.just("receive"), names, groups, consumers, st.sampled_from([1, 2, 0])),
    st.tuples(st.just("settle"), st.sampled_from(["ack", "nack", "extend", "ack_many"])),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 31.0])),
    st.tuples(st.just("dead_letters"), names, groups),
)


def _view(result: Result[Any, ServiceError]) -> object:
    """What must agree: the error kind, or the value with ids and receipts left out."""
    if isinstance(result, Failure):
        return ("error", type(result.failure()).__name__)
    value = result.unwrap()
    if isinstance(value, list):
        return [_item(x) for x in value]
    return ("ok", _item(value))


def _item(value: object) -> object:
    message = getattr(value, "message", None)
    if message is None:
        return value if not isinstance(value, str) else "id"
    return (
        message.body,
        message.topic,
        getattr(value, "attempt", None),
        getattr(value, "reason", None),
    )


@settings(max_examples=30, deadline=None)
@given(script=st.lists(ops, max_size=14))
def test_async_redis_queue_answers_like_redis_queue(
    script: list[tuple[Any, ...]], redis_url: str, runner: EventLoopThread
) -> None:
    """The same operations give the same answers on AsyncRedisQueue and RedisQueue (one server)."""
    run = f"pstest:aqdiff:{uuid.uuid4().hex[:10]}"
    clock = ManualClock()
    sync_client = connect(redis_url, QUEUE_OPTIONS)
    aio_client = connect_async(redis_url, QUEUE_OPTIONS)
    twin = RedisQueue(sync_client, clock, KIT_OPTIONS, f"{run}:s")
    queue: QueuePort = runner.blocking_queue(
        AsyncRedisQueue(aio_client, clock, KIT_OPTIONS, f"{run}:a")
    )
    latest: list[tuple[Any, Any]] = []
    try:
        for name, *args in script:
            if name == "advance":
                clock.advance(args[0])
                continue
            if name == "settle":
                if not latest:
                    continue
                mine, theirs = latest[-1]
                kind = args[0]
                if kind == "ack_many":
                    got, want = queue.ack_many([mine]), twin.ack_many([theirs])
                elif kind == "extend":
                    got, want = queue.extend(mine, by=10.0), twin.extend(theirs, by=10.0)
                else:
                    got, want = getattr(queue, kind)(mine), getattr(twin, kind)(theirs)
                assert _view(got) == _view(want), f"{kind}"
                continue
            if name == "publish":
                topic, body, dedupe, delay = args
                got = queue.publish(topic, body, dedupe_key=dedupe, delay=delay)
                want = twin.publish(topic, body, dedupe_key=dedupe, delay=delay)
            elif name == "receive":
                topic, group, consumer, count = args
                got = queue.receive(topic, group, consumer, max_messages=count)
                want = twin.receive(topic, group, consumer, max_messages=count)
                if isinstance(got, Failure) is False and isinstance(want, Failure) is False:
                    latest.extend(zip(got.unwrap(), want.unwrap(), strict=False))
            else:
                got = getattr(queue, name)(*args)
                want = getattr(twin, name)(*args)
            assert _view(got) == _view(want), f"{name}{tuple(args)}"
    finally:
        queue.close()
        runner.run(aio_client.aclose())
        _forget(sync_client, run)
        sync_client.close()


def test_both_adapters_share_one_key_layout(
    clients: tuple[redis.Redis, aioredis.Redis], runner: EventLoopThread
) -> None:
    """What AsyncRedisQueue publishes, RedisQueue of the same namespace receives, and back."""
    sync, aio = clients
    namespace = f"pstest:aqlayout:{uuid.uuid4().hex[:10]}"
    queue = AsyncRedisQueue(aio, namespace=namespace)
    bridged = runner.blocking_queue(queue)
    twin = RedisQueue(sync, namespace=namespace)
    try:
        assert queue.stream_key("t") == twin.stream_key("t")
        assert twin.receive("t", "g", "c").unwrap() == []
        mid = bridged.publish("t", b"from async", headers={"h": "v"}).unwrap()
        [got] = twin.receive("t", "g", "c").unwrap()
        assert (got.message.id, got.message.headers) == (mid, {"h": "v"})
        assert bridged.ack(got).unwrap() is None
        assert twin.ack(got).failure() is not None
        twin.publish("t", b"from sync").unwrap()
        [back] = bridged.receive("t", "g", "c2").unwrap()
        assert back.message.body == b"from sync"
    finally:
        _forget(sync, namespace)
