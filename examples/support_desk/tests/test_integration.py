"""Integration tier: the same desk on real Redis, PostgreSQL and an OpenAI-compatible server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from examples.support_desk.logic import Desk, Ticket
from examples.support_desk.tests.conftest import Relayed
from examples.support_desk.wiring import keyword_triage, structured_triage
from portside.adapters.entities import Entities
from portside.adapters.llm_cache import CachingLLM
from portside.adapters.memory import FakeLLM, ManualClock, MemoryCache, MemoryDatabase, MemoryQueue
from portside.adapters.openai import OpenAILLM
from portside.adapters.outbox import OutboxRelay
from portside.adapters.redis import RedisCache, RedisQueue
from portside.adapters.resilience import RetryPolicy
from portside.adapters.sqlalchemy import Database
from portside.adapters.testing import OpenAITestServer

VALID = json.dumps({"category": "bug", "summary": "Saving crashes the app"})


@pytest.fixture(name="pg_database", scope="module")
def _pg_database(postgres_url: str, entities: Entities) -> Iterator[Database]:
    """This run's tickets table on PostgreSQL, dropped afterwards."""
    database = Database.from_url(entities, postgres_url)
    database.create_all()
    yield database
    if database.engine is not None:
        entities.drop_all(database.engine)
    database.close()


@pytest.fixture(name="redis_queue")
def _redis_queue(redis_url: str, manual_clock: ManualClock) -> Iterator[RedisQueue]:
    """A Redis Streams queue under a namespace of its own, its keys deleted afterwards."""
    namespace = f"support-desk-test:{uuid.uuid4().hex[:12]}"
    queue = RedisQueue.from_url(redis_url, clock=manual_clock, namespace=namespace)
    yield queue
    for key in queue.client.scan_iter(match=f"{namespace}*"):
        queue.client.delete(key)
    queue.close()


@pytest.fixture(name="redis_cache")
def _redis_cache(redis_url: str) -> Iterator[RedisCache]:
    """A Redis cache under a namespace of its own, cleared afterwards."""
    cache = RedisCache.from_url(redis_url, f"support-desk-test:{uuid.uuid4().hex[:12]}")
    yield cache
    cache.clear()
    cache.close()


@pytest.fixture(name="server")
def _server() -> Iterator[OpenAITestServer]:
    """A local OpenAI-compatible server."""
    with OpenAITestServer() as server:
        yield server


@pytest.fixture(name="openai_llm")
def _openai_llm(server: OpenAITestServer, manual_clock: ManualClock) -> Iterator[OpenAILLM]:
    """The OpenAI adapter pointed at the local server, without retries."""
    llm = OpenAILLM(
        api_key="sk-local",
        base_url=server.base_url,
        model="local-chat",
        clock=manual_clock,
        timeout=5.0,
        retry=RetryPolicy(attempts=1),
    )
    yield llm
    llm.close()


@pytest.mark.services
def test_tickets_flow_through_redis_streams_and_the_redis_cache(
    entities: Entities,
    redis_queue: RedisQueue,
    redis_cache: RedisCache,
    manual_clock: ManualClock,
    relayed: Relayed,
) -> None:
    """On Redis, tickets are published, triaged once, and a repeat question is a cache hit."""
    llm = FakeLLM(responder=keyword_triage)
    desk = Desk(
        unit_of_work=relayed(MemoryDatabase(entities), redis_queue),
        queue=redis_queue,
        ask=structured_triage(CachingLLM(llm, redis_cache, clock=manual_clock)),
        clock=manual_clock,
    )
    first = desk.open_ticket("ann", "Refund please", "I was charged twice.").unwrap()
    second = desk.open_ticket("bob", "Refund please", "I was charged twice.").unwrap()
    report = desk.work("worker-1")
    assert report.outcomes == ((first.id, "triaged"), (second.id, "triaged"))
    assert llm.received() == 1
    assert desk.work("worker-1").handled == 0


@pytest.mark.services
def test_a_rate_limit_is_retried_by_redis_when_the_model_said(
    entities: Entities, redis_queue: RedisQueue, manual_clock: ManualClock, relayed: Relayed
) -> None:
    """The Redis queue holds a rate-limited ticket back for retry_after seconds."""
    llm = FakeLLM(responder=lambda _request: VALID)
    llm.fail("rate_limited", retry_after=20.0)
    desk = Desk(
        relayed(MemoryDatabase(entities), redis_queue),
        redis_queue,
        structured_triage(CachingLLM(llm, MemoryCache(clock=manual_clock), clock=manual_clock)),
        manual_clock,
    )
    ticket = desk.open_ticket("ann", "Crash", "Saving crashes the app.").unwrap()
    assert desk.work("worker-1").errors[0].kind == "RateLimited"
    manual_clock.advance(19.0)
    assert desk.work("worker-1").handled == 0
    manual_clock.advance(1.0)
    assert desk.work("worker-1").outcomes == ((ticket.id, "triaged"),)


