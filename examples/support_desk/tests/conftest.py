"""Fixtures of the support desk's tests: the desk on fakes, one tickets table per run.

Units of work come from ``build_services`` as in production, so a ticket's job goes
through the outbox and is relayed right after the commit (``after_commit``, the
default ``PORTSIDE_OUTBOX_RELAY``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from examples.support_desk.logic import Desk
from examples.support_desk.wiring import structured_triage, ticket_entities
from portside.adapters.app import Services, build_services, load_settings
from portside.adapters.entities import Entities
from portside.adapters.llm_cache import CachingLLM
from portside.adapters.memory import (
    FakeLLM,
    ManualClock,
    MemoryCache,
    MemoryDatabase,
    MemoryQueue,
    Responder,
)
from portside.adapters.sqlalchemy import Database
from portside.ports import QueuePort, UnitOfWork

#: One table name per test run, so runs on a shared PostgreSQL never meet.
TABLE = f"support_desk_test_{uuid.uuid4().hex[:10]}"

MakeDesk = Callable[..., Desk]
#: Units of work over a database whose committed jobs are relayed to a queue.
Relayed = Callable[[MemoryDatabase | Database, QueuePort], Callable[[], UnitOfWork]]


@pytest.fixture(name="entities", scope="session")
def _entities() -> Entities:
    """The ticket mapping on this run's table."""
    return ticket_entities(TABLE)


@pytest.fixture(name="fake_llm")
def _fake_llm() -> FakeLLM:
    """A fake LLM with nothing scripted (it echoes, which never fits ``Triage``)."""
    return FakeLLM()


@pytest.fixture(name="relayed")
def _relayed(manual_clock: ManualClock) -> Iterator[Relayed]:
    """``relayed(database, queue)``: the unit-of-work factory the composition root builds."""
    built: list[Services] = []

    def wire(database: MemoryDatabase | Database, queue: QueuePort) -> Callable[[], UnitOfWork]:
        services = build_services(
            load_settings(environ={}),
            database=database,
            queue=queue,
            cache=MemoryCache(clock=manual_clock),
            llm=FakeLLM(),
            clock=manual_clock,
        )
        built.append(services)
        return services.unit_of_work

    yield wire
    for services in built:
        services.close()


@pytest.fixture(name="make_desk")
def _make_desk(
    entities: Entities, manual_clock: ManualClock, relayed: Relayed
) -> Iterator[MakeDesk]:
    """Builds a desk on in-memory fakes; ``responder`` answers for the fake LLM."""
    built: list[Desk] = []

    def make(llm: FakeLLM | None = None, responder: Responder | None = None) -> Desk:
        model = llm or FakeLLM(responder=responder)
        cached = CachingLLM(
            model, MemoryCache(namespace="desk", clock=manual_clock), clock=manual_clock
        )
        queue = MemoryQueue(clock=manual_clock)
        desk = Desk(
            unit_of_work=relayed(MemoryDatabase(entities), queue),
            queue=queue,
            ask=structured_triage(cached),
            clock=manual_clock,
        )
        built.append(desk)
        return desk

    yield make
    for desk in built:
        desk.queue.close()
