"""The outbox relay's modes on fakes: the loop, the worker, after-commit, the CLI, health."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import attrs
import pytest
from returns.result import Failure, Result
from sqlalchemy import Column, Integer, String, Table

from portside.adapters.app import (
    Services,
    SettingsError,
    build_services,
    check_services,
    load_settings,
    main,
    run_worker,
)
from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryDatabase, MemoryQueue
from portside.adapters.observability import Metrics
from portside.adapters.outbox import OutboxRelay, RelayLoop, RelayLoopReport
from portside.adapters.sqlalchemy import Database
from portside.domain import Delivery, ServiceError, Unavailable
from portside.ports import QueuePort


@attrs.define(slots=False, eq=False)
class Note:
    id: int
    text: str


@attrs.define
class SwitchableQueue(MemoryQueue):
    """A memory queue whose publish is refused while ``down`` is set (a queue outage)."""

    down: threading.Event = attrs.field(factory=threading.Event, kw_only=True)

    def publish(self, *args: Any, **kwargs: Any) -> Result[str, ServiceError]:
        if self.down.is_set():
            return Failure(Unavailable(service="queue", operation="publish", message="down"))
        return super().publish(*args, **kwargs)


@pytest.fixture(name="entities", scope="module")
def _entities() -> Iterator[Entities]:
    entities = Entities()
    table = Table(
        "ps_relay_notes",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("text", String(40), nullable=False),
    )
    entities.map(Note, table)
    yield entities
    entities.dispose()


def _services(
    entities: Entities, mode: str, queue: QueuePort | None = None, **env: str
) -> Services:
    settings = load_settings(
        {"PORTSIDE_OUTBOX_RELAY": mode, "PORTSIDE_OUTBOX_POLL_INTERVAL": "0.02", **env}
    )
    return build_services(
        settings, database=MemoryDatabase(entities), queue=queue or MemoryQueue(), metrics=Metrics()
    )


def _commit(services: Services, *bodies: bytes, key: int = 1) -> None:
    with services.unit_of_work() as uow:
        uow.repository(Note).add(Note(key, "hello"))
        for body in bodies:
            uow.publish("jobs", body).unwrap()
        uow.commit().unwrap()


def _bodies(queue: QueuePort, topic: str = "jobs") -> list[bytes]:
    received = queue.receive(topic, "readers", "r1", max_messages=100).unwrap()
    return [delivery.message.body for delivery in received]


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``condition`` holds within ``timeout`` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _outbox_size(services: Services) -> int:
    database = services.database
    assert isinstance(database, MemoryDatabase)
    return len(database.outbox)


def test_the_loop_relays_committed_messages_until_stopped(entities: Entities) -> None:
    """A running loop moves committed messages to the queue and reports them when stopped."""
    services = _services(entities, "process")
    loop = services.outbox
    assert loop is not None
    stop = threading.Event()
    reports: list[RelayLoopReport] = []
    thread = threading.Thread(target=lambda: reports.append(loop.run(stop)))
    thread.start()
    try:
        _commit(services, b"one", b"two")
        assert _eventually(lambda: _outbox_size(services) == 0)
    finally:
        stop.set()
        thread.join(10)
    assert _bodies(services.queue) == [b"one", b"two"]
    assert reports[0].published == 2
    assert reports[0].failures == 0
    snapshot = services.metrics.snapshot()
    assert snapshot["outbox.relayed"] == 2
    assert snapshot["outbox.lag_seconds"] == 0.0
    services.close()


def test_a_full_round_is_followed_at_once_by_the_next(entities: Entities) -> None:
    """With a backlog the loop does not wait between full rounds: 5 messages, batch 2."""
    database, queue = MemoryDatabase(entities), MemoryQueue()
    with database.unit_of_work() as uow:
        for n in range(5):
            uow.publish("jobs", b"%d" % n).unwrap()
        uow.commit().unwrap()
    # An interval far longer than the test: only back-to-back rounds can finish it.
    loop = RelayLoop(OutboxRelay(database, queue), interval=3600.0, batch=2)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,))
    thread.start()
    try:
        assert _eventually(lambda: not database.outbox)
    finally:
        stop.set()
        thread.join(10)
    assert _bodies(queue) == [b"0", b"1", b"2", b"3", b"4"]


def test_a_failed_round_is_counted_and_retried_after_a_backoff(entities: Entities) -> None:
    """A queue outage fails rounds (counted), loses nothing, and the loop delivers later."""
    queue = SwitchableQueue()
    queue.down.set()
    services = _services(entities, "process", queue)
    loop = services.outbox
    assert loop is not None
    _commit(services, b"kept")
    stop = threading.Event()
    reports: list[RelayLoopReport] = []
    thread = threading.Thread(target=lambda: reports.append(loop.run(stop)))
    thread.start()
    try:
        assert _eventually(lambda: services.metrics.count("outbox.relay_failures") >= 2)
        assert _outbox_size(services) == 1
        queue.down.clear()
        assert _eventually(lambda: _outbox_size(services) == 0)
    finally:
        stop.set()
        thread.join(10)
    assert _bodies(queue) == [b"kept"]
    assert reports[0].failures >= 2
    services.close()


def test_the_loop_refuses_bad_settings() -> None:
    """A batch outside 1..1000 or a non-positive interval is a ValueError at construction."""
    relay = OutboxRelay(MemoryDatabase(Entities()), MemoryQueue())
    for bad in ({"batch": 0}, {"batch": 1001}, {"batch": True}, {"interval": 0.0}):
        with pytest.raises(ValueError, match=r"batch|interval"):
            RelayLoop(relay, **bad)


def test_the_worker_runs_the_relay_beside_its_handlers(entities: Entities) -> None:
    """In worker mode a message waits in the outbox until the worker relays and handles it."""
    services = _services(entities, "worker")
    _commit(services, b"job-1")
    assert _outbox_size(services) == 1  # no after-commit relay in this mode
    handled: list[bytes] = []

    def handle(delivery: Delivery) -> None:
        handled.append(delivery.message.body)

    report = run_worker(
        services.queue,
        "jobs",
        "workers",
        handle,
        relay=services.worker_relay,
        limit=1,
        wait=0.0,
        idle=0.01,
        handle_signals=False,
    )
    assert handled == [b"job-1"]
    assert report.acked == 1
    assert _outbox_size(services) == 0
    services.close()


def test_only_worker_mode_gives_the_worker_a_relay(entities: Entities) -> None:
    """worker_relay is the loop in worker mode and None in the others."""
    for mode, expected in (("worker", True), ("process", False), ("after_commit", False)):
        services = _services(entities, mode)
        assert (services.worker_relay is not None) is expected
        assert (services.worker_relay is services.outbox) is expected
        services.close()


def test_after_commit_delivers_before_commit_returns(entities: Entities) -> None:
    """In after_commit mode the message is on the queue as soon as commit() returned."""
    services = _services(entities, "after_commit")
    _commit(services, b"now")
    assert _outbox_size(services) == 0
    assert _bodies(services.queue) == [b"now"]
    assert services.metrics.count("outbox.relayed") == 1
    services.close()


def test_after_commit_falls_back_to_the_loop_when_the_queue_is_down(entities: Entities) -> None:
    """The commit succeeds with the queue down; the background loop delivers once it is back."""
    queue = SwitchableQueue()
    queue.down.set()
    services = _services(entities, "after_commit", queue)
    _commit(services, b"later")
    assert _outbox_size(services) == 1
    assert services.metrics.count("outbox.relay_failures") >= 1
    loop = services.outbox
    assert loop is not None
    assert loop.running
    queue.down.clear()
    assert _eventually(lambda: _outbox_size(services) == 0)
    assert _bodies(queue) == [b"later"]
    services.close()
    assert not loop.running


def test_after_commit_relays_nothing_for_rolled_back_or_message_free_units(
    entities: Entities,
) -> None:
    """A unit left without commit publishes nothing; a commit with no message runs no round."""
    services = _services(entities, "after_commit")
    with services.unit_of_work() as uow:
        uow.publish("jobs", b"dropped").unwrap()
    with services.unit_of_work() as uow:
        uow.repository(Note).add(Note(7, "no message"))
        uow.commit().unwrap()
    loop = services.outbox
    assert loop is not None
    assert not loop.running
    assert _bodies(services.queue) == []
    assert services.metrics.count("outbox.relayed") == 0
    services.close()


def test_off_mode_relays_nothing_and_health_warns_about_the_lag(entities: Entities) -> None:
    """With the relay off, messages wait; the outbox row warns once the oldest is too old."""
    services = _services(entities, "off", PORTSIDE_OUTBOX_LAG_WARNING="60")
    _commit(services, b"fresh")
    rows = {row.service: row for row in check_services(services, max_age=0)}
    assert rows["outbox"].status == "ok"
    assert rows["outbox"].adapter.startswith("relay off, lag 0.")
    loop = services.outbox
    assert loop is not None
    loop.relay.clock = lambda: time.time() + 120.0  # two minutes later
    rows = {row.service: row for row in check_services(services, max_age=0)}
    assert rows["outbox"].status.startswith("warning (oldest undelivered message 12")
    assert "PORTSIDE_OUTBOX_RELAY=off" in rows["outbox"].status
    assert rows["outbox"].ok
    lag = services.metrics.snapshot()["outbox.lag_seconds"]
    assert isinstance(lag, float)
    assert lag >= 120.0
    assert _bodies(services.queue) == []
    services.close()


def test_health_fails_when_the_relay_cannot_read_the_outbox(entities: Entities) -> None:
    """An outbox the relay cannot read (its database unreachable) is a row that is down."""
    database = Database.from_url(
        entities, "postgresql+psycopg://postgres@127.0.0.1:9/none", connect_timeout=1
    )
    settings = load_settings({"PORTSIDE_OUTBOX_RELAY": "process"})
    services = build_services(settings, database=database, queue=MemoryQueue())
    try:
        rows = {row.service: row for row in check_services(services, max_age=0)}
    finally:
        services.close()
        database.close()
    assert rows["outbox"].status.startswith("down (Unavailable")
    assert not rows["outbox"].ok


def test_health_is_ok_before_the_outbox_table_exists(entities: Entities, tmp_path: Path) -> None:
    """An application that never created the outbox table gets an ok row that says so."""
    settings = load_settings({"PORTSIDE_SQLITE_PATH": str(tmp_path / "none.db")})
    services = build_services(settings, entities=entities, queue=MemoryQueue())
    try:
        rows = {row.service: row for row in check_services(services, max_age=0)}
    finally:
        services.close()
    assert rows["outbox"].status == "ok"
    assert rows["outbox"].adapter == "relay after_commit, no table yet"


def test_a_relay_mode_outside_the_four_is_a_settings_error() -> None:
    """PORTSIDE_OUTBOX_RELAY accepts worker, process, after_commit or off, and names itself."""
    with pytest.raises(SettingsError, match="PORTSIDE_OUTBOX_RELAY") as raised:
        load_settings({"PORTSIDE_OUTBOX_RELAY": "sometimes"})
    assert "after_commit" in str(raised.value)


def _sqlite_outbox(path: Path, entities: Entities, count: int) -> Database:
    database = Database.from_url(entities, f"sqlite:///{path}")
    database.create_all()
    with database.unit_of_work() as uow:
        for n in range(count):
            uow.publish("jobs", b"%d" % n).unwrap()
        uow.commit().unwrap()
    return database


def _outbox_rows(database: Database) -> int:
    from sqlalchemy import func, select

    assert database.engine is not None
    with database.engine.connect() as connection:
        counted: int = connection.execute(
            select(func.count()).select_from(database.entities.outbox)
        ).scalar_one()
    return counted


def test_the_relay_command_relays_and_stops_on_sigterm(
    entities: Entities, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`portside relay` empties the outbox, then exits 0 on SIGTERM and says what it did."""
    path = tmp_path / "relay.db"
    database = _sqlite_outbox(path, entities, 3)
    for name in [k for k in os.environ if k.startswith("PORTSIDE_")] + ["REDIS_URL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PORTSIDE_SQLITE_PATH", str(path))
    monkeypatch.setenv("PORTSIDE_OUTBOX_RELAY", "process")
    monkeypatch.setenv("PORTSIDE_FORBID_REAL_LLM", "1")

    def terminate_when_empty() -> None:
        _eventually(lambda: _outbox_rows(database) == 0)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_when_empty)
    killer.start()
    out = StringIO()
    try:
        code = main(["relay", "--interval", "0.05"], out=out)
    finally:
        killer.join(15)
        database.close()
    assert code == 0
    assert "relayed 3 message(s)" in out.getvalue()


def test_the_relay_command_refuses_a_bad_batch(capsys: pytest.CaptureFixture[str]) -> None:
    """`portside relay --batch 0` exits 2 with one line naming the setting."""
    assert main(["relay", "--batch", "0"]) == 2
    assert "outbox_batch" in capsys.readouterr().err
