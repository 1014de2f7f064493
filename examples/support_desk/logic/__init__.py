"""The support desk's business logic: imports ``domain`` and ``ports`` only.

import-linter checks that nothing here imports ``adapters``, ``openai``, ``redis``,
``sqlalchemy`` or ``flask``: the same code runs on fakes in unit tests and on real
services in production.
"""

from examples.support_desk.logic.async_desk import AsyncDesk
from examples.support_desk.logic.desk import (
    GROUP,
    SERVICE,
    TOPIC,
    AskTriage,
    Desk,
    Outcome,
    WorkReport,
    list_tickets,
    ticket_id_of,
)
from examples.support_desk.logic.tickets import (
    CATEGORIES,
    Category,
    Ticket,
    TicketView,
    Triage,
    triage_request,
)

__all__ = [
    "CATEGORIES",
    "GROUP",
    "SERVICE",
    "TOPIC",
    "AskTriage",
    "AsyncDesk",
    "Category",
    "Desk",
    "Outcome",
    "Ticket",
    "TicketView",
    "Triage",
    "WorkReport",
    "list_tickets",
    "ticket_id_of",
    "triage_request",
]
