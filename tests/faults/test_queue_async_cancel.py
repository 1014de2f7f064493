"""Cancelling an AsyncRedisQueue call at every await point leaves the queue whole.

For each method a first run counts the times the call suspends; then, for each of those
points in turn, a fresh scenario is cancelled exactly there (the task cancels itself as
the call suspends, so the cancellation lands on that await). After each one: the pool
has no connection checked out and at most its two connections, the next call on the
same queue gets its own answer, and once a whole lease has passed (on the manual clock)
every message is delivered again and acked exactly once: none lost, none orphaned under a
lease that never runs out, none delivered twice in one drain (at least once, no more).
"""

from __future__ import annotations

import asyncio
import contextlib
import types
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

import attrs
import pytest
from returns.result import Success

from portside.adapters.memory import ManualClock
from portside.adapters.redis import AsyncRedisQueue, RedisOptions, connect_async
from portside.domain import Delivery
from portside.ports.queue_rules import QueueOptions

pytestmark = pytest.mark.services

OPTIONS = QueueOptions(lease_timeout=10.0, max_deliveries=50)
TOPIC, GROUP = "jobs", "g"
BODIES = [b"m0", b"m1", b"m2"]
#: More suspensions than any call on loopback makes; reaching it means a hang.
MAX_POINTS = 200


@types.coroutine
def _cancel_at(
    coro: Coroutine[Any, Any, Any], point: int, seen: list[int]
) -> Generator[Any, Any, Any]:
    """Run ``coro``, cancelling the running task as it suspends for the ``point``-th time.

    ``point`` 0 never cancels: ``seen[0]`` then counts the suspensions of a whole run.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            yielded = coro.throw(error) if error is not None else coro.send(value)
        except StopIteration as stop:
            return stop.value
        seen[0] += 1
        if seen[0] == point:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
        value, error = None, None
        try:
            value = yield yielded
        except BaseException as exc:
            error = exc


@attrs.define
class World:
    """One scenario's queue, clock and the messages it has published and acked."""

    queue: AsyncRedisQueue
    clock: ManualClock
    published: set[bytes] = attrs.field(factory=set)
    acked: set[bytes] = attrs.field(factory=set)
    #: Bodies a cancelled publish may or may not have stored.
    maybe: set[bytes] = attrs.field(factory=set)
    held: list[Delivery] = attrs.field(factory=list)


async def _setup(url: str, *, receive_first: bool) -> World:
    clock = ManualClock()
    client = connect_async(url, RedisOptions(max_connections=2, socket_timeout=5.0))
    namespace = f"pstest:qcancel:{uuid.uuid4().hex[:12]}"
    queue = AsyncRedisQueue(client, clock, OPTIONS, namespace, owns_client=True)
    world = World(queue, clock)
    assert await queue.receive(TOPIC, GROUP, "c0") == Success([])
    for body in BODIES:
        (await queue.publish(TOPIC, body)).unwrap()
        world.published.add(body)
    if receive_first:
        world.held = (await queue.receive(TOPIC, GROUP, "c0", max_messages=2)).unwrap()
    return world


def _late_publish(world: World) -> Awaitable[Any]:
    async def publish_soon() -> None:
        await asyncio.sleep(0.05)
        (await world.queue.publish(TOPIC, b"late")).unwrap()

    world.published.add(b"late")
    return publish_soon()


