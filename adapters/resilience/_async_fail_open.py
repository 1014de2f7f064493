"""``AsyncFailOpenCache``: ``FailOpenCache`` over an ``AsyncCachePort``.

The decisions (what fails open, the breaker, the outage log lines, the metrics hooks)
are ``FailOpenCore``'s, shared with ``FailOpenCache``; each method here awaits the
wrapped cache where the sync twin calls it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs
from returns.result import Failure, Result

from portside.adapters.resilience import _locked_fill
from portside.adapters.resilience._fail_open import (
    FALSE,
    GO_AHEAD,
    NONE,
    NOTHING,
    TRUE,
    FailOpenCore,
    ttl_missing,
)
from portside.domain._cache import FillClaim
from portside.domain._errors import ServiceError
from portside.ports._cache import AsyncCachePort, AsyncCompareAndDelete, AsyncLockedFill

__all__ = ["AsyncFailOpenCache"]


@attrs.define
class AsyncFailOpenCache(
    FailOpenCore[AsyncCachePort], AsyncCachePort, AsyncCompareAndDelete, AsyncLockedFill
):
    """An async cache that answers even when its backend is down; ``FailOpenCache``'s twin.

    The same answers while ``inner`` returns ``Unavailable`` or ``TimedOut`` (or any
    failure ``fails_open`` accepts): reads are misses, writes are skipped, ``add`` and
    ``get_or_lock`` say go ahead, ``delete`` is ``False``, ``ttl`` is ``NotFound`` and
    ``incr`` returns the failure. The breaker (the sync ``CircuitBreaker``, on the
    injected clock) stops calling a dead backend and probes it after ``reset_timeout``.
    Bad input and refusals pass through unchanged.
    """

    async def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """The value at ``key``; ``None`` when absent or while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("get", NONE)
        return self.settle(await self.inner.get(key), "get", NONE)

    async def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """The present keys among ``keys``; empty while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("get_many", NOTHING)
        return self.settle(await self.inner.get_many(keys), "get_many", NOTHING)

    async def set(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Store ``value``; skipped (``Success``) while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("set", NONE)
        return self.settle(await self.inner.set(key, value, ttl), "set", NONE)

    async def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Store every item; skipped (``Success``) while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("set_many", NONE)
        return self.settle(await self.inner.set_many(items, ttl), "set_many", NONE)

    async def add(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[bool, ServiceError]:
        """Store if absent; ``True`` (go ahead) while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("add", TRUE)
        return self.settle(await self.inner.add(key, value, ttl), "add", TRUE)

    async def delete(self, key: str) -> Result[bool, ServiceError]:
        """Remove ``key``; ``False`` while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("delete", FALSE)
        return self.settle(await self.inner.delete(key), "delete", FALSE)

    async def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """Compare-and-delete when ``inner`` offers it; ``False`` otherwise or while down."""
        if not isinstance(self.inner, AsyncCompareAndDelete):
            return FALSE
        if not self.breaker.allow():
            return self.skipped("delete_if_equal", FALSE)
        answer = await self.inner.delete_if_equal(key, expected)
        return self.settle(answer, "delete_if_equal", FALSE)

    async def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """``get_or_lock`` of ``inner``, or composed; ``FillClaim(locked=True)`` while down."""
        if not self.breaker.allow():
            return self.skipped("get_or_lock", GO_AHEAD)
        claimed = await _locked_fill.aget_or_lock(self.inner, key, lock, token, ttl)
        return self.settle(claimed, "get_or_lock", GO_AHEAD)

    async def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """``set_and_unlock`` of ``inner``, or composed; ``False`` while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("set_and_unlock", FALSE)
        stored = await _locked_fill.aset_and_unlock(self.inner, key, value, ttl, lock, token)
        return self.settle(stored, "set_and_unlock", FALSE)

    async def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """Atomic increment; ``Failure(Unavailable)`` (no I/O) while the breaker is open."""
        if not self.breaker.allow():
            return self.skipped("incr", Failure(self.breaker.open_error("incr")))
        return self.settle(await self.inner.incr(key, by), "incr", None)

    async def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """Seconds left; ``NotFound`` (a miss) while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("ttl", ttl_missing())
        return self.settle(await self.inner.ttl(key), "ttl", ttl_missing())

    async def clear(self) -> Result[None, ServiceError]:
        """Remove this namespace's keys; skipped while the backend is down."""
        if not self.breaker.allow():
            return self.skipped("clear", NONE)
        return self.settle(await self.inner.clear(), "clear", NONE)

    async def aclose(self) -> None:
        """Close the wrapped cache."""
        await self.inner.aclose()
