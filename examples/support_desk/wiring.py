"""The adapter side of the support desk: tables, structured output, the embedded LLM.

This is the only module of the example (besides the Flask app and the worker) that
knows about SQLAlchemy and portside's adapters. Swapping PostgreSQL for SQLite, Redis
for memory or OpenAI for the fake happens in ``portside.adapters.app._services`` from the
environment; the desk itself never changes.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Final

from returns.result import Result
from sqlalchemy import Column, Float, Integer, String, Table, Text

from examples.support_desk.logic import AskTriage, Desk, Ticket, Triage
from portside.adapters.app import Services, build_services, load_settings
from portside.adapters.entities import Entities
from portside.adapters.llm_cache import CachingLLM
from portside.adapters.memory import FakeLLM
from portside.adapters.structured import complete_structured
from portside.domain import ChatRequest, ServiceError
from portside.ports import LLMPort

__all__ = [
    "DEFAULT_TABLE",
    "build_desk",
    "keyword_llm",
    "keyword_triage",
    "services_from_environment",
    "structured_triage",
    "ticket_entities",
]

#: The table tickets are stored in unless told otherwise.
DEFAULT_TABLE: Final = "support_desk_tickets"

_lock = threading.Lock()
_mapped: dict[str, Entities] = {}


def ticket_entities(table_name: str = DEFAULT_TABLE) -> Entities:
    """The registry mapping ``Ticket`` to ``table_name`` (one mapping per process).

    SQLAlchemy maps a class once: asking for another table name forgets the previous
    mapping first (tests use a unique table per run).
    """
    with _lock:
        if table_name in _mapped:
            return _mapped[table_name]
        for previous in _mapped.values():
            previous.dispose()
        _mapped.clear()
        entities = Entities()
        table = Table(
            table_name,
            entities.metadata,
            Column("id", String(40), primary_key=True),
            Column("customer", String(200), nullable=False),
            Column("subject", String(200), nullable=False),
            Column("body", Text, nullable=False),
            Column("opened_at", Float, nullable=False),
            Column("status", String(16), nullable=False, index=True),
            Column("category", String(32)),
            Column("summary", String(200)),
            Column("last_error", String(200)),
            Column("attempts", Integer, nullable=False),
            Column("version", Integer, nullable=False),
        )
        entities.map(Ticket, table, version="version")
        _mapped[table_name] = entities
        return entities


def structured_triage(llm: LLMPort, *, max_attempts: int = 2) -> AskTriage:
    """``AskTriage`` over any ``LLMPort`` through ``complete_structured``.

    When ``llm`` is a ``CachingLLM``, a ``fresh`` question skips the cache lookup (the
    fresh answer is still stored). Errors are those of ``complete_structured``.
    """

    def ask(request: ChatRequest, *, fresh: bool) -> Result[Triage, ServiceError]:
        if fresh and isinstance(llm, CachingLLM):
            with llm.options(read=False):
                return complete_structured(llm, request, Triage, max_attempts=max_attempts).map(
                    lambda s: s.value
                )
        return complete_structured(llm, request, Triage, max_attempts=max_attempts).map(
            lambda s: s.value
        )

    return ask


_RULES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("billing", re.compile(r"\b(invoice|charged?|refund|payment|bill(ing)?|price)\b", re.I)),
    ("account", re.compile(r"\b(password|log ?in|sign ?in|account|email)\b", re.I)),
    ("bug", re.compile(r"\b(error|crash(es|ed)?|bug|broken|fails?|500)\b", re.I)),
    ("feature_request", re.compile(r"\b(feature|could you add|would be nice|wish)\b", re.I)),
)


def keyword_triage(request: ChatRequest) -> str:
    """A triage reply (JSON text) from keyword rules over the ticket in ``request``.

    Not a model: it lets the example run on the embedded defaults, with no API key.
    """
    text = next((m.content or "" for m in reversed(request.messages) if m.role == "user"), "")
    subject = text.split("\n", 1)[0].removeprefix("Subject: ").strip() or "(no subject)"
    category = next((name for name, rule in _RULES if rule.search(text)), "other")
    return json.dumps({"category": category, "summary": subject[:120]})


def keyword_llm() -> FakeLLM:
    """The fake LLM answering triage questions with ``keyword_triage``. For demos and tests."""
    return FakeLLM(responder=keyword_triage)


def services_from_environment() -> Services:
    """The services the environment configures, with the tickets table created.

    With no LLM configured, ``keyword_llm()`` answers instead of the echoing fake, so
    the whole flow works on the embedded defaults.
    """
    llm = None if load_settings().real_llm else keyword_llm()
    services = build_services(entities=ticket_entities(), llm=llm)
    if hasattr(services.database, "create_all"):
        services.database.create_all()
    return services


def build_desk(services: Services, *, max_attempts: int = 2) -> Desk:
    """A ``Desk`` over ``services``: its units of work, queue, clock and caching LLM."""
    return Desk(
        unit_of_work=services.unit_of_work,
        queue=services.queue,
        ask=structured_triage(services.llm, max_attempts=max_attempts),
        clock=services.clock,
    )
