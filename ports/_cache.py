"""The cache port: bytes in, bytes out, inside one namespace."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from returns.result import Result

from portside.domain._cache import FillClaim
from portside.domain._errors import ServiceError

__all__ = [
    "AsyncCachePort",
    "AsyncCompareAndDelete",
    "AsyncLockedFill",
    "CachePort",
    "CompareAndDelete",
    "LockedFill",
]


class CachePort(Protocol):
    """A namespaced key/value cache of bytes with per-key expiry.

    Keys are non-empty ``str`` of at most 1024 UTF-8 bytes without control characters;
    each adapter prefixes them with its namespace, so two caches with different
    namespaces never see each other's keys. TTLs are seconds (``float``) and must be
    positive; ``None`` means no expiry. An expired key is absent for every method.

    Every method returns ``Failure(InvalidRequest)`` for a bad key, value or TTL
    (nothing is written), ``Failure(Unavailable)`` when the backend cannot be reached
    and ``Failure(TimedOut)`` when it does not answer in time. Bad input of any type
    (``get_many(None)``, ``set_many`` of a list, ``ttl=10**400``, a batch longer than
    ``cache_rules.MAX_BATCH``) is an ``InvalidRequest`` naming the argument, never an
    exception: with the right number of arguments no method raises. The rules are
    ``portside.ports.cache_rules``.
    """

    @property
    def namespace(self) -> str:
        """The namespace every key of this cache lives in."""
        ...

    def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """The value stored at ``key``, or ``None`` when absent or expired."""
        ...

    def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """The present keys among ``keys`` with their values (one round trip)."""
        ...

    def set(self, key: str, value: bytes, ttl: float | None = None) -> Result[None, ServiceError]:
        """Store ``value`` at ``key``, replacing any value and expiry."""
        ...

    def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Store every item with the same ``ttl`` (one round trip); all or none is validated."""
        ...

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        """Store ``value`` only if ``key`` is absent; ``True`` if this call wrote it.

        Atomic: of several concurrent ``add`` calls on one absent key, exactly one wins.
        """
        ...

    def delete(self, key: str) -> Result[bool, ServiceError]:
        """Remove ``key``; ``True`` if it was present."""
        ...

    def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """Atomically add ``by`` to the integer at ``key`` (absent counts as 0).

        The key keeps its expiry. A value that is not a decimal integer is
        ``InvalidRequest``. ``incr`` is never retried automatically: after a
        ``TimedOut`` the increment may or may not have been applied.
        """
        ...

    def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """Seconds left before ``key`` expires; ``None`` if it never expires.

        ``Failure(NotFound)`` when the key is absent.
        """
        ...

    def clear(self) -> Result[None, ServiceError]:
        """Remove every key of this namespace and nothing else."""
        ...

    def close(self) -> None:
        """Release connections; the cache must not be used afterwards."""
        ...


class AsyncCachePort(Protocol):
    """``CachePort`` for asyncio: the same methods, semantics and errors, awaited.

    Every method means exactly what the ``CachePort`` method of the same name means
    (keys, TTLs, namespaces, the rules of ``portside.ports.cache_rules`` and the
    errors each can return are written once, there); only the I/O is awaited. A call
    cancelled while it waits leaves the cache usable: the command it was sending either
    reached the server whole or not at all, and no connection is returned to the pool
    with an unread reply. ``aclose()`` replaces ``close()``.
    """

    @property
    def namespace(self) -> str:
        """The namespace every key of this cache lives in."""
        ...

    async def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """See ``CachePort.get``."""
        ...

    async def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """See ``CachePort.get_many``."""
        ...

    async def set(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """See ``CachePort.set``."""
        ...

    async def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """See ``CachePort.set_many``."""
        ...

    async def add(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[bool, ServiceError]:
        """See ``CachePort.add``."""
        ...

    async def delete(self, key: str) -> Result[bool, ServiceError]:
        """See ``CachePort.delete``."""
        ...

    async def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """See ``CachePort.incr`` (never retried automatically)."""
        ...

    async def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """See ``CachePort.ttl`` (``Failure(NotFound)`` when the key is absent)."""
        ...

    async def clear(self) -> Result[None, ServiceError]:
        """See ``CachePort.clear``: this namespace only."""
        ...

    async def aclose(self) -> None:
        """Release connections; the cache must not be used afterwards."""
        ...


@runtime_checkable
class CompareAndDelete(Protocol):
    """An optional capability: delete a key only while it still holds a given value.

    A lock taken with ``add(lock_key, token, ttl)`` must be released only by its owner:
    ``GET`` then ``DELETE`` could remove a lock that expired and was taken by someone
    else in between. Adapters that can do the comparison atomically offer this method;
    ``get_or_set`` uses it when present and otherwise lets its lock expire.
    """

    def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """Remove ``key`` only if its value is ``expected``; ``True`` if it was removed.

        Atomic with respect to every other operation on the key.
        """
        ...


@runtime_checkable
class LockedFill(Protocol):
    """An optional capability: fill a missing key under a lock in two atomic steps.

    Filling a key once across processes takes a read, a lock (``add`` of a token), a
    second read under the lock (another filler may have stored the value and released
    its lock in between), the write and an owner-only release. Adapters that can run
    these as two atomic steps (two round trips on Redis, one Lua script each) offer
    them here; ``FailOpenCache`` (and so the LLM response cache) composes the same steps
    from the plain methods for a cache without them. ``lock`` is always another key
    than ``key``.
    """

    def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """The value at ``key`` if present; otherwise take ``lock`` if it is free.

        One atomic step: ``FillClaim(value=v)`` when ``key`` holds ``v`` (nothing is
        locked); else ``add(lock, token, ttl)``, and ``FillClaim(locked=True)`` when it
        was taken, ``FillClaim()`` when another caller holds it. ``InvalidRequest`` for
        a bad key, lock, token or TTL.
        """
        ...

    def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """``set(key, value, ttl)`` and ``delete_if_equal(lock, token)`` in one atomic step.

        ``True`` if the lock still held ``token`` and was released. ``InvalidRequest``
        for bad input (nothing is written).
        """
        ...


@runtime_checkable
class AsyncCompareAndDelete(Protocol):
    """``CompareAndDelete`` for asyncio: the same capability and semantics, awaited."""

    async def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """See ``CompareAndDelete.delete_if_equal``."""
        ...


@runtime_checkable
class AsyncLockedFill(Protocol):
    """``LockedFill`` for asyncio: the same two atomic steps and semantics, awaited."""

    async def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """See ``LockedFill.get_or_lock``."""
        ...

    async def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """See ``LockedFill.set_and_unlock``."""
        ...
