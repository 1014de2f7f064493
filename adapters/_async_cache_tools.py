"""``AsyncTypedCache`` and ``async_get_or_set``: the cache tools over an ``AsyncCachePort``.

Twins of ``TypedCache`` and ``get_or_set`` (public in ``portside.adapters.cache_tools``):
the codec helpers and the fill steps are the sync tools' own (``_cache_tools_core``);
only the I/O is awaited, and the single flight is across the tasks of the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Final, Generic, TypeVar

import attrs
from returns.result import Failure, Result, Success

from portside.adapters._cache_tools_core import (
    LockPolicy,
    Unencodable,
    decode_filled,
    decode_found,
    decode_one,
    encode_items,
    encoded_or_raise,
    fill_steps,
)
from portside.adapters.clock import SystemClock, async_sleeper
from portside.adapters.codec import Codec, default_codec
from portside.adapters.resilience._singleflight import AsyncSingleFlight
from portside.adapters.resilience._steps import arun
from portside.domain._errors import ServiceError
from portside.ports._cache import AsyncCachePort, AsyncCompareAndDelete, AsyncLockedFill
from portside.ports._clock import Clock

__all__ = ["AsyncTypedCache", "async_get_or_set"]

T = TypeVar("T")

# One flight table for the process (kept per event loop): concurrent misses on one key
# of one cache object share one factory call.
_flights: Final[AsyncSingleFlight[Result[bytes, ServiceError]]] = AsyncSingleFlight()


async def async_get_or_set(
    cache: AsyncCachePort,
    key: str,
    factory: Callable[[], Awaitable[bytes]],
    ttl: float | None = None,
    *,
    lock: LockPolicy | None = None,
    clock: Clock | None = None,
) -> Result[bytes, ServiceError]:
    """``get_or_set`` on an async cache, with an async ``factory``.

    Concurrent misses on one key from the tasks of this process await one ``factory()``
    and share its result (its exception propagates to all of them); across processes
    the lock key makes the others wait up to ``lock.wait`` seconds for the value,
    polling with ``asyncio.sleep`` (on a ``ManualClock``, by advancing it). A task
    cancelled while it fills releases its lock on the way out (a second cancellation
    during the release leaves the lock to its TTL); the tasks waiting for it are not
    cancelled: one of them fills instead.

    Returns what ``get_or_set`` returns: the cache's ``Failure`` when the first read
    fails, ``Failure(InvalidRequest)`` for a bad key or TTL or a factory value that is
    not ``bytes``; a failed store is logged and the value still returned.
    """
    first = await cache.get(key)
    if isinstance(first, Failure):
        return Failure(first.failure())
    value = first.unwrap()
    if value is not None:
        return Success(value)
    flight = f"{id(cache)}|{cache.namespace}|{key}"
    policy = lock or LockPolicy()
    result, _shared = await _flights.do(
        flight, lambda: _fill(cache, key, factory, ttl, policy, clock or SystemClock())
    )
    return result


async def _fill(
    cache: AsyncCachePort,
    key: str,
    factory: Callable[[], Awaitable[bytes]],
    ttl: float | None,
    policy: LockPolicy,
    clock: Clock,
) -> Result[bytes, ServiceError]:
    """The leader's fill (``fill_steps``), awaited on ``cache``."""
    steps = fill_steps(
        cache.namespace,
        key,
        ttl,
        policy,
        clock,
        native=isinstance(cache, AsyncLockedFill),
        can_compare=isinstance(cache, AsyncCompareAndDelete),
    )
    return await arun(steps, cache, sleep=async_sleeper(clock), compute=factory)


@attrs.define
class AsyncTypedCache(Generic[T]):
    """``TypedCache`` over an ``AsyncCachePort``: values of type ``T`` through the codec.

    The same answers as ``TypedCache``: an undecodable stored value is a logged miss, a
    value the codec cannot encode is ``Failure(SerializationError)`` with nothing
    written, and the cache's own failures pass through.
    """

    cache: AsyncCachePort
    into: type[T]
    codec: Codec = default_codec

    async def get(self, key: str) -> Result[T | None, ServiceError]:
        """The value at ``key``; ``None`` when absent, expired or undecodable."""
        fetched = await self.cache.get(key)
        if isinstance(fetched, Failure):
            return Failure(fetched.failure())
        return decode_one(self.codec, self.cache.namespace, self.into, key, fetched.unwrap())

    async def get_many(self, keys: Iterable[str]) -> Result[dict[str, T], ServiceError]:
        """The present, decodable keys among ``keys`` with their values."""
        fetched = await self.cache.get_many(keys)
        if isinstance(fetched, Failure):
            return Failure(fetched.failure())
        return Success(decode_found(self.codec, self.cache.namespace, self.into, fetched.unwrap()))

    async def set(self, key: str, value: T, ttl: float | None = None) -> Result[None, ServiceError]:
        """Store ``value`` at ``key``."""
        encoded = self.codec.encode(value)
        if isinstance(encoded, Failure):
            return Failure(encoded.failure())
        return await self.cache.set(key, encoded.unwrap(), ttl)

    async def set_many(
        self, items: Mapping[str, T], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Store every item; nothing is written if any value cannot be encoded."""
        encoded = encode_items(self.codec, items)
        if isinstance(encoded, Failure):
            return Failure(encoded.failure())
        return await self.cache.set_many(encoded.unwrap(), ttl)

    async def add(self, key: str, value: T, ttl: float | None = None) -> Result[bool, ServiceError]:
        """Store ``value`` only if ``key`` is absent; ``True`` if this call wrote it."""
        encoded = self.codec.encode(value)
        if isinstance(encoded, Failure):
            return Failure(encoded.failure())
        return await self.cache.add(key, encoded.unwrap(), ttl)

    async def delete(self, key: str) -> Result[bool, ServiceError]:
        """Remove ``key``; ``True`` if it was present."""
        return await self.cache.delete(key)

    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], Awaitable[T]],
        ttl: float | None = None,
        *,
        lock: LockPolicy | None = None,
        clock: Clock | None = None,
    ) -> Result[T, ServiceError]:
        """``async_get_or_set`` for typed values: ``factory`` runs once per miss.

        ``Failure(SerializationError)`` when the factory's value cannot be encoded.
        """

        async def produce() -> bytes:
            return encoded_or_raise(self.codec, await factory())

        try:
            got = await async_get_or_set(self.cache, key, produce, ttl, lock=lock, clock=clock)
        except Unencodable as exc:
            return Failure(exc.error)
        return decode_filled(self.codec, got, self.into)
