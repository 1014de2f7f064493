"""Tools above any ``CachePort``: a typed view and ``get_or_set``.

Each works with every cache adapter and the fake alike.

- ``TypedCache[T]`` stores values through the codec; a stored value that does not
  decode (an old format, another type) is logged and read as a miss.
- ``get_or_set(cache, key, factory, ttl)`` calls ``factory`` once per process for
  concurrent misses on one key, and across processes fills through the ``LockedFill``
  steps (a short lock key with a random token, released only by its owner) so other
  processes wait for the value instead of computing it too.
- Fail-open (the application keeps working while the cache is down) is
  ``portside.adapters.resilience.FailOpenCache``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Generic, TypeVar

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.codec import Codec, default_codec
from portside.adapters.resilience._locked_fill import get_or_lock, release, set_and_unlock
from portside.adapters.resilience._singleflight import SingleFlight
from portside.domain._cache import FillClaim
from portside.domain._errors import InvalidRequest, SerializationError, ServiceError
from portside.ports._cache import CachePort
from portside.ports._clock import Clock
from portside.ports.cache_rules import check_value

__all__ = ["LOCK_PREFIX", "LockPolicy", "TypedCache", "get_or_set", "lock_key"]

T = TypeVar("T")

log: Final = logging.getLogger("portside.cache")

#: Keys starting with this are ``get_or_set``'s cross-process locks; do not use it.
LOCK_PREFIX: Final = "portside.lock:"
_MISS: Final = Success(None)
# One flight table for the process: concurrent misses on one key of one cache object
# share one factory call.
_flights: Final[SingleFlight[Result[bytes, ServiceError]]] = SingleFlight()


@attrs.frozen
class LockPolicy:
    """How ``get_or_set`` coordinates with other processes.

    ``ttl``: the lock's lifetime, longer than a factory call usually takes (a crashed
    owner's lock frees itself after this). ``wait``: how long to wait for another
    process's value before computing it anyway. ``poll``: seconds between looks.
    """

    ttl: float = 10.0
    wait: float = 10.0
    poll: float = 0.05


def lock_key(key: str) -> str:
    """The lock key ``get_or_set`` uses for ``key`` (hashed, so it always fits)."""
    return LOCK_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


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
    """Fill ``key`` once for this process: the leader of a single flight runs this.

    The fill steps are ``LockedFill``'s (two round trips on Redis; composed from the
    plain methods on a cache without them): ``get_or_lock`` looks again (a thread that
    missed just before another flight ended, or another process, may have stored it)
    and takes the lock in the same step; ``set_and_unlock`` stores the value and
    releases the lock, owner only.
    """
    name = lock_key(key)
    token = secrets.token_hex(16).encode()
    claimed = _claim(cache, key, name, token, policy, clock or SystemClock())
    if isinstance(claimed, Success) and claimed.unwrap().value is not None:
        return Success(claimed.unwrap().value)  # stored by another thread or process
    # A failing cache cannot coordinate: compute without the lock.
    owned = isinstance(claimed, Success) and claimed.unwrap().locked
    try:
        value = factory()
        if check_value(value, "get_or_set") is not None:
            return Failure(
                InvalidRequest(
                    service="cache",
                    operation="get_or_set",
                    message=f"factory must return bytes, got {type(value).__name__}",
                )
            )
        if owned:
            stored: Result[Any, ServiceError] = set_and_unlock(cache, key, value, ttl, name, token)
            owned = isinstance(stored, Failure)  # released with the write unless it failed
        else:
            stored = cache.set(key, value, ttl)
        if isinstance(stored, Failure):
            if isinstance(stored.failure(), InvalidRequest):
                return Failure(stored.failure())
            log.warning(
                "cache %s: computed value for a key was not stored: %s",
                cache.namespace,
                stored.failure(),
            )
        return Success(value)
    finally:
        if owned:
            release(cache, name, token)


def _claim(
    cache: CachePort, key: str, name: str, token: bytes, policy: LockPolicy, clock: Clock
) -> Result[FillClaim, ServiceError]:
    """The value at ``key``, the lock ``name``, or ``FillClaim()`` after waiting in vain.

    While another process holds the lock this polls every ``policy.poll`` seconds for
    up to ``policy.wait``: its value once stored, or the lock once released. A cache
    failure is returned as is (the caller computes without the lock).
    """
    deadline = clock.monotonic() + policy.wait
    while True:
        claimed = get_or_lock(cache, key, name, token, policy.ttl)
        if isinstance(claimed, Failure):
            return claimed
        claim = claimed.unwrap()
        if claim.value is not None or claim.locked or clock.monotonic() >= deadline:
            return claimed
        clock.sleep(policy.poll)


@attrs.define
class TypedCache(Generic[T]):
    """Values of type ``T`` stored through the codec in any ``CachePort``.

    ``get`` reads a value that does not decode as ``T`` as a miss and logs it (logger
    ``portside.cache``). Writes return ``Failure(SerializationError)`` for a value the
    codec cannot encode (nothing is written) and the cache's own failures otherwise.
    """

    cache: CachePort
    into: type[T]
    codec: Codec = default_codec

    def get(self, key: str) -> Result[T | None, ServiceError]:
        """The value at ``key``; ``None`` when absent, expired or undecodable."""
        fetched = self.cache.get(key)
        if isinstance(fetched, Failure):
            return Failure(fetched.failure())
        data = fetched.unwrap()
        if data is None:
            return _MISS
        decoded = self.codec.decode(data, self.into)
        if isinstance(decoded, Failure):
            self._undecodable(key, decoded.failure())
            return _MISS
        return Success(decoded.unwrap())

    def get_many(self, keys: Iterable[str]) -> Result[dict[str, T], ServiceError]:
        """The present, decodable keys among ``keys`` with their values."""
        fetched = self.cache.get_many(keys)
        if isinstance(fetched, Failure):
            return Failure(fetched.failure())
        found: dict[str, T] = {}
        for key, data in fetched.unwrap().items():
            decoded = self.codec.decode(data, self.into)
            if isinstance(decoded, Failure):
                self._undecodable(key, decoded.failure())
            else:
                found[key] = decoded.unwrap()
        return Success(found)

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
        encoded: dict[str, bytes] = {}
        for key, value in items.items():
            data = self.codec.encode(value)
            if isinstance(data, Failure):
                return Failure(data.failure())
            encoded[key] = data.unwrap()
        return self.cache.set_many(encoded, ttl)

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

        def produce() -> bytes:
            encoded = self.codec.encode(factory())
            if isinstance(encoded, Failure):
                raise _Unencodable(encoded.failure())
            return encoded.unwrap()

        try:
            got = get_or_set(self.cache, key, produce, ttl, lock=lock, clock=clock)
        except _Unencodable as exc:
            return Failure(exc.error)
        if isinstance(got, Failure):
            return Failure(got.failure())
        decoded = self.codec.decode(got.unwrap(), self.into)
        if isinstance(decoded, Failure):
            return Failure(decoded.failure())
        return Success(decoded.unwrap())

    def _undecodable(self, key: str, error: SerializationError) -> None:
        log.warning(
            "cache %s: value at %r does not decode as %s; read as a miss (%s)",
            self.cache.namespace,
            key,
            getattr(self.into, "__name__", self.into),
            error.message,
        )


class _Unencodable(Exception):
    """Carries the codec's error out of a factory run inside the single flight."""

    def __init__(self, error: SerializationError) -> None:
        super().__init__(error.message)
        self.error = error
