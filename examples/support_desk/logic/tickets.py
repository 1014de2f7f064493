"""Tickets, their triage, and the question the LLM is asked: plain values, no I/O."""

from __future__ import annotations

import uuid
from typing import Any, Final, Literal, cast, get_args

import attrs

from portside.domain import ChatMessage, ChatRequest, ServiceError

__all__ = [
    "CATEGORIES",
    "MAX_BODY",
    "MAX_LINE",
    "Category",
    "Status",
    "Ticket",
    "TicketView",
    "Triage",
    "input_problem",
    "page_problem",
    "triage_request",
]

Category = Literal["billing", "bug", "account", "feature_request", "other"]
#: The categories a ticket can be given, in the order the model is told them.
CATEGORIES: Final[tuple[str, ...]] = get_args(Category)

#: ``new`` until the worker has tried; then ``triaged``, or ``retry`` with the reason.
Status = Literal["new", "triaged", "retry"]

#: The longest customer name, subject or summary, in characters.
MAX_LINE: Final = 200
#: The longest ticket body, in characters.
MAX_BODY: Final = 5000


def _one_line(_instance: object, _attribute: object, value: str) -> None:
    # The model is told this exact sentence when it breaks the rule, and asked again.
    if not value.strip() or "\n" in value or len(value) > MAX_LINE:
        raise ValueError(f"summary must be one non-empty line of at most {MAX_LINE} characters")


@attrs.frozen
class Triage:
    """What the model is asked for: a category and a one-line summary.

    The validator is part of the structured-output contract: a reply whose summary is
    empty, multi-line or too long does not fit, and the model is asked again.
    """

    category: Category
    summary: str = attrs.field(validator=_one_line)


@attrs.define(slots=False)
class Ticket:
    """A customer's ticket as stored (an entity: mutable inside a unit of work only).

    ``attempts`` counts triage attempts; ``version`` is the optimistic-concurrency
    column, so two workers triaging one ticket cannot both write.
    """

    id: str
    customer: str
    subject: str
    body: str
    opened_at: float
    status: str = "new"
    category: str | None = None
    summary: str | None = None
    last_error: str | None = None
    attempts: int = 0
    version: int = 0

    @classmethod
    def opened(cls, customer: str, subject: str, body: str, now: float) -> Ticket:
        """A new ticket opened at ``now``, its names stripped.

        Its id sorts by opening time, so listing by identity key lists by opening time.
        """
        return cls(
            id=f"{int(now * 1000):014d}-{uuid.uuid4().hex[:10]}",
            customer=customer.strip(),
            subject=subject.strip(),
            body=body,
            opened_at=now,
        )

    def record_triage(self, triage: Triage) -> None:
        """Store the model's answer; the ticket is triaged."""
        self.status = "triaged"
        self.category = triage.category
        self.summary = triage.summary
        self.last_error = None
        self.attempts += 1

    def record_failure(self, error: ServiceError) -> None:
        """Remember why triage failed; the ticket waits for another attempt."""
        self.status = "retry"
        self.last_error = f"{error.kind}: {error.message}"[:MAX_LINE]
        self.attempts += 1

    def view(self) -> TicketView:
        """A frozen copy that may leave the unit of work."""
        return TicketView(
            id=self.id,
            customer=self.customer,
            subject=self.subject,
            body=self.body,
            opened_at=self.opened_at,
            status=self.status,
            category=self.category,
            summary=self.summary,
            last_error=self.last_error,
            attempts=self.attempts,
        )


@attrs.frozen
class TicketView:
    """A ticket as the outside world sees it (what the service functions return)."""

    id: str
    customer: str
    subject: str
    body: str
    opened_at: float
    status: str
    category: str | None
    summary: str | None
    last_error: str | None
    attempts: int

    @property
    def triage(self) -> Triage | None:
        """The triage when the ticket has one."""
        if self.status != "triaged" or self.category not in CATEGORIES or self.summary is None:
            return None
        return Triage(cast(Category, self.category), self.summary)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the HTTP API returns)."""
        return attrs.asdict(self)


def page_problem(limit: object, offset: object) -> str | None:
    """Why a page of tickets cannot be listed, or ``None`` (limit 1 to 500, offset >= 0)."""
    if (
        not isinstance(limit, int)
        or not isinstance(offset, int)
        or not 1 <= limit <= 500
        or offset < 0
    ):
        return "limit must be 1 to 500 and offset not negative"
    return None


def input_problem(customer: object, subject: object, body: object) -> str | None:
    """Why these fields cannot open a ticket, or ``None`` when they can."""
    for name, value in (("customer", customer), ("subject", subject)):
        if not isinstance(value, str) or not value.strip():
            return f"{name} must be a non-empty string"
        if len(value) > MAX_LINE or "\n" in value or "\r" in value:
            return f"{name} must be one line of at most {MAX_LINE} characters"
    if not isinstance(body, str) or not body.strip():
        return "body must be a non-empty string"
    if len(body) > MAX_BODY:
        return f"body must be at most {MAX_BODY} characters"
    return None


_INSTRUCTIONS: Final = (
    "You triage customer support tickets. Choose exactly one category among: "
    + ", ".join(CATEGORIES)
    + ". Write a neutral one-line summary of at most 120 characters. "
    "Answer with a JSON object only."
)


def triage_request(ticket: TicketView) -> ChatRequest:
    """The question about ``ticket``: deterministic (temperature 0), so it is cacheable."""
    return ChatRequest(
        messages=(
            ChatMessage.system(_INSTRUCTIONS),
            ChatMessage.user(f"Subject: {ticket.subject}\n\n{ticket.body}"),
        ),
        temperature=0.0,
        max_tokens=200,
    )