#: Each method's call on a set-up world, and whether its world first leases two messages.
CALLS: dict[str, tuple[bool, Callable[[World], Awaitable[Any]]]] = {
    "publish": (False, lambda w: w.queue.publish(TOPIC, b"new")),
    "publish with a dedupe key": (False, lambda w: w.queue.publish(TOPIC, b"new", dedupe_key="k")),
    "publish_many": (False, lambda w: w.queue.publish_many(TOPIC, [b"new", b"new2"])),
    "receive": (False, lambda w: w.queue.receive(TOPIC, GROUP, "c1", max_messages=2)),
    "receive(wait=)": (True, lambda w: w.queue.receive(TOPIC, "idle", "c1", wait=0.3)),
    "ack": (True, lambda w: w.queue.ack(w.held[0])),
    "ack_many": (True, lambda w: w.queue.ack_many(w.held)),
    "nack": (True, lambda w: w.queue.nack(w.held[0], delay=2.0)),
    "extend": (True, lambda w: w.queue.extend(w.held[0], by=5.0)),
    "dead_letters": (True, lambda w: w.queue.dead_letters(TOPIC, GROUP)),
}
#: What a completed (or cancelled after the server ran it) call may have stored or acked.
EFFECTS: dict[str, tuple[set[bytes], bool]] = {
    "publish": ({b"new"}, False),
    "publish with a dedupe key": ({b"new"}, False),
    "publish_many": ({b"new", b"new2"}, False),
    "ack": (set(), True),
    "ack_many": (set(), True),
}


async def _check(world: World, method: str) -> None:
    """The queue works, holds no connection, and every message comes back exactly once."""
    queue = world.queue
    pool: Any = queue.client.connection_pool
    assert len(pool._in_use_connections) == 0, "a cancelled call kept its connection"
    assert len(pool._available_connections) + len(pool._in_use_connections) <= 2
    # The next call on the same pool gets its own reply, not the cancelled call's.
    assert isinstance(await queue.stored(TOPIC), Success)
    assert await queue.receive(TOPIC, "probe", "c9") == Success([])
    # A whole lease later every unacked message is due again, whoever held it.
    world.clock.advance(OPTIONS.lease_timeout + 1.0)
    drained = await _drain(queue, GROUP)
    # The waiting receive's own group gets the late message, once, whenever it came.
    assert await _drain(queue, "idle") in ([], [b"late"])
    assert len(drained) == len(set(drained)), f"delivered twice in one drain: {drained}"
    stored, acks = EFFECTS.get(method, (set(), False))
    expected = world.published
    gone = expected - set(drained)
    assert set(drained) <= expected | stored, f"unknown messages: {set(drained) - expected}"
    if acks:
        assert gone <= {d.message.body for d in world.held}, f"lost: {gone}"
    else:
        assert not gone, f"lost or orphaned under a lease: {gone}"
    assert (await queue.stored(TOPIC)).unwrap() == 0, "acked messages left in the stream"


async def _drain(queue: AsyncRedisQueue, group: str) -> list[bytes]:
    """Receive and ack until the group has nothing due; the bodies, in order."""
    drained: list[bytes] = []
    while True:
        got = (await queue.receive(TOPIC, group, "drain", max_messages=10)).unwrap()
        if not got:
            return drained
        drained += [d.message.body for d in got]
        assert (await queue.ack_many(got)).unwrap() == len(got)


async def _run(url: str, method: str, point: int) -> int:
    receive_first, call = CALLS[method]
    world = await _setup(url, receive_first=receive_first)
    late = None
    if method == "receive(wait=)":
        late = asyncio.ensure_future(_late_publish(world))
        assert await world.queue.receive(TOPIC, "idle", "c1") == Success([])
    seen = [0]
    try:
        task = asyncio.ensure_future(_cancel_at(call(world), point, seen))  # type: ignore[arg-type]
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if late is not None:
            await late
        await _check(world, method)
    finally:
        await world.queue.client.delete(*await _keys(world))
        await world.queue.aclose()
    return seen[0]


async def _keys(world: World) -> list[bytes]:
    pattern = f"{world.queue.namespace}:*"
    return [key async for key in world.queue.client.scan_iter(match=pattern)] or [b"-"]


@pytest.mark.parametrize("method", sorted(CALLS))
def test_cancelling_at_each_await_point_loses_and_orphans_nothing(
    method: str, redis_url: str
) -> None:
    """A call cancelled at any await point: pool usable, no orphaned lease, at least once."""
    points = asyncio.run(_run(redis_url, method, 0))
    assert points >= 1, "the call never suspended: nothing to cancel"
    assert points < MAX_POINTS
    for point in range(1, points + 1):
        asyncio.run(_run(redis_url, method, point))
