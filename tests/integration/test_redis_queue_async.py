"""AsyncRedisQueue on a real server: waiting, outages, start-up checks and 1,000 tasks."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid

import pytest
from returns.result import Failure, Success

from portside.adapters.redis import AsyncRedisQueue, QueueNotDurable, RedisOptions
from portside.adapters.testing import TcpFaultProxy, free_port, proxied_url, throwaway_redis
from portside.domain import TimedOut, Unavailable

pytestmark = pytest.mark.services


def _namespace() -> str:
    return f"pstest:aq:{uuid.uuid4().hex[:12]}"


async def _forget(queue: AsyncRedisQueue) -> None:
    keys = [k async for k in queue.client.scan_iter(match=f"{queue.namespace}:*", count=1000)]
    if keys:
        await queue.client.delete(*keys)
    await queue.aclose()


def test_a_waiting_receive_lets_the_loop_run_and_wakes_on_a_publish(redis_url: str) -> None:
    """receive(wait=) blocks a connection, not the loop; a publish from another task ends it."""

    async def scenario() -> tuple[int, float, list[bytes]]:
        queue = AsyncRedisQueue.from_url(redis_url, namespace=_namespace())
        try:
            assert await queue.receive("t", "g", "c") == Success([])
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticking = asyncio.create_task(ticker())
            waiting = asyncio.create_task(queue.receive("t", "g", "c", wait=10.0))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            started = time.monotonic()
            (await queue.publish("t", b"now")).unwrap()
            got = (await waiting).unwrap()
            took = time.monotonic() - started
            ticking.cancel()
            for delivery in got:
                (await queue.ack(delivery)).unwrap()
            return ticks, took, [d.message.body for d in got]
        finally:
            await _forget(queue)

    ticks, took, bodies = asyncio.run(scenario())
    assert bodies == [b"now"]
    assert ticks >= 10, "the event loop stalled while a receive waited"
    assert took < 2.0


def test_a_stalled_server_is_timed_out_and_the_queue_recovers(redis_url: str) -> None:
    """Every call on a server that stops answering is TimedOut or Unavailable, then heals."""
    options = RedisOptions(socket_timeout=0.3, connect_timeout=0.3)

    async def scenario(proxy: TcpFaultProxy) -> None:
        url = proxied_url(redis_url, proxy.port)
        queue = AsyncRedisQueue.from_url(url, namespace=_namespace(), connection=options)
        try:
            assert await queue.receive("t", "g", "c") == Success([])
            proxy.stall()
            for call in (
                queue.publish("t", b"x"),
                queue.receive("t", "g", "c"),
                queue.dead_letters("t", "g"),
            ):
                outcome = await call
                assert isinstance(outcome, Failure)
                assert isinstance(outcome.failure(), TimedOut | Unavailable), outcome
            proxy.heal()
            assert isinstance(await queue.publish("t", b"y"), Success), "did not recover"
        finally:
            proxy.heal()
            await _forget(queue)

    host, port = redis_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with TcpFaultProxy(host, int(port)) as proxy:
        asyncio.run(scenario(proxy))


def test_an_unreachable_server_is_unavailable() -> None:
    """Nothing listening: calls are Failure(Unavailable); no exception escapes."""

    async def scenario() -> None:
        queue = AsyncRedisQueue.from_url(
            f"redis://127.0.0.1:{free_port()}/0", connection=RedisOptions(connect_timeout=0.3)
        )
        for call in (queue.publish("t", b"x"), queue.receive("t", "g", "c")):
            outcome = await call
            assert isinstance(outcome, Failure)
            assert isinstance(outcome.failure(), Unavailable)
        await queue.aclose()

    asyncio.run(scenario())


def test_require_durable_refuses_a_server_that_can_lose_messages() -> None:
    """open(require_durable=True) raises QueueNotDurable; a queue built directly refuses calls."""

    async def scenario(url: str) -> None:
        with pytest.raises(QueueNotDurable):
            await AsyncRedisQueue.open(url, require_durable=True)
        lazy = AsyncRedisQueue.from_url(url, require_durable=True)
        outcome = await lazy.publish("t", b"x")
        assert isinstance(outcome, Failure)
        assert isinstance(outcome.failure(), Unavailable)
        assert "append" in str(outcome.failure())
        await lazy.aclose()
        report = (await AsyncRedisQueue.from_url(url).check_durability()).unwrap()
        assert not report.durable

    with throwaway_redis() as server:
        asyncio.run(scenario(server.url))


def test_a_durable_publish_is_confirmed_on_disk() -> None:
    """With the append-only file synced on every write, a durable publish succeeds."""

    async def scenario(url: str) -> None:
        queue = await AsyncRedisQueue.open(url, require_durable=True, durable_publish=True)
        try:
            assert (await queue.check_durability()).unwrap().durable
            assert isinstance(await queue.publish("t", b"x"), Success)
            assert isinstance(await queue.publish("t", b"y", dedupe_key="k"), Success)
            assert len((await queue.publish_many("t", [b"a", b"b"])).unwrap()) == 2
        finally:
            await queue.aclose()

    with throwaway_redis(durable=True) as server:
        asyncio.run(scenario(server.url))


@pytest.mark.slow
def test_a_thousand_tasks_for_ten_seconds_on_one_queue(redis_url: str) -> None:
    """1,000 tasks publish, receive and ack for 10 s: no failure, every message acked once."""
    # Connecting 50 connections while 1,000 tasks keep the loop busy took over the
    # default second on a loaded machine (TimedOut at connect); calls themselves did not.
    options = RedisOptions(socket_timeout=5.0, connect_timeout=5.0)
    queue = AsyncRedisQueue.from_url(redis_url, namespace=_namespace(), connection=options)
    failures: list[object] = []
    published: set[bytes] = set()
    acked: collections.Counter[bytes] = collections.Counter()

    async def task(i: int, until: float) -> None:
        rounds = 0
        while time.monotonic() < until:
            body = f"{i}:{rounds}".encode()
            sent = await queue.publish("load", body)
            if isinstance(sent, Failure):
                failures.append(sent)
            else:
                published.add(body)
            got = await queue.receive("load", "workers", f"c{i}", max_messages=1)
            if isinstance(got, Failure):
                failures.append(got)
                continue
            for delivery in got.unwrap():
                done = await queue.ack(delivery)
                if isinstance(done, Failure):
                    failures.append(done)
                else:
                    acked[delivery.message.body] += 1
            rounds += 1

    async def scenario() -> tuple[list[bytes], int]:
        try:
            assert await queue.receive("load", "workers", "c") == Success([])
            until = time.monotonic() + 10
            await asyncio.gather(*(task(i, until) for i in range(1000)))
            pool = queue.client.connection_pool
            connections = len(pool._available_connections) + len(pool._in_use_connections)
            left: list[bytes] = []
            while got := (await queue.receive("load", "workers", "end", max_messages=500)).unwrap():
                left += [d.message.body for d in got]
                (await queue.ack_many(got)).unwrap()
            return left, connections
        finally:
            await _forget(queue)

    left, connections = asyncio.run(scenario())
    assert failures == [], f"{len(failures)} calls failed, e.g. {failures[:3]}"
    assert len(published) > 1000, "the tasks barely ran"
    twice = [body for body, count in acked.items() if count > 1]
    assert twice == [], f"acked more than once: {twice[:5]}"
    assert set(acked) | set(left) == published, "a message was lost"
    assert not set(acked) & set(left), "a message acked was delivered again"
    assert connections <= options.max_connections
