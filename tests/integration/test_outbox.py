"""The transactional outbox: a message is delivered if and only if its unit commits.

Each test runs on the fake with the in-memory queue, on SQLite with the in-memory
queue, and on PostgreSQL and MariaDB with Redis.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from returns.result import Failure, Success
from sqlalchemy import Column, Integer, String, Table

from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryQueue
from portside.adapters.outbox import OutboxRelay, RelayReport
from portside.adapters.redis import RedisQueue
from portside.domain import Conflict, InvalidRequest, TimedOut, Unavailable
from portside.ports import QueuePort
from tests.integration._uow_backends import BACKENDS, database_for


@attrs.define(slots=False, eq=False)
class Ticket:
    id: int
    title: str
    version: int = 0


class Crash(BaseException):
    """A relay process dying in the middle of a round (nothing after it runs)."""


@pytest.fixture(name="database", params=BACKENDS)
def _database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    entities = Entities()
    table = Table(
        f"ps_tickets_{uuid.uuid4().hex[:10]}",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("title", String(40), nullable=False),
        Column("version", Integer, nullable=False),
    )
    entities.map(Ticket, table, version="version")
    with database_for(request, tmp_path, entities) as database:
        yield database


@pytest.fixture(name="queue")
def _queue(request: pytest.FixtureRequest, database: Any) -> Iterator[QueuePort]:
    """The in-memory queue beside the fake and SQLite, Redis beside the servers."""
    backend = request.node.callspec.params["database"]
    queue: QueuePort
    if backend in {"memory", "sqlite"}:
        queue = MemoryQueue()
    else:
        url = request.getfixturevalue("redis_url")
        queue = RedisQueue.from_url(url, namespace=f"ps-outbox-{uuid.uuid4().hex[:8]}")
    try:
        yield queue
    finally:
        queue.close()


def _received(queue: QueuePort, topic: str) -> list[bytes]:
    """Every body a fresh group gets from ``topic``, in delivery order."""
    deliveries = queue.receive(topic, "readers", "r1", max_messages=1000).unwrap()
    return [delivery.message.body for delivery in deliveries]


def _broken_promises(database: Any, queue: QueuePort) -> dict[str, set[bytes]]:
    """The outbox invariant on topic ``jobs``, whose bodies name a ticket: what breaks it.

    ``uncommitted``: delivered for a ticket that was never committed; ``lost``: a
    committed ticket's message not delivered; ``duplicated``: delivered more than once.
    """
    with database.unit_of_work() as uow:
        committed = {t.title.encode() for t in uow.repository(Ticket).list().unwrap()}
    delivered = _received(queue, "jobs")
    return {
        "uncommitted": set(delivered) - committed,
        "lost": committed - set(delivered),
        "duplicated": {body for body in delivered if delivered.count(body) > 1},
    }


_KEPT: dict[str, set[bytes]] = {"uncommitted": set(), "lost": set(), "duplicated": set()}


class Failed(Exception):
    """Raised inside a unit of work or a savepoint by these tests."""


def _publish_then_fail(block: Any, body: bytes, uow: Any = None) -> None:
    """Publish ``body`` inside ``block`` (a unit, or a savepoint of ``uow``), then raise."""
    with block as entered:
        (uow or entered).publish("jobs", body)
        raise Failed


def _commit_ticket(database: Any, ticket_id: int, *messages: tuple[str, bytes]) -> None:
    with database.unit_of_work() as uow:
        uow.repository(Ticket).add(Ticket(ticket_id, f"ticket {ticket_id}"))
        for topic, body in messages:
            assert uow.publish(topic, body) == Success(None)
        assert uow.commit() == Success(None)


def test_a_committed_message_is_delivered_once(database: Any, queue: QueuePort) -> None:
    """A message published in a committed unit reaches the queue once; the outbox empties."""
    _commit_ticket(database, 1, ("jobs", b"ticket 1"))
    _commit_ticket(database, 2, ("jobs", b"ticket 2"))
    relay = OutboxRelay(database, queue)
    assert relay.lag().unwrap() >= 0.0
    assert relay.relay_once() == Success(RelayReport(published=2, held_back=0))
    assert relay.relay_once() == Success(RelayReport(published=0, held_back=0))
    assert relay.lag() == Success(0.0)
    assert _broken_promises(database, queue) == _KEPT


def test_rolled_back_raised_and_conflicted_units_deliver_nothing(
    database: Any, queue: QueuePort
) -> None:
    """Messages of units that roll back, raise or conflict never reach the outbox."""
    _commit_ticket(database, 1, ("jobs", b"ticket 1"))
    with database.unit_of_work() as uow:
        uow.publish("jobs", b"left without commit")
    with database.unit_of_work() as uow:
        uow.publish("jobs", b"rolled back")
        uow.rollback()
        assert uow.commit() == Success(None)
    with pytest.raises(Failed):
        _publish_then_fail(database.unit_of_work(), b"raised")
    first, second = database.unit_of_work(), database.unit_of_work()
    with first, second:
        first.repository(Ticket).get(1).unwrap().title = "first"
        second.repository(Ticket).get(1).unwrap().title = "second"
        second.publish("jobs", b"conflicted")
        assert first.commit() == Success(None)
        assert isinstance(second.commit().failure(), Conflict)
    with database.unit_of_work() as uow:
        uow.repository(Ticket).add(Ticket(1, "duplicate key"))
        uow.publish("jobs", b"duplicate")
        assert isinstance(uow.commit(), Failure)
    relay = OutboxRelay(database, queue)
    assert relay.relay_once() == Success(RelayReport(published=1, held_back=0))
    # The conflict test renamed ticket 1 to "first"; its message keeps the name it had.
    assert _received(queue, "jobs") == [b"ticket 1"]


def test_a_failed_savepoint_takes_its_messages_with_it(database: Any, queue: QueuePort) -> None:
    """A message published inside a savepoint that fails is not stored; earlier ones are."""
    with database.unit_of_work() as uow:
        uow.publish("jobs", b"kept")
        with pytest.raises(Failed):
            _publish_then_fail(uow.savepoint(), b"undone", uow)
        assert uow.commit() == Success(None)
    assert OutboxRelay(database, queue).relay_once().unwrap().published == 1
    assert _received(queue, "jobs") == [b"kept"]


def test_a_relay_that_dies_after_publishing_causes_no_second_delivery(
    database: Any, queue: QueuePort
) -> None:
    """Killed between publish and removal, the next round republishes under the same key."""
    _commit_ticket(database, 1, ("jobs", b"ticket 1"))
    _commit_ticket(database, 2, ("jobs", b"ticket 2"))

    @attrs.define
    class DiesAfterPublishing:
        inner: QueuePort

        def publish(self, *args: Any, **kwargs: Any) -> Any:
            self.inner.publish(*args, **kwargs)
            raise Crash

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    with pytest.raises(Crash):
        OutboxRelay(database, DiesAfterPublishing(queue), lease=30.0).relay_once()
    # The dead relay's lease (SQLite, the fake) is left to run out, as a killed one's is.
    relay = OutboxRelay(database, queue, clock=lambda: time.time() + 60.0)
    assert relay.relay_once() == Success(RelayReport(published=2, held_back=0))
    assert _broken_promises(database, queue) == _KEPT


def test_each_topic_keeps_its_commit_order(database: Any, queue: QueuePort) -> None:
    """Messages of many units reach each topic in the order their units committed."""
    for n in range(1, 13):
        _commit_ticket(database, n, (f"t{n % 3}", f"{n}".encode()), ("all", f"{n}".encode()))
    relay = OutboxRelay(database, queue)
    while relay.relay_once(max_messages=5).unwrap().published:
        pass
    assert _received(queue, "all") == [f"{n}".encode() for n in range(1, 13)]
    for topic in range(3):
        expected = [f"{n}".encode() for n in range(1, 13) if n % 3 == topic]
        assert _received(queue, f"t{topic}") == expected


def test_two_relays_at_once_neither_duplicate_nor_reorder(database: Any, queue: QueuePort) -> None:
    """While one relay holds the oldest messages, another skips their topic and no more."""
    _commit_ticket(database, 1, ("a", b"a1"), ("a", b"a2"), ("b", b"b1"))
    _commit_ticket(database, 2, ("a", b"a3"), ("b", b"b2"))
    first = OutboxRelay(database, queue)
    second = OutboxRelay(database, queue)
    inner: list[Any] = []

    @attrs.define
    class SecondRelayMidway:
        """The first relay's queue: the second relay runs while the first holds its claim."""

        inner: QueuePort

        def publish(self, *args: Any, **kwargs: Any) -> Any:
            if not inner:
                inner.append(second.relay_once(max_messages=10))
            return self.inner.publish(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    first.queue = SecondRelayMidway(queue)
    assert first.relay_once(max_messages=2) == Success(RelayReport(published=2, held_back=0))
    # The second relay got b1, b2 (topic b free); a3 waited behind the first's a1, a2.
    assert inner == [Success(RelayReport(published=2, held_back=1))]
    assert second.relay_once() == Success(RelayReport(published=1, held_back=0))
    assert _received(queue, "a") == [b"a1", b"a2", b"a3"]
    assert _received(queue, "b") == [b"b1", b"b2"]


def test_bad_messages_are_refused_and_stage_nothing(database: Any, queue: QueuePort) -> None:
    """A bad topic, body, header or dedupe key is InvalidRequest naming it; nothing stored."""
    with database.unit_of_work() as uow:
        bad: list[tuple[str, Any]] = [
            ("topic", uow.publish("", b"x")),
            ("topic", uow.publish(7, b"x")),
            ("body", uow.publish("jobs", "text")),
            ("body", uow.publish("jobs", b"x" * (1024 * 1024 + 1))),
            ("header", uow.publish("jobs", b"x", headers={"k": 1})),
            ("dedupe key", uow.publish("jobs", b"x", dedupe_key="\n")),
        ]
        for name, result in bad:
            assert isinstance(result.failure(), InvalidRequest)
            assert name in result.failure().message
        assert uow.commit() == Success(None)
    relay = OutboxRelay(database, queue)
    assert isinstance(relay.relay_once(max_messages=0).failure(), InvalidRequest)
    assert relay.relay_once() == Success(RelayReport(published=0, held_back=0))


def test_publishing_before_commit_is_caught(database: Any, queue: QueuePort) -> None:
    """Negative control: publishing straight to the queue before commit breaks the invariant."""
    with database.unit_of_work() as uow:
        uow.repository(Ticket).add(Ticket(1, "never committed"))
        queue.publish("jobs", b"ticket 1")  # the bug the outbox exists to prevent
        uow.rollback()
    _commit_ticket(database, 2, ("jobs", b"ticket 2"))
    OutboxRelay(database, queue).relay_once().unwrap()
    assert _broken_promises(database, queue) == {**_KEPT, "uncommitted": {b"ticket 1"}}


def test_a_queue_outage_stops_the_round_and_loses_nothing(database: Any, queue: QueuePort) -> None:
    """The queue failing mid-round is the round's result; the rest go later, in order."""
    for n in range(1, 5):
        _commit_ticket(database, n, ("jobs", f"ticket {n}".encode()))

    @attrs.define
    class DownAfterOne:
        inner: QueuePort
        calls: int = 0

        def publish(self, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls > 1:
                return Failure(Unavailable(service="queue", operation="publish", message="down"))
            return self.inner.publish(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    outage = OutboxRelay(database, DownAfterOne(queue))
    assert isinstance(outage.relay_once().failure(), Unavailable)
    relay = OutboxRelay(database, queue)
    assert relay.relay_once() == Success(RelayReport(published=3, held_back=0))
    assert _received(queue, "jobs") == [f"ticket {n}".encode() for n in range(1, 5)]


def test_a_relay_whose_lease_ran_out_is_overtaken_without_a_second_delivery(
    database: Any, queue: QueuePort
) -> None:
    """A stalled relay's expired lease lets another publish; one dedupe key, one delivery."""
    _commit_ticket(database, 1, ("jobs", b"ticket 1"))
    _commit_ticket(database, 2, ("jobs", b"ticket 2"))
    later = OutboxRelay(database, queue, clock=lambda: time.time() + 120.0)
    overtaken: list[Any] = []

    @attrs.define
    class Stalls:
        """The stalled relay's queue: the later relay runs before each of its publishes."""

        inner: QueuePort

        def publish(self, *args: Any, **kwargs: Any) -> Any:
            overtaken.append(later.relay_once())
            return self.inner.publish(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    assert OutboxRelay(database, Stalls(queue), lease=30.0).relay_once().unwrap().published == 2
    locks_rows = request_backend(database) in {"postgresql", "mysql"}
    # Row locks hold for the stalled relay's whole round; a lease does not outlive 30 s.
    assert overtaken[0].unwrap().published == (0 if locks_rows else 2)
    assert _broken_promises(database, queue) == _KEPT
    assert OutboxRelay(database, queue).lag() == Success(0.0)


def request_backend(database: Any) -> str:
    """The dialect of a SQL ``Database``, ``memory`` for the fake."""
    engine = getattr(database, "engine", None)
    return "memory" if engine is None else str(engine.dialect.name)


def test_relays_in_threads_deliver_each_message_once_in_topic_order(
    database: Any, queue: QueuePort
) -> None:
    """Three relays racing over one outbox: every message once, each topic in order."""
    for n in range(1, 41):
        _commit_ticket(database, n, (f"t{n % 2}", f"{n}".encode()))
    errors: list[Any] = []

    def run() -> None:
        relay = OutboxRelay(database, queue)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            result = relay.relay_once(max_messages=3)
            if isinstance(result, Failure):
                errors.append(result.failure())  # e.g. SQLite busy: the next round retries
                continue
            if result.unwrap() == RelayReport(published=0, held_back=0):
                return

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert OutboxRelay(database, queue).lag() == Success(0.0)
    for topic in range(2):
        expected = [f"{n}".encode() for n in range(1, 41) if n % 2 == topic]
        assert _received(queue, f"t{topic}") == expected
    assert all(isinstance(error, Unavailable | TimedOut) for error in errors), errors