@pytest.mark.services
def test_tickets_are_stored_and_triaged_in_postgresql(
    pg_database: Database, manual_clock: ManualClock, relayed: Relayed
) -> None:
    """On PostgreSQL, a triage is committed and read back in opening order."""
    llm = FakeLLM(responder=keyword_triage)
    queue = MemoryQueue(clock=manual_clock)
    desk = Desk(
        relayed(pg_database, queue),
        queue,
        structured_triage(CachingLLM(llm, MemoryCache(clock=manual_clock), clock=manual_clock)),
        manual_clock,
    )
    opened = []
    for subject in ("Refund please", "Login fails", "Would be nice: dark mode"):
        opened.append(desk.open_ticket("ann", subject, subject + ".").unwrap().id)
        manual_clock.advance(1.0)
    desk.work("worker")
    mine = [t for t in desk.tickets(limit=500).unwrap() if t.id in opened]
    assert [t.id for t in mine] == opened
    assert [t.category for t in mine] == ["billing", "account", "feature_request"]
    assert all(t.status == "triaged" for t in mine)


@pytest.mark.services
def test_a_concurrent_triage_of_one_ticket_is_a_conflict_in_postgresql(
    pg_database: Database, manual_clock: ManualClock, relayed: Relayed
) -> None:
    """Two units triaging the same ticket: PostgreSQL keeps the first, the second conflicts."""
    queue = MemoryQueue(clock=manual_clock)
    desk = Desk(
        relayed(pg_database, queue),
        queue,
        structured_triage(FakeLLM(responder=lambda _request: VALID)),
        manual_clock,
    )
    ticket = desk.open_ticket("ann", "Crash", "Saving crashes the app.").unwrap()
    with pg_database.unit_of_work() as late:
        stale = late.repository(Ticket).get(ticket.id).unwrap()
        assert desk.triage(ticket.id).unwrap() == "triaged"
        stale.status = "retry"
        assert late.commit().failure().kind == "Conflict"
    assert desk.get(ticket.id).unwrap().status == "triaged"


@pytest.mark.services
def test_a_ticket_opened_while_redis_is_unreachable_is_delivered_by_the_relay(
    pg_database: Database, redis_queue: RedisQueue, manual_clock: ManualClock, relayed: Relayed
) -> None:
    """On PostgreSQL with Redis down, ticket and job commit together; a relay delivers the job."""
    unreachable = RedisQueue.from_url("redis://127.0.0.1:9/0", clock=manual_clock)
    ask = structured_triage(FakeLLM(responder=keyword_triage))
    # No relay in this process: the job waits in PostgreSQL's outbox.
    opening = Desk(pg_database.unit_of_work, unreachable, ask, manual_clock)
    ticket = opening.open_ticket("ann", "Refund please", "I was charged twice.").unwrap()
    unreachable.close()
    assert ticket.status == "new"
    relay = OutboxRelay(pg_database, redis_queue)
    while relay.relay_once().unwrap().published:  # other tests' jobs may share the table
        pass
    working = Desk(relayed(pg_database, redis_queue), redis_queue, ask, manual_clock)
    assert (ticket.id, "triaged") in working.work("worker-1", max_messages=100).outcomes
    assert working.get(ticket.id).unwrap().category == "billing"


@pytest.mark.services
def test_structured_triage_over_the_openai_adapter(
    openai_llm: OpenAILLM,
    server: OpenAITestServer,
    entities: Entities,
    manual_clock: ManualClock,
    relayed: Relayed,
) -> None:
    """Over HTTP the desk sends a JSON schema, re-asks after a misfit, and caches the answer."""
    server.reply("sorry, I cannot answer in JSON")
    server.reply(VALID)
    queue = MemoryQueue(clock=manual_clock)
    desk = Desk(
        relayed(MemoryDatabase(entities), queue),
        queue,
        structured_triage(
            CachingLLM(openai_llm, MemoryCache(clock=manual_clock), clock=manual_clock)
        ),
        manual_clock,
    )
    first = desk.open_ticket("ann", "Crash", "Saving crashes the app.").unwrap()
    second = desk.open_ticket("bob", "Crash", "Saving crashes the app.").unwrap()
    assert desk.work("worker").outcomes == ((first.id, "triaged"), (second.id, "triaged"))
    sent = server.requests
    assert len(sent) == 2  # the misfit, the re-ask; the second ticket hit the cache
    assert sent[0].body["response_format"]["type"] == "json_schema"
    assert "does not match the required JSON schema" in json.dumps(sent[1].body["messages"])
    assert desk.get(second.id).unwrap().summary == "Saving crashes the app"
