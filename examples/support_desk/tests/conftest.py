"""Fixtures of the support desk's tests: the desk on fakes, one tickets table per run."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from examples.support_desk.logic import Desk
from examples.support_desk.wiring import structured_triage, ticket_entities
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

#: One table name per test run, so runs on a shared PostgreSQL never meet.
TABLE = f"support_desk_test_{uuid.uuid4().hex[:10]}"

MakeDesk = Callable[..., Desk]


@pytest.fixture(name="entities", scope="session")
def _entities() -> Entities:
    """The ticket mapping on this run's table."""
    return ticket_entities(TABLE)


@pytest.fixture(name="fake_llm")
def _fake_llm() -> FakeLLM:
    """A fake LLM with nothing scripted (it echoes, which never fits ``Triage``)."""
    return FakeLLM()


@pytest.fixture(name="make_desk")
def _make_desk(entities: Entities, manual_clock: ManualClock) -> Iterator[MakeDesk]:
    """Builds a desk on in-memory fakes; ``responder`` answers for the fake LLM."""
    built: list[Desk] = []

    def make(llm: FakeLLM | None = None, responder: Responder | None = None) -> Desk:
        model = llm or FakeLLM(responder=responder)
        cached = CachingLLM(
            model, MemoryCache(namespace="desk", clock=manual_clock), clock=manual_clock
        )
        desk = Desk(
            unit_of_work=MemoryDatabase(entities).unit_of_work,
            queue=MemoryQueue(clock=manual_clock),
            ask=structured_triage(cached),
            clock=manual_clock,
        )
        built.append(desk)
        return desk

    yield make
    for desk in built:
        desk.queue.close()
