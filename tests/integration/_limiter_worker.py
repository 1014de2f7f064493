"""A process of the shared-limiter tests: 8 threads ask a Redis limiter until time is up.

Prints one JSON line: for each admission, the server's time (seconds) read just before
and just after it, so the test can place every admission in a known interval.
Arguments: the Redis URL, the key prefix, the limit, the window (seconds) and the
seconds to keep asking.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import redis

from portside.adapters.llm_gateway import RateLimit, RedisRateLimiter


def _server_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def main() -> None:
    """Hammer the limiter from 8 threads and print when each admission happened."""
    url, prefix, limit, window, seconds = sys.argv[1:6]
    client = redis.Redis.from_url(url)
    limiter = RedisRateLimiter(
        client, {"m": RateLimit(requests=int(limit))}, prefix=prefix, window=float(window)
    )
    admitted: list[tuple[float, float]] = []
    lock = threading.Lock()
    ends = time.monotonic() + float(seconds)

    def ask() -> None:
        while time.monotonic() < ends:
            before = _server_time(client)
            if limiter.admit("m") == 0.0:
                after = _server_time(client)
                with lock:
                    admitted.append((before, after))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(admitted), flush=True)


if __name__ == "__main__":
    main()
