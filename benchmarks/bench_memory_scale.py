"""Rows ``memory_cache_set_1m`` and ``memory_cache_get_1m``: ``MemoryCache`` at 10^6 keys.

``ours`` works on a cache holding 10^6 keys, ``baseline`` on one holding 10^3 (the same
calls: a set with a TTL or a get of a random present key). Goal: within 2x (ratio >=
0.5). The note gives the memory per key at 10^5 keys (tracemalloc: dict entry, key,
value of 64 bytes, and the deadline on the expiry heap).
"""

from __future__ import annotations

import itertools
import random
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks._harness import Case
from portside.adapters.memory import MemoryCache

NAMES = ("memory_cache_set_1m", "memory_cache_get_1m")

VALUE = b"x" * 64
TTL = 3600.0


def _filled(count: int) -> tuple[MemoryCache, list[str]]:
    cache = MemoryCache(f"scale-{count}")
    keys = [f"key:{n}" for n in range(count)]
    for start in range(0, count, 10_000):
        cache.set_many(dict.fromkeys(keys[start : start + 10_000], VALUE), ttl=TTL)
    return cache, keys


def _bytes_per_key(count: int) -> float:
    keys = [f"key:{n}" for n in range(count)]
    tracemalloc.start()
    cache = MemoryCache("measure")
    for key in keys:
        cache.set(key, VALUE, ttl=TTL)
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(cache) == count
    return used / count


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    per_key = _bytes_per_key(100_000)
    big, big_keys = _filled(1_000_000)
    small, small_keys = _filled(1_000)
    rng = random.Random(7)
    # Random present keys, drawn ahead (drawing is not what is measured).
    big_order = itertools.cycle(rng.choices(big_keys, k=200_000))
    small_order = itertools.cycle(rng.choices(small_keys, k=200_000))
    note = f"10^6 vs 10^3 keys; {per_key:.0f} bytes per key"
    yield [
        Case(
            "memory_cache_set_1m",
            lambda: big.set(next(big_order), VALUE, ttl=TTL),
            lambda: small.set(next(small_order), VALUE, ttl=TTL),
            goal=0.5,
            unit="sets/s",
            note=note,
        ),
        Case(
            "memory_cache_get_1m",
            lambda: big.get(next(big_order)),
            lambda: small.get(next(small_order)),
            goal=0.5,
            unit="gets/s",
            note=note,
        ),
    ]
