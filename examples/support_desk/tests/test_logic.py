"""Unit tier: the desk's business logic on in-memory fakes, no I/O."""

from __future__ import annotations

import json
import time
from typing import Any

import attrs
import pytest
from returns.result import Failure, Result, Success

from examples.support_desk.logic import Desk, Ticket
from examples.support_desk.tests.conftest import MakeDesk, Relayed
from examples.support_desk.wiring import keyword_triage, structured_triage
from portside.adapters.entities import Entities
from portside.adapters.memory import (
    FakeLLM,
    ManualClock,
    MemoryDatabase,
    MemoryQueue,
    MemoryUnitOfWork,
)
from portside.adapters.outbox import OutboxRelay
from portside.domain import (
    InvalidRequest,
    ProtocolError,
    ServiceError,
    Unavailable,
)

VALID = json.dumps({"category": "billing", "summary": "Charged twice for one order"})


def _open(desk: Desk, subject: str = "Charged twice", body: str = "Two payments.") -> str:
    return desk.open_ticket("ann@example.com", subject, body).unwrap().id


def test_a_new_ticket_is_stored_and_published(make_desk: MakeDesk) -> None:
    """Opening a ticket stores it as new and publishes its id for the triage group."""
    desk = make_desk()
    ticket_id = _open(desk)
    assert desk.get(ticket_id).unwrap().status == "new"
    deliveries = desk.queue.receive(desk.topic, desk.group, "worker").unwrap()
    assert [d.message.body for d in deliveries] == [ticket_id.encode()]


