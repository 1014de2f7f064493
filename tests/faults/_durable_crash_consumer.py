"""A consumer process for the durable crash test: run_worker, killing itself at random.

Usage: ``python -m tests.faults._durable_crash_consumer URL CONSUMER SEED P LOG``.
With probability ``P`` per delivery the process SIGKILLs itself right after receiving,
and with probability ``P`` again after handling but before the ack. It appends
``handled <body> <time>`` before handling and ``acked <body> <time>`` after each
successful ack to the file ``LOG``, outside the server, so that a server that loses an
ack cannot also lose the record of it.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import time

from returns.result import Result, Success

from portside.adapters.app import Backoff, run_worker
from portside.adapters.redis import RedisQueue, connect
from portside.domain import Delivery, ServiceError
from portside.ports.queue_rules import QueueOptions

TOPIC = "jobs"
GROUP = "workers"
LEASE = 1.0
MAX_DELIVERIES = 8


def main() -> None:
    # Poison messages and a dying server fail on purpose: their logs would bury the rest.
    logging.getLogger("portside").setLevel(logging.CRITICAL)
    url, consumer, seed, chance, log_path = sys.argv[1:6]
    rng = random.Random(f"{seed}-{consumer}-{os.getpid()}")
    p = float(chance)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(what: str, body: bytes) -> None:
        # One write per line on an O_APPEND file: whole lines even with other writers.
        os.write(log, f"{what} {body.decode()} {time.time():.6f}\n".encode())

    class LoggedQueue(RedisQueue):
        def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
            result = super().ack(delivery)
            if isinstance(result, Success):
                note("acked", delivery.message.body)
            return result

    options = QueueOptions(lease_timeout=LEASE, max_deliveries=MAX_DELIVERIES)
    queue = LoggedQueue(connect(url), options=options, owns_client=True)

    def handle(delivery: Delivery) -> None:
        if rng.random() < p:
            os.kill(os.getpid(), signal.SIGKILL)  # received, not handled
        note("handled", delivery.message.body)
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
