"""``MemoryCache``: the in-memory cache fake and the reference model of ``CachePort``.

For tests and the embedded default. It is the model the contract kit checks every
real cache against, so it states the semantics plainly: expiry is read from the
injected ``Clock`` (a ``ManualClock`` in tests, so nothing sleeps), an expired key is
absent for every method, and every operation is atomic under one lock.

Caches created from one ``MemoryStore`` behave like caches on one Redis database: each
sees only its own namespace, and ``clear()`` empties that namespace only.

Expiry costs O(log n) per write, whatever the number of keys: deadlines go on a heap,
each write removes the keys whose deadline has passed from its top, and an expired key
read before then is dropped when read. Removal is lazy: a deleted key's item is skipped
when it comes up, and a key whose TTL was refreshed keeps its one item, moved to the
new deadline when it comes up. Should extra items outnumber the keys (keys deleted and
written again), the heap is rebuilt from the live keys (amortised O(1) per write).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Mapping
from typing import Final

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.domain._cache import FillClaim
from portside.domain._errors import InvalidRequest, NotFound, ServiceError
from portside.ports._cache import CachePort, CompareAndDelete, LockedFill
from portside.ports._clock import Clock
from portside.ports.cache_rules import (
    MAX_INCR,
    MIN_INCR,
    check_by,
    check_items,
    check_key,
    check_keys,
    check_lock,
    check_namespace,
    check_ttl,
    check_value,
    parse_counter,
)

__all__ = ["MemoryCache", "MemoryStore"]

# An entry is (value, expires_at on the clock's monotonic scale, or None for never).
_Entry = tuple[bytes, float | None]
# A deadline on the heap: (expires_at, key); stale once the key holds another entry.
_Deadline = tuple[float, str]
_HIT: Final = Success(None)
_HELD: Final = Success(FillClaim())
_LOCKED: Final = Success(FillClaim(locked=True))
# The heap is rebuilt from the live keys once it holds this many more items than keys.
_SLACK: Final = 1024


@attrs.define
class MemoryStore:
    """The shared memory behind one or more ``MemoryCache`` namespaces. For tests.

    Like one Redis database: several caches (namespaces) live in it side by side.
    """

    _spaces: dict[str, dict[str, _Entry]] = attrs.field(factory=dict, init=False, repr=False)
    _deadlines: dict[str, list[_Deadline]] = attrs.field(factory=dict, init=False, repr=False)
    lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def space(self, namespace: str) -> dict[str, _Entry]:
        """The dictionary holding ``namespace``'s keys (created when first asked)."""
        with self.lock:
            return self._spaces.setdefault(namespace, {})

    def deadlines(self, namespace: str) -> list[_Deadline]:
        """The heap of ``namespace``'s deadlines (created when first asked)."""
        with self.lock:
            return self._deadlines.setdefault(namespace, [])

    def namespaces(self) -> list[str]:
        """Every namespace that has ever been used in this store."""
        with self.lock:
            return list(self._spaces)


def _not_found(key: str) -> NotFound:
    return NotFound(service="cache", operation="ttl", message="no such key")


