"""The outbox relay's modes on real servers: PostgreSQL or MariaDB with Redis.

``portside relay`` runs as a real process and stops on SIGTERM; the after-commit path
delivers through Redis before ``commit()`` returns and, with Redis cut off by a fault
proxy, leaves the message to the background loop, which delivers once Redis is back;
the worker relays beside its handlers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import delete, func, select

from portside.adapters.app import (
    Services,
    build_services,
    check_services,
    load_settings,
    run_worker,
)
from portside.adapters.entities import Entities
from portside.adapters.redis import RedisQueue
from portside.adapters.sqlalchemy import Database
from portside.adapters.testing import TcpFaultProxy
from portside.domain import Delivery

pytestmark = pytest.mark.services


def _eventually(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Whether ``condition`` holds within ``timeout`` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture(name="database_url", params=["postgres", "mariadb"])
def _database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(name="database")
def _database(database_url: str) -> Iterator[Database]:
    """The outbox table on the server, empty at the start (it is shared by name), dropped after."""
    database = Database.from_url(Entities(), database_url)
    database.create_all()
    assert database.engine is not None
    with database.engine.begin() as connection:
        connection.execute(delete(database.entities.outbox))
    yield database
    # Dropped, not left empty: a migration test on the same server expects to create it.
    database.entities.outbox.drop(database.engine, checkfirst=True)
    database.close()


@pytest.fixture(name="namespace")
def _namespace(redis_url: str) -> Iterator[str]:
    """A namespace of this test's own on Redis, its keys deleted afterwards."""
    namespace = f"ps-relay-{uuid.uuid4().hex[:10]}"
    yield namespace
    queue = RedisQueue.from_url(redis_url, namespace=f"{namespace}:queue")
    for key in queue.client.scan_iter(match=f"{namespace}*"):
        queue.client.delete(key)
    queue.close()


def _publish(database: Database, *bodies: bytes) -> None:
    with database.unit_of_work() as uow:
        for body in bodies:
            uow.publish("jobs", body).unwrap()
        uow.commit().unwrap()


def _services(database_url: str, redis_url: str, namespace: str, mode: str) -> Services:
    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PORTSIDE_NAMESPACE": namespace,
            "PORTSIDE_OUTBOX_RELAY": mode,
            "PORTSIDE_OUTBOX_POLL_INTERVAL": "0.05",
            "PORTSIDE_REDIS_TIMEOUT": "0.3",
            "PORTSIDE_LLM_BACKEND": "memory",
        }
    )
    return build_services(settings)


def _received(queue: RedisQueue) -> list[bytes]:
    deliveries = queue.receive("jobs", "readers", "r1", max_messages=100).unwrap()
    return [delivery.message.body for delivery in deliveries]


@pytest.mark.slow
def test_the_relay_command_relays_to_redis_and_stops_on_sigterm(
    database: Database, database_url: str, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    """`portside relay` as its own process delivers committed messages, then exits 0 on SIGTERM."""
    _publish(database, b"one", b"two", b"three")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTSIDE_", "OPENAI_")) and k not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PORTSIDE_NAMESPACE=namespace,
        PORTSIDE_OUTBOX_RELAY="process",
        PORTSIDE_FORBID_REAL_LLM="1",
    )
    script = Path(sys.executable).with_name("portside")
    process = subprocess.Popen(
        [str(script), "relay", "--interval", "0.05"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    queue = RedisQueue.from_url(redis_url, namespace=f"{namespace}:queue")
    got: list[bytes] = []
    try:
        assert _eventually(lambda: bool(got.extend(_received(queue))) or len(got) >= 3), got
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        queue.close()
    assert process.returncode == 0, err
    assert got == [b"one", b"two", b"three"]
    assert "relayed 3 message(s)" in out
    assert "signal 15" in err


def test_after_commit_delivers_through_redis_before_commit_returns(
    database: Database, database_url: str, redis_url: str, namespace: str
) -> None:
    """In after_commit mode a committed message is on Redis when commit() returns."""
    services = _services(database_url, redis_url, namespace, "after_commit")
    try:
        with services.unit_of_work() as uow:
            uow.publish("jobs", b"at once").unwrap()
            uow.commit().unwrap()
        assert isinstance(services.queue, RedisQueue)
        assert _received(services.queue) == [b"at once"]
        rows = {row.service: row for row in check_services(services, max_age=0)}
        assert rows["outbox"].status == "ok"
        assert rows["outbox"].adapter == "relay after_commit, lag 0.0 s"
    finally:
        services.close()


@pytest.mark.slow
def test_after_commit_falls_back_to_the_loop_while_redis_is_cut_off(
    database: Database, database_url: str, redis_url: str, namespace: str
) -> None:
    """With Redis unreachable the commit succeeds; the loop delivers the message once it is back."""
    parts = urlsplit(redis_url)
    with TcpFaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        through = parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        services = _services(database_url, through, namespace, "after_commit")
        try:
            proxy.blackhole()
            with services.unit_of_work() as uow:
                uow.publish("jobs", b"kept").unwrap()
                assert uow.commit().unwrap() is None
            assert services.metrics.count("outbox.relay_failures") >= 1
            assert services.outbox is not None
            assert _outbox_rows(database) == 1
            proxy.heal()
            assert _eventually(lambda: _outbox_rows(database) == 0)
            assert isinstance(services.queue, RedisQueue)
            assert _received(services.queue) == [b"kept"]
        finally:
            services.close()


def _outbox_rows(database: Database) -> int:
    assert database.engine is not None
    with database.engine.connect() as connection:
        counted: int = connection.execute(
            select(func.count()).select_from(database.entities.outbox)
        ).scalar_one()
    return counted


def test_the_lag_is_the_oldest_messages_age_to_the_second(
    database: Database, database_url: str, redis_url: str, namespace: str
) -> None:
    """The outbox row reports the oldest message's age: commit stamps keep sub-second precision."""
    services = _services(database_url, redis_url, namespace, "off")
    try:
        _publish(database, b"waiting")
        assert services.outbox is not None
        services.outbox.relay.clock = lambda: time.time() + 100.0  # 100 s later
        lag = services.outbox.relay.lag().unwrap()
        rows = {row.service: row for row in check_services(services, max_age=0)}
    finally:
        services.close()
    assert 99.0 <= lag <= 101.0
    assert rows["outbox"].status.startswith("warning (oldest undelivered message 10")


def test_the_worker_relays_through_redis_beside_its_handlers(
    database: Database, database_url: str, redis_url: str, namespace: str
) -> None:
    """In worker mode the worker's relay moves the message to Redis and its handler gets it."""
    services = _services(database_url, redis_url, namespace, "worker")
    handled: list[bytes] = []

    def handle(delivery: Delivery) -> None:
        handled.append(delivery.message.body)

    try:
        with services.unit_of_work() as uow:
            uow.publish("jobs", b"for the worker").unwrap()
            uow.commit().unwrap()
        report = run_worker(
            services.queue,
            "jobs",
            "workers",
            handle,
            relay=services.worker_relay,
            limit=1,
            wait=0.1,
            idle=0.01,
            handle_signals=False,
        )
    finally:
        services.close()
    assert handled == [b"for the worker"]
    assert report.acked == 1
