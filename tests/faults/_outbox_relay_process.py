"""A relay process for the outbox crash test: rounds until killed, killing itself at random.

Usage: ``python -m tests.faults._outbox_relay_process DATABASE_URL REDIS_URL SEED P``.
At each step of a round (claimed, each publish, marked) the process SIGKILLs itself
with probability ``P``, through ``OutboxRelay``'s ``on_step``; the test SIGKILLs it at
random too. It never stops by itself.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import time

import redis
from returns.result import Failure

from portside.adapters.entities import Entities
from portside.adapters.outbox import OutboxRelay, RelayStep
from portside.adapters.redis import RedisQueue
from portside.adapters.sqlalchemy import Database


def _queue(url: str) -> RedisQueue:
    """A queue on ``url``, waiting while the server is being restarted."""
    while True:
        try:
            return RedisQueue.from_url(url, durable_publish=True)
        except (redis.RedisError, OSError):  # the server is down: wait until it is back
            time.sleep(0.05)


def main() -> None:
    # The killed server makes rounds fail on purpose: their logs would bury the rest.
    logging.getLogger("portside").setLevel(logging.CRITICAL)
    database_url, redis_url, seed, chance = sys.argv[1:5]
    rng = random.Random(f"{seed}-{os.getpid()}")
    p = float(chance)

    def on_step(step: RelayStep) -> None:
        if rng.random() < p:
            os.kill(os.getpid(), signal.SIGKILL)

    database = Database.from_url(Entities(), database_url)
    relay = OutboxRelay(database, _queue(redis_url), on_step=on_step)
    while True:
        result = relay.relay_once(max_messages=50)
        if isinstance(result, Failure) or result.unwrap().published == 0:
            time.sleep(0.02)


if __name__ == "__main__":
    main()
