"""The support desk's customer-facing use cases for asyncio, on async ports only.

``AsyncDesk`` is what the FastAPI flavour of the API calls: open a ticket (the ticket and
its triage job in one commit, through the unit's outbox, as ``Desk.open_ticket``
does), read one, list them. The triage itself stays with ``Desk`` and the worker: the
rules (what a valid ticket is, ``Ticket.opened``, which topic a job goes to, the page
limits) are the same values and functions, so the two flavours cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from returns.result import Failure, Result

from examples.support_desk.logic.desk import SERVICE, TOPIC
from examples.support_desk.logic.tickets import Ticket, TicketView, input_problem, page_problem
from portside.domain import InvalidRequest, ServiceError
from portside.ports import AsyncUnitOfWork, Clock

__all__ = ["AsyncDesk"]


@attrs.define
class AsyncDesk:
    """Opens, reads and lists tickets over an async unit-of-work factory.

    ``unit_of_work`` makes a fresh async unit per call; ``clock`` stamps new tickets.
    """

    unit_of_work: Callable[[], AsyncUnitOfWork]
    clock: Clock
    topic: str = TOPIC

    async def open_ticket(
        self, customer: object, subject: object, body: object
    ) -> Result[TicketView, ServiceError]:
        """Store a new ticket and its triage job in one commit.

        ``InvalidRequest`` naming the bad field (nothing stored); the store's errors
        (nothing stored, no job). The job waits in the outbox until it is relayed.
        """
        problem = input_problem(customer, subject, body)
        if problem is not None:
            return Failure(InvalidRequest(service=SERVICE, operation="open", message=problem))
        # input_problem accepted them, so all three are strings.
        assert isinstance(customer, str)
        assert isinstance(subject, str)
        assert isinstance(body, str)
        ticket = Ticket.opened(customer, subject, body, self.clock.now())
        async with self.unit_of_work() as uow:
            added = await uow.repository(Ticket).add(ticket)
            if isinstance(added, Failure):
                return Failure(added.failure())
            # The dedupe key makes a job relayed twice one message on the queue.
            staged = uow.publish(self.topic, ticket.id.encode(), dedupe_key=f"ticket:{ticket.id}")
            if isinstance(staged, Failure):
                return Failure(staged.failure())
            committed = await uow.commit()
            view = ticket.view()
        return committed.map(lambda _: view)

    async def get(self, ticket_id: str) -> Result[TicketView, ServiceError]:
        """The ticket ``ticket_id``; ``NotFound`` when there is none."""
        async with self.unit_of_work() as uow:
            return (await uow.repository(Ticket).get(ticket_id)).map(Ticket.view)

    async def tickets(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> Result[list[TicketView], ServiceError]:
        """Tickets in opening order (optionally of one ``status``), as frozen views.

        ``InvalidRequest`` for a bad ``limit`` or ``offset``; the store's errors otherwise.
        """
        problem = page_problem(limit, offset)
        if problem is not None:
            return Failure(InvalidRequest(service=SERVICE, operation="list", message=problem))
        where = None if status is None else {"status": status}
        async with self.unit_of_work() as uow:
            found = await uow.repository(Ticket).list(where=where, limit=limit, offset=offset)
            return found.map(lambda tickets: [t.view() for t in tickets])