@pytest.mark.parametrize(
    ("customer", "subject", "body", "field"),
    [
        ("", "s", "b", "customer"),
        ("ann", "two\nlines", "b", "subject"),
        ("ann", "s", "   ", "body"),
        ("ann", "s", "x" * 5001, "body"),
        ("ann", 7, "b", "subject"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    make_desk: MakeDesk, customer: str, subject: str, body: str, field: str
) -> None:
    """A bad field is InvalidRequest naming it; nothing is stored and nothing published."""
    desk = make_desk()
    result = desk.open_ticket(customer, subject, body)
    match result:
        case Failure(InvalidRequest(message=message)):
            assert message.startswith(field)
        case _:
            pytest.fail(f"expected InvalidRequest, got {result}")
    assert desk.tickets().unwrap() == []
    assert desk.queue.receive(desk.topic, desk.group, "worker").unwrap() == []


def test_the_worker_stores_the_models_triage(make_desk: MakeDesk) -> None:
    """A fitting reply is stored as the ticket's triage and the delivery is acked."""
    desk = make_desk(responder=lambda _request: VALID)
    ticket_id = _open(desk)
    report = desk.work("worker")
    assert report.outcomes == ((ticket_id, "triaged"),)
    ticket = desk.get(ticket_id).unwrap()
    assert (ticket.status, ticket.category, ticket.summary) == (
        "triaged",
        "billing",
        "Charged twice for one order",
    )
    assert desk.queue.receive(desk.topic, desk.group, "worker").unwrap() == []


def test_a_reply_that_never_fits_marks_the_ticket_and_retries_without_the_cache(
    make_desk: MakeDesk, manual_clock: ManualClock
) -> None:
    """No fitting reply marks the ticket retry; the retry asks the model, not the cache."""
    llm = FakeLLM()
    llm.reply("not json")
    llm.reply('{"category": "billing", "summary": "two\\nlines"}')
    desk = make_desk(llm)
    ticket_id = _open(desk)
    report = desk.work("worker")
    assert [type(e) for e in report.errors] == [ProtocolError]
    ticket = desk.get(ticket_id).unwrap()
    assert ticket.status == "retry"
    assert ticket.last_error is not None
    assert ticket.last_error.startswith("ProtocolError")
    llm.reply(VALID)
    manual_clock.advance(2.0)  # the backoff after a first attempt
    assert desk.work("worker").outcomes == ((ticket_id, "triaged"),)
    assert llm.received() == 3


def test_a_rate_limit_gives_the_ticket_back_after_retry_after(
    make_desk: MakeDesk, manual_clock: ManualClock
) -> None:
    """RateLimited(retry_after=30) is retried when the model said, not sooner."""
    llm = FakeLLM(responder=lambda _request: VALID)
    llm.fail("rate_limited", retry_after=30.0)
    desk = make_desk(llm)
    ticket_id = _open(desk)
    desk.work("worker")
    assert desk.get(ticket_id).unwrap().status == "retry"
    manual_clock.advance(29.0)
    assert desk.work("worker").handled == 0
    manual_clock.advance(1.0)
    assert desk.work("worker").outcomes == ((ticket_id, "triaged"),)


def test_a_refusal_for_good_is_acked_and_requeue_brings_it_back(make_desk: MakeDesk) -> None:
    """A non-retryable model error marks retry and acks; requeue publishes it again."""
    llm = FakeLLM(responder=lambda _request: VALID)
    llm.fail("unauthorized")
    desk = make_desk(llm)
    ticket_id = _open(desk)
    assert desk.work("worker").outcomes == ((ticket_id, "retry"),)
    assert desk.work("worker").handled == 0
    assert desk.requeue() == Success(1)
    assert desk.work("worker").outcomes == ((ticket_id, "triaged"),)


def test_a_redelivered_ticket_is_triaged_once(make_desk: MakeDesk) -> None:
    """A second message about a triaged ticket is acked as a duplicate, the model unasked."""
    llm = FakeLLM(responder=lambda _request: VALID)
    desk = make_desk(llm)
    ticket_id = _open(desk)
    desk.work("worker")
    desk.queue.publish(desk.topic, ticket_id.encode()).unwrap()
    assert desk.work("worker").outcomes == ((ticket_id, "duplicate"),)
    assert llm.received() == 1


def test_a_message_about_no_ticket_is_dropped(make_desk: MakeDesk) -> None:
    """A message naming no stored ticket is acked as unknown."""
    desk = make_desk(responder=lambda _request: VALID)
    desk.queue.publish(desk.topic, b"no-such-ticket").unwrap()
    assert desk.work("worker").outcomes == (("no-such-ticket", "unknown"),)
    assert desk.queue.receive(desk.topic, desk.group, "worker").unwrap() == []


def test_the_same_question_is_answered_from_the_cache(make_desk: MakeDesk) -> None:
    """Two tickets with the same text cost one model call: the second is a cache hit."""
    llm = FakeLLM(responder=keyword_triage)
    desk = make_desk(llm)
    first, second = _open(desk), _open(desk)
    assert desk.work("worker").outcomes == ((first, "triaged"), (second, "triaged"))
    assert llm.received() == 1
    assert desk.get(second).unwrap().category == "billing"


@attrs.define
class _SwitchableQueue(MemoryQueue):
    """A queue whose publish fails while ``down``, as when Redis is unreachable."""

    down: bool = attrs.field(default=True, kw_only=True)

    def publish(self, *args: Any, **kwargs: Any) -> Result[str, ServiceError]:
        if self.down:
            return Failure(Unavailable(service="queue", operation="publish", message="down"))
        return super().publish(*args, **kwargs)


@attrs.define
class _CommitFails(MemoryUnitOfWork):
    """A unit whose commit fails, as when the database goes away at COMMIT."""

    def _commit(self) -> Result[None, ServiceError]:
        self._discard()
        return Failure(Unavailable(service="uow", operation="commit", message="gone"))


def test_a_ticket_opened_while_the_queue_is_down_keeps_its_job(
    entities: Entities, manual_clock: ManualClock, relayed: Relayed
) -> None:
    """With the queue down the ticket and its job are committed; the relay loop delivers later."""
    database, queue = MemoryDatabase(entities), _SwitchableQueue(clock=manual_clock)
    desk = Desk(
        relayed(database, queue),
        queue,
        structured_triage(FakeLLM(responder=lambda _r: VALID)),
        manual_clock,
    )
    ticket = desk.open_ticket("ann", "Charged twice", "Two payments.").unwrap()
    assert ticket.status == "new"
    assert [m.body for m in database.outbox.values()] == [ticket.id.encode()]
    queue.down = False
    # The after-commit round failed, so the background relay loop retries (real time).
    deadline = time.monotonic() + 15.0
    while database.outbox and time.monotonic() < deadline:
        time.sleep(0.02)
    assert database.outbox == {}
    assert desk.work("worker").outcomes == ((ticket.id, "triaged"),)
    queue.close()


def test_a_ticket_whose_commit_fails_sends_no_job(
    entities: Entities, manual_clock: ManualClock
) -> None:
    """A failed commit stores neither the ticket nor its job: nothing reaches the queue."""
    database, queue = MemoryDatabase(entities), MemoryQueue(clock=manual_clock)
    desk = Desk(lambda: _CommitFails(database), queue, structured_triage(FakeLLM()), manual_clock)
    opened = desk.open_ticket("ann", "Charged twice", "Two payments.")
    assert opened.failure().kind == "Unavailable"
    assert database.outbox == {}
    with database.unit_of_work() as uow:
        assert uow.repository(Ticket).list().unwrap() == []
    assert OutboxRelay(database, queue).relay_once().unwrap().published == 0
    assert queue.receive(desk.topic, desk.group, "worker").unwrap() == []
    queue.close()


def test_a_ticket_opened_before_any_worker_ran_is_triaged_by_the_first(
    make_desk: MakeDesk,
) -> None:
    """A ticket published while no worker had ever started is triaged by the first one."""
    desk = make_desk(responder=lambda _request: VALID)
    ticket_id = _open(desk)  # no consumer group exists yet: the queue keeps the message
    assert desk.work("worker").outcomes == ((ticket_id, "triaged"),)
    assert desk.requeue(stale_after=0.0) == Success(0)


def test_listing_refuses_a_bad_page(make_desk: MakeDesk) -> None:
    """A limit outside 1 to 500 is InvalidRequest."""
    desk = make_desk()
    assert isinstance(desk.tickets(limit=0).failure(), InvalidRequest)


def test_listing_is_in_opening_order(make_desk: MakeDesk, manual_clock: ManualClock) -> None:
    """Tickets are listed in the order they were opened."""
    desk = make_desk()
    ids = []
    for subject in ("first", "second", "third"):
        ids.append(_open(desk, subject))
        manual_clock.advance(1.0)
    assert [t.id for t in desk.tickets().unwrap()] == ids
    assert [t.subject for t in desk.tickets(limit=2, offset=1).unwrap()] == ["second", "third"]