@attrs.define
class MemoryCache(CachePort, CompareAndDelete, LockedFill):
    """Thread-safe in-memory ``CachePort`` with TTLs on the injected clock. For tests.

    Returns ``Failure(InvalidRequest)`` for a bad key, value or TTL and for ``incr`` on
    a value that is not an integer; never ``Unavailable`` or ``TimedOut``.
    """

    _namespace: str = attrs.field(default="default", alias="namespace")
    clock: Clock = attrs.field(factory=SystemClock)
    store: MemoryStore = attrs.field(factory=MemoryStore, repr=False)
    _data: dict[str, _Entry] = attrs.field(init=False, repr=False)
    _deadlines: list[_Deadline] = attrs.field(init=False, repr=False)
    _lock: threading.Lock = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        check_namespace(self._namespace)
        self._data = self.store.space(self._namespace)
        self._deadlines = self.store.deadlines(self._namespace)
        self._lock = self.store.lock

    @property
    def namespace(self) -> str:
        """The namespace every key of this cache lives in."""
        return self._namespace

    def _live(self, key: str, now: float) -> _Entry | None:
        """The entry at ``key`` unless expired (an expired one is dropped). Under lock."""
        entry = self._data.get(key)
        if entry is None:
            return None
        expires = entry[1]
        if expires is not None and expires <= now:
            del self._data[key]
            return None
        return entry

    def _put(self, key: str, entry: _Entry, now: float) -> None:
        """Store ``entry``, note its deadline, and drop keys expired by ``now``. Under lock.

        Every key with a deadline has a heap item no later than that deadline. A key
        rewritten with a later deadline (a TTL refreshed) needs no new item: when its
        old item comes up, it is moved to the key's current deadline instead.
        """
        data = self._data
        old = data.get(key)
        data[key] = entry
        expires = entry[1]
        heap = self._deadlines
        if expires is not None and (old is None or old[1] is None or expires < old[1]):
            heapq.heappush(heap, (expires, key))
        while heap and heap[0][0] <= now:
            name = heap[0][1]
            held = data.get(name)
            if held is None or held[1] is None:
                heapq.heappop(heap)  # deleted, or no deadline any more
            elif held[1] <= now:
                heapq.heappop(heap)
                del data[name]
            else:
                heapq.heapreplace(heap, (held[1], name))  # its deadline moved later
        if len(heap) > 2 * len(data) + _SLACK:
            # Keys deleted and written again leave extra items: rebuild from live keys.
            heap[:] = [(e[1], k) for k, e in data.items() if e[1] is not None]
            heapq.heapify(heap)

    def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """The value at ``key``, or ``None`` when absent or expired."""
        error = check_key(key, "get")
        if error is not None:
            return Failure(error)
        # Lock-free read: a dict lookup is atomic, and an entry tuple never changes.
        entry = self._data.get(key)
        if entry is None:
            return _HIT
        expires = entry[1]
        if expires is not None and expires <= self.clock.monotonic():
            with self._lock:
                if self._data.get(key) is entry:  # not rewritten meanwhile
                    del self._data[key]
            return _HIT
        return Success(entry[0])

    def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """The present keys among ``keys`` with their values."""
        listed, error = check_keys(keys, "get_many")
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        found: dict[str, bytes] = {}
        with self._lock:
            for key in listed:
                entry = self._live(key, now)
                if entry is not None:
                    found[key] = entry[0]
        return Success(found)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> Result[None, ServiceError]:
        """Store ``value`` at ``key``, replacing any value and expiry."""
        error = check_key(key, "set") or check_value(value, "set") or check_ttl(ttl, "set")
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        entry = (value, None if ttl is None else now + ttl)
        with self._lock:
            self._put(key, entry, now)
        return _HIT

    def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Store every item with the same ``ttl``; nothing is written if any item is bad."""
        error = check_items(items, "set_many") or check_ttl(ttl, "set_many")
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        expires = None if ttl is None else now + ttl
        with self._lock:
            for key, value in items.items():
                self._put(key, (value, expires), now)
        return _HIT

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        """Store ``value`` only if ``key`` is absent; ``True`` if this call wrote it."""
        error = check_key(key, "add") or check_value(value, "add") or check_ttl(ttl, "add")
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        with self._lock:
            if self._live(key, now) is not None:
                return Success(False)
            self._put(key, (value, None if ttl is None else now + ttl), now)
        return Success(True)

    def delete(self, key: str) -> Result[bool, ServiceError]:
        """Remove ``key``; ``True`` if it was present."""
        error = check_key(key, "delete")
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        with self._lock:
            if self._live(key, now) is None:
                return Success(False)
            del self._data[key]
        return Success(True)

    def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """Remove ``key`` only if it holds ``expected``; ``True`` if it was removed."""
        error = check_key(key, "delete_if_equal") or check_value(expected, "delete_if_equal")
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        with self._lock:
            entry = self._live(key, now)
            if entry is None or entry[0] != expected:
                return Success(False)
            del self._data[key]
        return Success(True)

    def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """The value at ``key`` if present; else take ``lock`` if free. One atomic step."""
        error = check_key(key, "get_or_lock") or check_lock(lock, token, ttl, "get_or_lock")
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        with self._lock:
            entry = self._live(key, now)
            if entry is not None:
                return Success(FillClaim(value=entry[0]))
            if self._live(lock, now) is not None:
                return _HELD
            self._put(lock, (token, now + ttl), now)
        return _LOCKED

    def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """Store ``value`` and release ``lock`` if ``token`` holds it. One atomic step."""
        error = (
            check_key(key, "set_and_unlock")
            or check_value(value, "set_and_unlock")
            or check_ttl(ttl, "set_and_unlock")
            or check_lock(lock, token, 1.0, "set_and_unlock")
        )
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        with self._lock:
            self._put(key, (value, None if ttl is None else now + ttl), now)
            held = self._live(lock, now)
            if held is None or held[0] != token:
                return Success(False)
            del self._data[lock]
        return Success(True)

    def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """Add ``by`` to the integer at ``key`` (absent is 0), keeping its expiry.

        ``InvalidRequest`` when the stored value is not a decimal integer or the result
        leaves the signed 64-bit range (the value is then unchanged).
        """
        error = check_key(key, "incr") or check_by(by)
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        with self._lock:
            entry = self._live(key, now)
            current, expires = (0, None) if entry is None else (parse_counter(entry[0]), entry[1])
            if current is None:
                return Failure(
                    InvalidRequest(
                        service="cache", operation="incr", message="value is not an integer"
                    )
                )
            total = current + by
            if not MIN_INCR <= total <= MAX_INCR:
                return Failure(
                    InvalidRequest(
                        service="cache",
                        operation="incr",
                        message="increment would overflow a signed 64-bit integer",
                    )
                )
            # The deadline is unchanged and already on the heap: no new heap item.
            self._data[key] = (str(total).encode(), expires)
        return Success(total)

    def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """Seconds left before ``key`` expires, ``None`` if never; ``NotFound`` if absent."""
        error = check_key(key, "ttl")
        if error is not None:
            return Failure(error)
        now = self.clock.monotonic()
        with self._lock:
            entry = self._live(key, now)
        if entry is None:
            return Failure(_not_found(key))
        return Success(None if entry[1] is None else entry[1] - now)

    def clear(self) -> Result[None, ServiceError]:
        """Remove every key of this namespace and nothing else."""
        with self._lock:
            self._data.clear()
            self._deadlines.clear()
        return _HIT

    def close(self) -> None:
        """Nothing to release; present for the port."""

    def __len__(self) -> int:
        """Number of live keys (for tests that check memory stays bounded)."""
        now = self.clock.monotonic()
        with self._lock:
            return sum(1 for _, exp in self._data.values() if exp is None or exp > now)
