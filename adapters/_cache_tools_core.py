"""What ``get_or_set`` and the typed cache decide, shared by their sync and async twins.

``fill_steps`` is the leader's fill (claim the lock or wait for another process's value,
compute, store and release), written once as steps (``resilience._steps``) that the sync
``get_or_set`` runs with plain calls and ``async_get_or_set`` awaits. The typed-cache
helpers are the codec side of ``TypedCache`` and ``AsyncTypedCache``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.codec import Codec
from portside.adapters.resilience._locked_fill import (
    get_or_lock_steps,
    release_steps,
    set_and_unlock_steps,
)
from portside.adapters.resilience._steps import Call, Compute, Sleep, Steps
from portside.domain._cache import FillClaim
from portside.domain._errors import InvalidRequest, SerializationError, ServiceError
from portside.ports._clock import Clock
from portside.ports.cache_rules import check_value

__all__ = [
    "LOCK_PREFIX",
    "MISS",
    "LockPolicy",
    "Unencodable",
    "decode_filled",
    "decode_found",
    "decode_one",
    "encode_items",
    "encoded_or_raise",
    "fill_steps",
    "lock_key",
    "log",
    "log_undecodable",
]

T = TypeVar("T")

log: Final = logging.getLogger("portside.cache")

#: Keys starting with this are ``get_or_set``'s cross-process locks; do not use it.
LOCK_PREFIX: Final = "portside.lock:"
MISS: Final = Success(None)


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


def fill_steps(
    namespace: str,
    key: str,
    ttl: float | None,
    policy: LockPolicy,
    clock: Clock,
    *,
    native: bool,
    can_compare: bool,
) -> Steps[Result[bytes, ServiceError]]:
    """Fill ``key`` once for this process: the leader of a single flight runs these steps.

    The fill steps are ``LockedFill``'s (two round trips on Redis; composed from the
    plain methods on a cache without them): ``get_or_lock`` looks again (a caller that
    missed just before another flight ended, or another process, may have stored it)
    and takes the lock in the same step; ``set_and_unlock`` stores the value and
    releases the lock, owner only. ``native``/``can_compare``: whether the cache offers
    ``LockedFill``/``CompareAndDelete`` (or their async twins).
    """
    name = lock_key(key)
    token = secrets.token_hex(16).encode()
    claimed = yield from _claim_steps(key, name, token, policy, clock, native, can_compare)
    if isinstance(claimed, Success) and claimed.unwrap().value is not None:
        return Success(claimed.unwrap().value)  # stored by another caller or process
    # A failing cache cannot coordinate: compute without the lock.
    owned = isinstance(claimed, Success) and claimed.unwrap().locked
    try:
        value = yield Compute()
        if check_value(value, "get_or_set") is not None:
            return Failure(
                InvalidRequest(
                    service="cache",
                    operation="get_or_set",
                    message=f"factory must return bytes, got {type(value).__name__}",
                )
            )
        stored: Result[Any, ServiceError]
        if owned:
            stored = yield from set_and_unlock_steps(
                key, value, ttl, name, token, native=native, can_compare=can_compare
            )
            owned = isinstance(stored, Failure)  # released with the write unless it failed
        else:
            stored = yield Call("set", (key, value, ttl))
        if isinstance(stored, Failure):
            if isinstance(stored.failure(), InvalidRequest):
                return Failure(stored.failure())
            log.warning(
                "cache %s: computed value for a key was not stored: %s",
                namespace,
                stored.failure(),
            )
        return Success(value)
    finally:
        if owned:
            yield from release_steps(name, token, can_compare=can_compare)


def _claim_steps(
    key: str,
    name: str,
    token: bytes,
    policy: LockPolicy,
    clock: Clock,
    native: bool,
    can_compare: bool,
) -> Steps[Result[FillClaim, ServiceError]]:
    """The value at ``key``, the lock ``name``, or ``FillClaim()`` after waiting in vain.

    While another process holds the lock this polls every ``policy.poll`` seconds for
    up to ``policy.wait``: its value once stored, or the lock once released. A cache
    failure is returned as is (the caller computes without the lock).
    """
    deadline = clock.monotonic() + policy.wait
    while True:
        claimed = yield from get_or_lock_steps(
            key, name, token, policy.ttl, native=native, can_compare=can_compare
        )
        if isinstance(claimed, Failure):
            return claimed
        claim = claimed.unwrap()
        if claim.value is not None or claim.locked or clock.monotonic() >= deadline:
            return claimed
        yield Sleep(policy.poll)


class Unencodable(Exception):
    """Carries the codec's error out of a factory run inside the single flight."""

    def __init__(self, error: SerializationError) -> None:
        super().__init__(error.message)
        self.error = error


def encoded_or_raise(codec: Codec, value: object) -> bytes:
    """``value`` encoded, or ``Unencodable`` raised (a typed factory's value)."""
    encoded = codec.encode(value)
    if isinstance(encoded, Failure):
        raise Unencodable(encoded.failure())
    return encoded.unwrap()


def encode_items(
    codec: Codec, items: Mapping[str, Any]
) -> Result[dict[str, bytes], SerializationError]:
    """Every value encoded, or the first encoding failure (then nothing is written)."""
    encoded: dict[str, bytes] = {}
    for key, value in items.items():
        data = codec.encode(value)
        if isinstance(data, Failure):
            return Failure(data.failure())
        encoded[key] = data.unwrap()
    return Success(encoded)


def decode_one(
    codec: Codec, namespace: str, into: type[T], key: str, data: bytes | None
) -> Result[T | None, ServiceError]:
    """A fetched value decoded; a miss when absent or undecodable (logged)."""
    if data is None:
        return MISS
    decoded = codec.decode(data, into)
    if isinstance(decoded, Failure):
        log_undecodable(namespace, into, key, decoded.failure())
        return MISS
    return Success(decoded.unwrap())


def decode_filled(
    codec: Codec, got: Result[bytes, ServiceError], into: type[T]
) -> Result[T, ServiceError]:
    """A typed ``get_or_set``'s answer: the shared bytes decoded, or the failure."""
    if isinstance(got, Failure):
        return Failure(got.failure())
    decoded = codec.decode(got.unwrap(), into)
    if isinstance(decoded, Failure):
        return Failure(decoded.failure())
    return Success(decoded.unwrap())


def decode_found(
    codec: Codec, namespace: str, into: type[T], found: Mapping[str, bytes]
) -> dict[str, T]:
    """The decodable values among ``found``; the others are logged misses."""
    values: dict[str, T] = {}
    for key, data in found.items():
        decoded = codec.decode(data, into)
        if isinstance(decoded, Failure):
            log_undecodable(namespace, into, key, decoded.failure())
        else:
            values[key] = decoded.unwrap()
    return values


def log_undecodable(namespace: str, into: type[Any], key: str, error: SerializationError) -> None:
    """Log a stored value that does not decode as ``into`` (it reads as a miss)."""
    log.warning(
        "cache %s: value at %r does not decode as %s; read as a miss (%s)",
        namespace,
        key,
        getattr(into, "__name__", into),
        error.message,
    )
