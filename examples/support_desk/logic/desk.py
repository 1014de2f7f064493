"""The support desk's use cases, written against ports only.

Nothing here knows whether tickets live in PostgreSQL or in memory, whether the queue
is Redis Streams or a list, or which model answers: ``Desk`` is given a unit-of-work
factory, a ``QueuePort``, a ``Clock`` and an ``AskTriage`` function, and the tests give
it fakes.

Why the LLM arrives as ``AskTriage`` rather than as an ``LLMPort``: turning a reply
into a ``Triage`` (JSON schema, checking, re-asking) is portside's structured-output
helper, which lives with the adapters. The desk decides *what* to ask and what to do
with the answer; the wiring decides *how* the answer is obtained (and cached).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, Protocol

import attrs
from returns.result import Failure, Result, Success

from examples.support_desk.logic.tickets import (
    Ticket,
    TicketView,
    Triage,
    input_problem,
    page_problem,
    triage_request,
)
from portside.domain import (
    ChatRequest,
    Delivery,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceError,
)
from portside.ports import Clock, QueuePort, UnitOfWork

__all__ = [
    "GROUP",
    "SERVICE",
    "TOPIC",
    "AskTriage",
    "Desk",
    "Outcome",
    "WorkReport",
    "list_tickets",
    "ticket_id_of",
]

#: The queue topic new tickets are published on, and the group of triage workers.
TOPIC: Final = "support_desk.tickets"
GROUP: Final = "triage"
#: The service name this module's own errors carry.
SERVICE: Final = "support_desk"

#: What handling one delivery did to its ticket.
Outcome = Literal["triaged", "retry", "duplicate", "unknown"]


class AskTriage(Protocol):
    """Asks the model to triage; ``fresh=True`` must not answer from a cache.

    Returns the model's errors unchanged (``RateLimited``, ``TimedOut``,
    ``ProtocolError`` when no reply fitted ``Triage``, ...).
    """

    def __call__(self, request: ChatRequest, *, fresh: bool) -> Result[Triage, ServiceError]:
        """The triage the model gives for ``request``."""
        ...


@attrs.frozen
class WorkReport:
    """What one ``Desk.work`` call did: outcomes per ticket, and errors it could not settle."""

    outcomes: tuple[tuple[str, Outcome], ...] = ()
    errors: tuple[ServiceError, ...] = ()

    @property
    def handled(self) -> int:
        """How many deliveries were settled (acked or given back)."""
        return len(self.outcomes)


def list_tickets(
    uow: UnitOfWork, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> Result[list[TicketView], ServiceError]:
    """Tickets in opening order (optionally of one ``status``), as frozen views.

    Joins ``uow`` when it is already open (a Flask request's unit of work).
    ``InvalidRequest`` for a bad ``limit`` or ``offset``; the store's errors otherwise.
    """
    problem = page_problem(limit, offset)
    if problem is not None:
        return Failure(InvalidRequest(service=SERVICE, operation="list", message=problem))
    where = None if status is None else {"status": status}
    with uow:
        found = uow.repository(Ticket).list(where=where, limit=limit, offset=offset)
        return found.map(lambda tickets: [t.view() for t in tickets])


@attrs.define
class Desk:
    """Opens tickets, triages them from the queue, and lists them.

    ``unit_of_work`` makes a fresh unit per call: the desk owns its transaction
    boundaries. A new ticket and its triage job are one commit (the job goes through
    the unit's outbox, ``uow.publish``), so the ticket is stored if and only if its job
    is: a queue that is down loses no job, and a failed commit sends none. The
    composition root relays committed jobs to ``queue`` (see ``PORTSIDE_OUTBOX_RELAY``).
    """

    unit_of_work: Callable[[], UnitOfWork]
    queue: QueuePort
    ask: AskTriage
    clock: Clock
    topic: str = TOPIC
    group: str = GROUP
    #: Longest wait before a failed triage is retried when the model gave no hint.
    max_backoff: float = 300.0

    # --- customers ------------------------------------------------------------------

    def open_ticket(
        self, customer: str, subject: str, body: str
    ) -> Result[TicketView, ServiceError]:
        """Store a new ticket and its triage job in one commit.

        ``InvalidRequest`` naming the bad field (nothing stored); the store's errors
        (nothing stored, no job). With the queue down the ticket and its job are still
        committed: the job waits in the outbox and the relay delivers it later.
        """
        problem = input_problem(customer, subject, body)
        if problem is not None:
            return Failure(InvalidRequest(service=SERVICE, operation="open", message=problem))
        ticket = Ticket.opened(customer, subject, body, self.clock.now())
        with self.unit_of_work() as uow:
            # The dedupe key makes a job relayed twice (a relay that died after
            # publishing) one message on the queue.
            stored = (
                uow.repository(Ticket)
                .add(ticket)
                .bind(
                    lambda _: uow.publish(
                        self.topic, ticket.id.encode(), dedupe_key=f"ticket:{ticket.id}"
                    )
                )
                .bind(lambda _: uow.commit())
            )
            view = ticket.view()
        return stored.map(lambda _: view)

    def get(self, ticket_id: str) -> Result[TicketView, ServiceError]:
        """The ticket ``ticket_id``; ``NotFound`` when there is none."""
        with self.unit_of_work() as uow:
            return uow.repository(Ticket).get(ticket_id).map(Ticket.view)

    def tickets(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> Result[list[TicketView], ServiceError]:
        """Tickets in opening order; see ``list_tickets``."""
        return list_tickets(self.unit_of_work(), status=status, limit=limit, offset=offset)

    # --- the worker -----------------------------------------------------------------

    def work(self, consumer: str, *, max_messages: int = 10, wait: float = 0.0) -> WorkReport:
        """Receive up to ``max_messages`` tickets and handle each (see ``handle``).

        Never raises and never loses a ticket: a delivery that could not be settled
        comes back when its lease runs out.
        """
        received = self.queue.receive(
            self.topic, self.group, consumer, max_messages=max_messages, wait=wait
        )
        if isinstance(received, Failure):
            return WorkReport(errors=(received.failure(),))
        outcomes: list[tuple[str, Outcome]] = []
        errors: list[ServiceError] = []
        for delivery in received.unwrap():
            match self.handle(delivery):
                case Success(outcome):
                    outcomes.append((ticket_id_of(delivery), outcome))
                case Failure(error):
                    errors.append(error)
        return WorkReport(tuple(outcomes), tuple(errors))

    def handle(self, delivery: Delivery) -> Result[Outcome, ServiceError]:
        """Triage the delivery's ticket (see ``triage``) and settle the delivery.

        Acked when ``triage`` succeeded. Given back when it failed: after the model's
        ``retry_after`` when it said, else after a backoff; after the queue's last
        attempt the message goes to the dead letters and ``requeue`` brings it back.
        ``Failure`` carries the triage error (the ticket is marked ``retry`` or
        unchanged) or the queue's error (the delivery then comes back when its lease
        runs out).
        """
        triaged = self.triage(ticket_id_of(delivery))
        match triaged:
            case Success(outcome):
                return self.queue.ack(delivery).map(lambda _: outcome)
            case Failure(error):
                self.queue.nack(delivery, delay=self._delay(error, delivery.attempt))
        return triaged

    def triage(self, ticket_id: str) -> Result[Outcome, ServiceError]:
        """Ask the model to triage ticket ``ticket_id`` and store the answer.

        ``Success`` means the message about this ticket is done:

        - ``triaged``: the answer is stored;
        - ``retry``: the model refused for good (unauthorized, quota, filtered); the
          ticket is marked ``retry`` with the reason and ``requeue`` retries it later;
        - ``duplicate``: the ticket was already triaged (a redelivery);
        - ``unknown``: no such ticket.

        ``Failure`` means "try again later": a retryable model error (rate limit,
        timeout, no reply that fits ``Triage``), with the ticket marked ``retry``; or
        the store's error, with the ticket unchanged.
        """
        loaded = self.get(ticket_id)
        match loaded:
            case Failure(NotFound()):
                return Success("unknown")
            case Failure(error):
                return Failure(error)
        ticket = loaded.unwrap()
        if ticket.status == "triaged":
            return Success("duplicate")
        # A retry must not be answered from the cache: the cached reply may be the
        # one that failed to fit.
        asked = self.ask(triage_request(ticket), fresh=ticket.attempts > 0)
        match asked:
            case Success(triage):
                return self._change(ticket_id, lambda t: t.record_triage(triage)).map(
                    lambda _: "triaged"
                )
            case Failure(error):
                marked = self._change(ticket_id, lambda t: t.record_failure(error))
                if isinstance(marked, Failure):
                    return Failure(marked.failure())
                return Failure(error) if error.retryable else Success("retry")
        return Failure(asked.failure())  # pragma: no cover - Result has two cases

    def requeue(self, *, stale_after: float = 600.0) -> Result[int, ServiceError]:
        """Publish again the tickets that wait for triage; returns how many.

        Those are every ticket marked ``retry`` and every ``new`` one older than
        ``stale_after`` seconds (its message may have been lost). Safe to run at any time
        (a cron job): a ticket published twice is triaged once,
        the second delivery is a ``duplicate``. Stops at the first queue error.
        """
        retry = self.tickets(status="retry", limit=500)
        stale = self.tickets(status="new", limit=500)
        if isinstance(retry, Failure):
            return Failure(retry.failure())
        if isinstance(stale, Failure):
            return Failure(stale.failure())
        cutoff = self.clock.now() - stale_after
        due = [*retry.unwrap(), *(t for t in stale.unwrap() if t.opened_at <= cutoff)]
        for ticket in due:
            if isinstance(published := self._publish(ticket), Failure):
                return Failure(published.failure())
        return Success(len(due))

    # --- helpers --------------------------------------------------------------------

    def _publish(self, ticket: TicketView) -> Result[str, ServiceError]:
        # No dedupe key: the queue would answer a requeue with the first job's id,
        # even when that job never reached a group.
        return self.queue.publish(self.topic, ticket.id.encode())

    def _change(
        self, ticket_id: str, change: Callable[[Ticket], None]
    ) -> Result[TicketView, ServiceError]:
        with self.unit_of_work() as uow:
            loaded = uow.repository(Ticket).get(ticket_id)
            if isinstance(loaded, Failure):
                return Failure(loaded.failure())
            ticket = loaded.unwrap()
            change(ticket)
            view = ticket.view()
            return uow.commit().map(lambda _: view)

    def _delay(self, error: ServiceError, attempt: int) -> float:
        # The model's own hint first; otherwise exponential, capped.
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_backoff)
        return float(min(2 ** min(attempt, 16), self.max_backoff))


def ticket_id_of(delivery: Delivery) -> str:
    """The id of the ticket a delivery is about (the message body)."""
    return delivery.message.body.decode("utf-8", "replace")
