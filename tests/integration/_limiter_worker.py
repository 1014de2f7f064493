"""A process of the shared-limiter test: 8 threads ask a Redis limiter until told to stop.

Prints one line: how many admissions this process got. Arguments: the Redis URL, the key
prefix, the limit, the window (seconds) and the seconds to keep asking.
"""

from __future__ import annotations

import sys
import threading
import time

import redis

from portside.adapters.llm_gateway import RateLimit, RedisRateLimiter


def main() -> None:
    """Hammer the limiter from 8 threads and print the admissions."""
    url, prefix, limit, window, seconds = sys.argv[1:6]
    client = redis.Redis.from_url(url)
    limiter = RedisRateLimiter(
        client, {"m": RateLimit(requests=int(limit))}, prefix=prefix, window=float(window)
    )
    admitted = [0] * 8
    ends = time.monotonic() + float(seconds)

    def ask(slot: int) -> None:
        while time.monotonic() < ends:
            if limiter.admit("m") == 0.0:
                admitted[slot] += 1

    threads = [threading.Thread(target=ask, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(admitted), flush=True)


if __name__ == "__main__":
    main()
