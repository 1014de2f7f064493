"""A consumer process for the crash test: run_worker on RedisQueue, killing itself at random.

Usage: ``python -m tests.integration._queue_crash_consumer URL NAMESPACE CONSUMER SEED P``.
With probability ``P`` per delivery the process SIGKILLs itself right after receiving,
and with probability ``P`` again after handling but before the ack. Successful acks are
logged to a Redis list, so the parent can check every message was acked exactly once.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys

from returns.result import Result, Success

from portside.adapters.app import Backoff, run_worker
from portside.adapters.redis import RedisQueue, connect
from portside.domain import Delivery, ServiceError
from portside.ports.queue_rules import QueueOptions

TOPIC = "jobs"
GROUP = "workers"
LEASE = 1.0
MAX_DELIVERIES = 4


class LoggedQueue(RedisQueue):
    """Logs each successful ack (the log is written before the process can be killed)."""

    ack_log: str = ""

    def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        result = super().ack(delivery)
        if isinstance(result, Success):
            self.client.rpush(self.ack_log, delivery.message.body)
        return result


def main() -> None:
    # Poison messages fail on purpose; their tracebacks would only bury real crashes.
    logging.getLogger("portside").setLevel(logging.CRITICAL)
    url, namespace, consumer, seed, chance = sys.argv[1:6]
    rng = random.Random(f"{seed}-{consumer}-{os.getpid()}")
    p = float(chance)
    options = QueueOptions(lease_timeout=LEASE, max_deliveries=MAX_DELIVERIES)
    queue = LoggedQueue(connect(url), options=options, namespace=namespace, owns_client=True)
    queue.ack_log = f"{namespace}:log:acked"

    def handle(delivery: Delivery) -> None:
        if rng.random() < p:
            os.kill(os.getpid(), signal.SIGKILL)  # received, not handled
        queue.client.rpush(f"{namespace}:log:handled", delivery.message.body)
        if delivery.message.body.startswith(b"poison"):
            raise RuntimeError("poison message")
        if rng.random() < p:
            os.kill(os.getpid(), signal.SIGKILL)  # handled, not acked

    run_worker(
        queue,
        TOPIC,
        GROUP,
        handle,
        consumer=consumer,
        batch=5,
        wait=0.2,
        heartbeat=LEASE / 4,
        lease_extension=LEASE,
        backoff=Backoff(base=0.05, maximum=0.2),
    )
    queue.close()


if __name__ == "__main__":
    main()
