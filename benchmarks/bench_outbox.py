"""Rows ``outbox_*``: the transactional outbox against the same work without it.

- ``outbox_commit_sqlite`` / ``outbox_commit_postgres``: a unit of work adding one
  entity and publishing one message, against the same unit adding the entity only.
- ``outbox_relay_sqlite``: ``relay_once`` moving 100 committed messages to a
  ``MemoryQueue``, against a raw loop on the same table that selects them, publishes
  each (with a dedupe key, as the relay does) and deletes them: no claim, no lease, no
  order check.
- ``outbox_relay_postgres``: the same on PostgreSQL to a ``RedisQueue`` (the same
  database and the same queue for both sides): the relay's row locks (``FOR UPDATE
  SKIP LOCKED``) and per-topic order check against a plain select, publish, delete.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from benchmarks._harness import Case
from benchmarks.bench_uow import _database, _postgres_url
from portside.adapters.memory import MemoryQueue
from portside.adapters.outbox import OutboxRelay
from portside.adapters.redis import RedisQueue
from portside.adapters.sqlalchemy import Database
from portside.adapters.testing import DEFAULT_REDIS_URL, unreachable_reason
from portside.ports import QueuePort

NAMES = (
    "outbox_commit_sqlite",
    "outbox_commit_postgres",
    "outbox_relay_sqlite",
    "outbox_relay_postgres",
)
BATCH = 100


def _commit(name: str, database: Database, order: type[Any]) -> Case:
    keys = itertools.count(1)

    def ours() -> object:
        with database.unit_of_work() as uow:
            uow.repository(order).add(order(next(keys), "tea"))
            uow.publish("orders", b'{"order": 1}')
            return uow.commit().unwrap()

    def baseline() -> object:
        with database.unit_of_work() as uow:
            uow.repository(order).add(order(next(keys), "tea"))
            return uow.commit().unwrap()

    return Case(name, ours, baseline, goal=0.85, unit="commits/s")


def _relay(name: str, database: Database, queue: QueuePort) -> Case:
    assert database.engine is not None
    engine, table = database.engine, database.entities.outbox
    relay = OutboxRelay(database, queue)
    rows = [
        {"topic": "orders", "body": b"x", "headers": "{}", "dedupe_key": None, "created_at": 0.0}
        for _ in range(BATCH)
    ]

    def fill() -> None:
        with engine.begin() as connection:
            connection.execute(insert(table), rows)

    def ours() -> object:
        fill()
        return relay.relay_once(max_messages=BATCH).unwrap()

    def baseline() -> object:
        fill()
        with engine.begin() as connection:
            found = connection.execute(select(table).order_by(table.c.id).limit(BATCH)).all()
            for row in found:
                headers = json.loads(row.headers)
                # A dedupe key too: the queue's cost of one is the same on both sides.
                queue.publish(row.topic, row.body, headers=headers, dedupe_key=f"raw:{row.id}")
            connection.execute(delete(table).where(table.c.id.in_([r.id for r in found])))
        return None

    return Case(
        name,
        ours,
        baseline,
        goal=0.0,
        unit="messages/s",
        ops=BATCH,
        note="no goal: throughput against a raw select-publish-delete loop",
    )


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite, order = stack.enter_context(_database(f"sqlite:///{folder / 'commit.sqlite3'}"))
        relayed, _ = stack.enter_context(_database(f"sqlite:///{folder / 'relay.sqlite3'}"))
        found = [_commit("outbox_commit_sqlite", sqlite, order)]
        pg_url, problem = _postgres_url()
        if problem is None:
            pg, pg_order = stack.enter_context(_database(pg_url))
            found.append(_commit("outbox_commit_postgres", pg, pg_order))
        else:
            print(f"skipped: outbox_commit_postgres ({problem})", file=sys.stderr)
        found.append(_relay("outbox_relay_sqlite", relayed, MemoryQueue()))
        redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
        redis_problem = unreachable_reason(redis_url)
        if problem is None and redis_problem is None:
            pg_relayed, _ = stack.enter_context(_database(pg_url))
            found.append(
                _relay("outbox_relay_postgres", pg_relayed, _redis_queue(stack, redis_url))
            )
        else:
            print(f"skipped: outbox_relay_postgres ({problem or redis_problem})", file=sys.stderr)
        yield found


def _redis_queue(stack: ExitStack, url: str) -> RedisQueue:
    """A queue under a namespace of its own, its keys deleted when ``stack`` closes."""
    namespace = f"bench-outbox-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(url, namespace=namespace)

    def clean() -> None:
        for key in queue.client.scan_iter(match=f"{namespace}*"):
            queue.client.delete(key)
        queue.close()

    stack.callback(clean)
    return queue
