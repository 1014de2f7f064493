"""The outbox contract kit: the fake, SQLite, PostgreSQL and MariaDB, each with a queue."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, inspect

from portside.adapters.memory import MemoryQueue
from portside.adapters.redis import RedisQueue, connect
from portside.adapters.testing import check_outbox, memory_backend, sqlalchemy_backend
from portside.ports import QueuePort


@pytest.fixture(name="client")
def _client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


def test_the_fake_with_the_memory_queue_passes_the_kit() -> None:
    """The fake unit of work, its outbox and the relay over MemoryQueue keep every promise."""
    check_outbox(memory_backend, MemoryQueue, max_examples=60, stateful_step_count=40)


@pytest.mark.slow
def test_sqlite_with_the_memory_queue_passes_the_kit(tmp_path: Path) -> None:
    """SQLite's outbox (leases, no row locks) under crashing relays keeps every promise."""
    check_outbox(
        sqlalchemy_backend(f"sqlite:///{tmp_path / 'outbox.sqlite3'}"),
        MemoryQueue,
        max_examples=30,
        stateful_step_count=30,
    )


def _run_with_redis(url: str, redis_url: str, client: redis.Redis) -> None:
    prefix = f"pstest:obkit:{uuid.uuid4().hex}"
    made = 0

    def make_queue() -> QueuePort:
        nonlocal made
        made += 1
        return RedisQueue.from_url(redis_url, namespace=f"{prefix}:{made}")

    table = f"ps_kit_{uuid.uuid4().hex[:12]}"
    try:
        check_outbox(
            sqlalchemy_backend(url),
            make_queue,
            max_examples=25,
            stateful_step_count=30,
            table_name=table,
        )
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    engine = create_engine(url)
    try:
        assert table not in inspect(engine).get_table_names(), "the kit left its table behind"
    finally:
        engine.dispose()
    assert made > 0


@pytest.mark.services
@pytest.mark.slow
def test_postgres_with_redis_passes_the_kit(
    postgres_url: str, redis_url: str, client: redis.Redis
) -> None:
    """PostgreSQL (SKIP LOCKED) and RedisQueue under crashing relays keep every promise."""
    _run_with_redis(postgres_url, redis_url, client)


@pytest.mark.services
@pytest.mark.slow
def test_mariadb_with_redis_passes_the_kit(
    mariadb_url: str, redis_url: str, client: redis.Redis
) -> None:
    """MariaDB (SKIP LOCKED) and RedisQueue under crashing relays keep every promise."""
    _run_with_redis(mariadb_url, redis_url, client)
