"""Tools above any ``CachePort``: a typed view and ``get_or_set``.

Each works with every cache adapter and the fake alike.

- ``TypedCache[T]`` stores values through the codec; a stored value that does not
  decode (an old format, another type) is logged and read as a miss.
- ``get_or_set(cache, key, factory, ttl)`` calls ``factory`` once per process for
  concurrent misses on one key, and across processes fills through the ``LockedFill``
  steps (a short lock key with a random token, released only by its owner) so other
  processes wait for the value instead of computing it too.
- ``AsyncTypedCache`` and ``async_get_or_set`` are their twins over an
  ``AsyncCachePort``: the same decisions (``get_or_set``'s fill steps are written once),
  single-flight across the tasks of an event loop and, through the lock, across
  processes.
- Fail-open (the application keeps working while the cache is down) is
  ``portside.adapters.resilience.FailOpenCache`` (``AsyncFailOpenCache``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final, Generic, TypeVar

import attrs
from returns.result import Failure, Result, Success

from portside.adapters._async_cache_tools import AsyncTypedCache, async_get_or_set
from portside.adapters._cache_tools_core import (
    LOCK_PREFIX,
    LockPolicy,
    Unencodable,
    decode_filled,
    decode_found,
    decode_one,
    encode_items,
    encoded_or_raise,
    fill_steps,
    lock_key,
)
from portside.adapters.clock import SystemClock
from portside.adapters.codec import Codec, default_codec
from portside.adapters.resilience._singleflight import SingleFlight
from portside.adapters.resilience._steps import run
from portside.domain._errors import ServiceError
from portside.ports._cache import CachePort, CompareAndDelete, LockedFill
from portside.ports._clock import Clock

__all__ = [
    "LOCK_PREFIX",
    "AsyncTypedCache",
    "LockPolicy",
    "TypedCache",
    "async_get_or_set",
    "get_or_set",
    "lock_key",
]

T = TypeVar("T")

# One flight table for the process: concurrent misses on one key of one cache object
# share one factory call.
_flights: Final[SingleFlight[Result[bytes, ServiceError]]] = SingleFlight()


def get_or_set(
    cache: CachePort,
    key: str,
    factory: Callable[[], bytes],
    ttl: float | None = None,
    *,
    lock: LockPolicy | None = None,
    clock: Clock | None = None,
) -> Result[bytes, ServiceError]:
    """The value at ``key``, computed by ``factory`` and stored with ``ttl`` on a miss.

    Concurrent misses on one key in this process call ``factory`` once and share its
    result (an exception in ``factory`` propagates to all of them). Across processes a
    lock key makes the others wait up to ``lock.wait`` seconds for the value.

    Returns the cache's ``Failure`` when the first read fails (wrap the cache in
    ``FailOpenCache`` to turn outages into misses), ``Failure(InvalidRequest)`` for a
    bad key or TTL or a ``factory`` that returns something other than ``bytes``. When
    storing the computed value fails the value is still returned and the failure logged.
    """
    first = cache.get(key)
    if isinstance(first, Failure):
        return Failure(first.failure())
    value = first.unwrap()
    if value is not None:
        return Success(value)
    flight = f"{id(cache)}|{cache.namespace}|{key}"
    result, _shared = _flights.do(
        flight, lambda: _fill(cache, key, factory, ttl, lock or LockPolicy(), clock)
    )
    return result


def _fill(
    cache: CachePort,
    key: str,
    factory: Callable[[], bytes],
    ttl: float | None,
    policy: LockPolicy,
    clock: Clock | None,
) -> Result[bytes, ServiceError]:
    """The leader's fill (``fill_steps``), with plain calls on ``cache``."""
    clock = clock or SystemClock()
    steps = fill_steps(
        cache.namespace,
        key,
        ttl,
        policy,
        clock,
        native=isinstance(cache, LockedFill),
        can_compare=isinstance(cache, CompareAndDelete),
    )
    return run(steps, cache, sleep=clock.sleep, compute=factory)


@attrs.define
class TypedCache(Generic[T]):
    """Values of type ``T`` stored through the codec in any ``CachePort``.

    ``get`` reads a value that does not decode as ``T`` as a miss and logs it (logger
    ``portside.cache``). Writes return ``Failure(SerializationError)`` for a value the
    codec cannot encode (nothing is written) and the cache's own failures otherwise.
    ``AsyncTypedCache`` is its twin over an ``AsyncCachePort``.
    """

    cache: CachePort
    into: type[T]
    codec: Codec = default_codec

    def get(self, key: str) -> Result[T | None, ServiceError]:
        """The value at ``key``; ``None`` when absent, expired or undecodable."""
        fetched = self.cache.get(key)
        if isinstance(fetched, Failure):
            return Failure(fetched.failure())
        return decode_one(self.codec, self.cache.namespace, self.into, key, fetched.unwrap())

    def get_many(self, keys: Iterable[str]) -> Result[dict[str, T], ServiceError]:
        """The present, decodable keys among ``keys`` with their values."""
        fetched = self.cache.get_many(keys)
        if isinstance(fetched, Failure):
            return Failure(fetched.failure())
        return Success(decode_found(self.codec, self.cache.namespace, self.into, fetched.unwrap()))

    def set(self, key: str, value: T, ttl: float | None = None) -> Result[None, ServiceError]:
        """Store ``value`` at ``key``."""
        encoded = self.codec.encode(value)
        if isinstance(encoded, Failure):
            return Failure(encoded.failure())
        return self.cache.set(key, encoded.unwrap(), ttl)

    def set_many(
        self, items: Mapping[str, T], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Store every item; nothing is written if any value cannot be encoded."""
        encoded = encode_items(self.codec, items)
        if isinstance(encoded, Failure):
            return Failure(encoded.failure())
        return self.cache.set_many(encoded.unwrap(), ttl)

    def add(self, key: str, value: T, ttl: float | None = None) -> Result[bool, ServiceError]:
        """Store ``value`` only if ``key`` is absent; ``True`` if this call wrote it."""
        encoded = self.codec.encode(value)
        if isinstance(encoded, Failure):
            return Failure(encoded.failure())
        return self.cache.add(key, encoded.unwrap(), ttl)

    def delete(self, key: str) -> Result[bool, ServiceError]:
        """Remove ``key``; ``True`` if it was present."""
        return self.cache.delete(key)

    def get_or_set(
        self,
        key: str,
        factory: Callable[[], T],
        ttl: float | None = None,
        *,
        lock: LockPolicy | None = None,
        clock: Clock | None = None,
    ) -> Result[T, ServiceError]:
        """``get_or_set`` for typed values: ``factory`` runs once per process per miss.

        ``Failure(SerializationError)`` when the factory's value cannot be encoded.
        """
        try:
            got = get_or_set(
                self.cache,
                key,
                lambda: encoded_or_raise(self.codec, factory()),
                ttl,
                lock=lock,
                clock=clock,
            )
        except Unencodable as exc:
            return Failure(exc.error)
        return decode_filled(self.codec, got, self.into)
