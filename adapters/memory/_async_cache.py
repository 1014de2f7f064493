"""``AsyncMemoryCache``: the in-memory cache fake for asyncio, over ``MemoryCache``.

It holds a ``MemoryCache`` and awaits nothing: every method is the sync fake's method
of the same name, so the async fake has no state model of its own that could drift
from the reference model the contract kit checks against. Its ``sync`` attribute is
that ``MemoryCache``; a sync and an async view of one store see the same keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs
from returns.result import Result

from portside.adapters.clock import SystemClock
from portside.adapters.memory._cache import MemoryCache, MemoryStore
from portside.domain._cache import FillClaim
from portside.domain._errors import ServiceError
from portside.ports._cache import AsyncCachePort, AsyncCompareAndDelete, AsyncLockedFill
from portside.ports._clock import Clock

__all__ = ["AsyncMemoryCache"]


@attrs.define
class AsyncMemoryCache(AsyncCachePort, AsyncCompareAndDelete, AsyncLockedFill):
    """``AsyncCachePort`` on a ``MemoryCache`` (same arguments, same answers). For tests.

    Returns what ``MemoryCache`` returns: ``Failure(InvalidRequest)`` for bad input and
    for ``incr`` on a value that is not an integer; never ``Unavailable`` or ``TimedOut``.
    A coroutine of this fake never suspends, so it cannot be cancelled halfway.
    """

    _namespace: str = attrs.field(default="default", alias="namespace")
    clock: Clock = attrs.field(factory=SystemClock)
    store: MemoryStore = attrs.field(factory=MemoryStore, repr=False)
    sync: MemoryCache = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # MemoryCache checks the namespace (raising as it does for a bad one).
        self.sync = MemoryCache(self._namespace, clock=self.clock, store=self.store)

    @property
    def namespace(self) -> str:
        """The namespace every key of this cache lives in."""
        return self._namespace

    async def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """``MemoryCache.get``."""
        return self.sync.get(key)

    async def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """``MemoryCache.get_many``."""
        return self.sync.get_many(keys)

    async def set(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """``MemoryCache.set``."""
        return self.sync.set(key, value, ttl)

    async def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """``MemoryCache.set_many``."""
        return self.sync.set_many(items, ttl)

    async def add(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[bool, ServiceError]:
        """``MemoryCache.add``."""
        return self.sync.add(key, value, ttl)

    async def delete(self, key: str) -> Result[bool, ServiceError]:
        """``MemoryCache.delete``."""
        return self.sync.delete(key)

    async def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """``MemoryCache.delete_if_equal``."""
        return self.sync.delete_if_equal(key, expected)

    async def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """``MemoryCache.get_or_lock``."""
        return self.sync.get_or_lock(key, lock, token, ttl)

    async def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """``MemoryCache.set_and_unlock``."""
        return self.sync.set_and_unlock(key, value, ttl, lock, token)

    async def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """``MemoryCache.incr``."""
        return self.sync.incr(key, by)

    async def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """``MemoryCache.ttl``."""
        return self.sync.ttl(key)

    async def clear(self) -> Result[None, ServiceError]:
        """``MemoryCache.clear``: this namespace only."""
        return self.sync.clear()

    async def aclose(self) -> None:
        """Nothing to release; present for the port."""
        self.sync.close()
