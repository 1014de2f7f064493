"""Crash test: consumer processes SIGKILLed between receive and ack lose no message."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from portside.adapters.redis import RedisQueue, connect
from portside.ports.queue_rules import QueueOptions
from tests.integration._queue_crash_consumer import GROUP, MAX_DELIVERIES, TOPIC

MESSAGES = 1000
POISON = 20
CONSUMERS = 4
KILL_CHANCE = 0.01
DEADLINE = 35.0
ROOT = Path(__file__).resolve().parents[2]


def _spawn(url: str, namespace: str, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration._queue_crash_consumer", url, namespace, name,
         "7", str(KILL_CHANCE)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.services
def test_killed_consumers_lose_nothing(redis_url: str, record_property: object) -> None:
    """With consumers SIGKILLed and restarted, each message is acked or dead-lettered once."""
    namespace = f"pstest:crash:{uuid.uuid4().hex}"
    client: redis.Redis = connect(redis_url)
    queue = RedisQueue(
        client, options=QueueOptions(lease_timeout=1.0, max_deliveries=MAX_DELIVERIES),
        namespace=namespace,
    )  # fmt: skip
    try:
        queue.receive(TOPIC, GROUP, "setup").unwrap()  # the group exists before publishing
        bodies = [
            f"poison-{i}" if i % (MESSAGES // POISON) == 0 else f"m-{i}" for i in range(MESSAGES)
        ]
        for start in range(0, MESSAGES, 100):
            queue.publish_many(TOPIC, [b.encode() for b in bodies[start : start + 100]]).unwrap()
        workers = {f"c{i}": _spawn(redis_url, namespace, f"c{i}") for i in range(CONSUMERS)}
        kills = 0
        deadline = time.monotonic() + DEADLINE
        finished = False
        while time.monotonic() < deadline:
            for name, process in list(workers.items()):
                if process.poll() is not None:
                    assert process.returncode == -signal.SIGKILL, (
                        f"{name} exited {process.returncode}"
                    )
                    kills += 1
                    workers[name] = _spawn(redis_url, namespace, name)
            acked = client.llen(f"{namespace}:log:acked")
            dead = len(queue.dead_letters(TOPIC, GROUP).unwrap())
            if acked + dead >= MESSAGES:
                finished = True
                break
            time.sleep(0.2)
        for process in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers.values():
            process.wait(timeout=10)

        acked_log = collections.Counter(
            b.decode() for b in client.lrange(f"{namespace}:log:acked", 0, -1)
        )
        handled = client.llen(f"{namespace}:log:handled")
        dead_log = collections.Counter(
            d.message.body.decode() for d in queue.dead_letters(TOPIC, GROUP).unwrap()
        )
        duplicates = handled - MESSAGES
        summary = (
            f"{MESSAGES} messages, {kills} consumer kills, {sum(acked_log.values())} acked, "
            f"{sum(dead_log.values())} dead-lettered, {duplicates} duplicate handlings"
        )
        print(summary)
        record_property("crash_summary", summary)  # type: ignore[operator]
        assert finished, f"not done within {DEADLINE}s: {summary}"
        assert kills > 0, "no consumer was killed: the test proved nothing"
        for body in bodies:
            outcome = (acked_log[body], dead_log[body])
            assert outcome in ((1, 0), (0, 1)), f"{body}: acked {outcome[0]}x, dead {outcome[1]}x"
            if body.startswith("poison"):
                assert outcome == (0, 1), f"{body} was acked"
        assert queue.stored(TOPIC).unwrap() == 0
    finally:
        for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            client.delete(key)
        client.close()
