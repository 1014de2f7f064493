"""The Redis rate limiter: atomic on the server's clock, shared by threads and processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from portside.adapters.llm_gateway import RateLimit, RedisRateLimiter

pytestmark = pytest.mark.timeout(60)

WORKER = Path(__file__).with_name("_limiter_worker.py")


@pytest.fixture(name="client")
def _client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(name="prefix")
def _prefix(client: redis.Redis) -> Iterator[str]:
    prefix = f"test-limiter-{uuid.uuid4().hex[:10]}:"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def test_requests_per_window_are_admitted_then_waited(client: redis.Redis, prefix: str) -> None:
    """Three a window: three admitted, the fourth told to wait about a window."""
    limiter = RedisRateLimiter(client, {"*": RateLimit(requests=3)}, prefix=prefix)
    assert [limiter.admit("m") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.admit("m")
    assert 59.0 < wait <= 60.0
    assert limiter.admit("other") == 0.0, "each model has its own window"


def test_tokens_count_what_answers_used(client: redis.Redis, prefix: str) -> None:
    """100 tokens a window: after 95 settled, a 10-token estimate waits, a 5-token one goes."""
    limiter = RedisRateLimiter(client, {"m": RateLimit(tokens=100)}, prefix=prefix)
    assert limiter.admit("m", 1000) == 0.0, "an empty window admits even a large estimate"
    limiter.settle("m", 95)
    assert limiter.admit("m", 10) > 0.0
    assert limiter.admit("m", 5) == 0.0


def test_the_window_slides_on_the_server_clock(client: redis.Redis, prefix: str) -> None:
    """With a half-second window, a refused request is admitted once the oldest left."""
    limiter = RedisRateLimiter(client, {"m": RateLimit(requests=2)}, prefix=prefix, window=0.5)
    assert limiter.admit("m") == limiter.admit("m") == 0.0
    wait = limiter.admit("m")
    assert 0.0 < wait <= 0.5
    time.sleep(wait + 0.01)
    assert limiter.admit("m") == 0.0


def test_a_pause_holds_every_limiter_sharing_the_store(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    """A 429's Retry-After given to one limiter stops another client's limiter too."""
    one = RedisRateLimiter(client, {}, prefix=prefix)
    other = RedisRateLimiter(redis.Redis.from_url(redis_url), {}, prefix=prefix)
    one.pause("m", 2.0)
    assert 1.5 < other.admit("m") <= 2.0
    one.pause("m", 0.5)
    assert other.admit("m") > 1.5, "a shorter pause never cuts a longer one"


def test_an_unreachable_store_admits(prefix: str) -> None:
    """With Redis gone the limiter fails open: the provider still enforces its limits."""
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = RedisRateLimiter(dead, {"*": RateLimit(requests=1)}, prefix=prefix)
    assert limiter.admit("m") == limiter.admit("m") == 0.0


def _hammer(redis_url: str, prefix: str, limit: int, window: float, seconds: float) -> list[Any]:
    """Admissions of 2 processes x 8 threads, each as (server time before, after)."""
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), redis_url, prefix, str(limit), str(window), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    return [pair for worker in workers for pair in json.loads(worker.communicate(timeout=30)[0])]


@pytest.mark.slow
def test_two_processes_of_eight_threads_never_admit_more_than_the_limit(
    redis_url: str, prefix: str
) -> None:
    """8 threads in each of 2 processes hammer a 40-a-minute limiter: exactly 40 go.

    The test lasts 3 s, inside one window, so every admission counts against the same
    40: more would be two processes taking one slot, fewer a lost admission.
    """
    assert len(_hammer(redis_url, prefix, 40, 60.0, 3.0)) == 40


@pytest.mark.slow
def test_no_sliding_window_across_processes_holds_more_than_the_limit(
    redis_url: str, prefix: str
) -> None:
    """Over several half-second windows, no N+1 admissions fit in one window.

    Each admission happened at a server time between the two readings around it; N+1
    admissions whose readings all lie within less than a window would be a breach
    beyond doubt. The run must also fill the windows, or it proves nothing.
    """
    limit, window = 10, 0.5
    admitted = sorted(_hammer(redis_url, prefix, limit, window, 2.5))
    for first in range(len(admitted) - limit):
        group = admitted[first : first + limit + 1]
        spread = max(after for _, after in group) - group[0][0]
        assert spread >= window, f"{limit + 1} admissions within {spread:.3f} s"
    assert len(admitted) >= limit * 4, f"only {len(admitted)} admissions: the limit never bit"


def test_a_server_without_the_script_gets_it_loaded(client: redis.Redis, prefix: str) -> None:
    """The first admission on a server that lacks the script loads it and is answered."""
    limiter = RedisRateLimiter(client, {"*": RateLimit(requests=1)}, prefix=prefix)
    limiter._admit_sha = "0" * 40  # as a server restarted or failed over without it
    assert limiter.admit("m") == 0.0
    assert limiter.admit("m") > 0.0
