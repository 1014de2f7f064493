"""Crash test with the server killed too: on an AOF synced per write nothing acked is lost.

Without persistence the loss is named (at start-up and when it happens), not silent.
"""

from __future__ import annotations

import collections
import logging
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from returns.result import Failure, Success

from portside.adapters.redis import RedisQueue
from portside.adapters.testing import ThrowawayRedis, throwaway_redis
from portside.domain import InvalidRequest
from portside.ports.queue_rules import QueueOptions
from tests.faults._durable_crash_consumer import GROUP, LEASE, TOPIC

pytestmark = pytest.mark.faults

MESSAGES = 2000
POISON = 20
CONSUMERS = 4
KILL_CHANCE = 0.01
SERVER_KILLS = 3
DEADLINE = 90.0
ROOT = Path(__file__).resolve().parents[2]


def _spawn(url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults._durable_crash_consumer", url, name, "11",
         str(KILL_CHANCE), str(log)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _publish_all(server: ThrowawayRedis, bodies: list[str], rng: random.Random) -> int:
    """Durably publish every body (dedupe keys make retries safe), killing the server once."""
    queue = RedisQueue.from_url(
        server.url, options=QueueOptions(lease_timeout=LEASE), durable_publish=True
    )
    kills = 0
    kill_at = rng.randrange(len(bodies))
    try:
        queue.receive(TOPIC, GROUP, "setup").unwrap()  # the group exists before publishing
        for index, body in enumerate(bodies):
            if index == kill_at:
                server.kill()
                server.start()
                kills += 1
            while isinstance(queue.publish(TOPIC, body.encode(), dedupe_key=body), Failure):
                time.sleep(0.05)  # the server is restarting: the dedupe key makes this safe
    finally:
        queue.close()
    return kills


@pytest.mark.slow
def test_nothing_acknowledged_is_lost_when_consumers_and_the_server_are_killed(
    tmp_path: Path, record_property: object
) -> None:
    """2,000 durable messages, consumers and the AOF server SIGKILLed: each settles once."""
    rng = random.Random(7)
    bodies = [f"poison-{i}" if i % (MESSAGES // POISON) == 0 else f"m-{i}" for i in range(MESSAGES)]
    log = tmp_path / "log"
    with throwaway_redis(durable=True) as server:
        server_kills = _publish_all(server, bodies, rng)
        workers = {f"c{i}": _spawn(server.url, f"c{i}", log) for i in range(CONSUMERS)}
        checker = RedisQueue.from_url(server.url, options=QueueOptions(lease_timeout=LEASE))
        consumer_kills = 0
        next_server_kill = time.monotonic() + rng.uniform(1.0, 3.0)
        deadline = time.monotonic() + DEADLINE
        finished = False
        try:
            while time.monotonic() < deadline:
                if server_kills < SERVER_KILLS + 1 and time.monotonic() >= next_server_kill:
                    server.kill()
                    time.sleep(rng.uniform(0.0, 0.3))
                    server.start()
                    server_kills += 1
                    next_server_kill = time.monotonic() + rng.uniform(1.0, 3.0)
                for name, process in list(workers.items()):
                    if process.poll() is not None:
                        assert process.returncode == -signal.SIGKILL, (
                            f"{name} exited {process.returncode}"
                        )
                        consumer_kills += 1
                        workers[name] = _spawn(server.url, name, log)
                stored = checker.stored(TOPIC)
                if isinstance(stored, Success) and stored.unwrap() == 0:
                    finished = True
                    break
                time.sleep(0.2)
        finally:
            for process in workers.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in workers.values():
                process.wait(timeout=30)
        dead = collections.Counter(
            d.message.body.decode() for d in checker.dead_letters(TOPIC, GROUP).unwrap()
        )
        checker.close()

    handled: dict[str, list[float]] = collections.defaultdict(list)
    acked: dict[str, list[float]] = collections.defaultdict(list)
    for line in log.read_text().splitlines():
        what, body, at = line.split(" ")
        (handled if what == "handled" else acked)[body].append(float(at))
    duplicates = sum(len(times) for times in handled.values()) - len(handled)
    summary = (
        f"{MESSAGES} messages, {server_kills} server kills, {consumer_kills} consumer kills, "
        f"{sum(len(a) for a in acked.values())} acked, {sum(dead.values())} dead-lettered, "
        f"{duplicates} duplicate handlings"
    )
    print(summary)
    record_property("durable_crash_summary", summary)  # type: ignore[operator]
    assert finished, f"not done within {DEADLINE}s: {summary}"
    assert server_kills >= 2, f"the server was hardly killed: {summary}"
    for body in bodies:
        assert len(acked[body]) <= 1, f"{body} acked {len(acked[body])} times"
        assert dead[body] <= 1, f"{body} dead-lettered {dead[body]} times"
        assert not (acked[body] and dead[body]), f"{body} acked and dead-lettered"
        if acked[body]:
            # Acked and then handled again would mean the server lost the ack.
            assert max(handled[body]) <= acked[body][0], f"{body} handled after its ack"
        if body.startswith("poison"):
            assert dead[body] == 1, f"{body} was not dead-lettered"
        else:
            # An ack whose reply was lost with the server is applied but unlogged: the
            # message was still handled, and the stream is empty (checked above).
            assert handled[body] or dead[body], f"{body} was never handled"


def test_without_persistence_the_check_and_the_loss_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server keeping nothing: start-up says so; after its restart the loss is an ERROR."""
    with throwaway_redis() as server, caplog.at_level(logging.WARNING, "portside.queue.redis"):
        queue = RedisQueue.from_url(server.url)
        queue.publish_many(TOPIC, [b"1", b"2", b"3"]).unwrap()
        taken = queue.receive(TOPIC, GROUP, "c", max_messages=2).unwrap()
        server.restart()  # empty again: nothing was on disk
        deadline = time.monotonic() + 10
        while isinstance(queue.receive(TOPIC, GROUP, "c"), Failure):
            assert time.monotonic() < deadline, "the queue did not reconnect"
        assert isinstance(queue.ack(taken[0]).failure(), InvalidRequest)
        queue.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("every message is lost" in m for m in messages), messages
    assert [m for m in messages if "vanished" in m], messages
