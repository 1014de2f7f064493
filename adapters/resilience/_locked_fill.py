"""Filling a missing key under a lock, on any cache: native when offered, else composed.

A cache that offers ``LockedFill`` (Redis: one Lua script per step; the memory fake:
one locked step) does each step in one round trip. Any other cache gets the same
steps from its plain methods, with the same guarantees: the value is read again after
taking the lock (another filler may have stored it and released its lock in between),
and the lock is released only by its owner (``CompareAndDelete``; a cache without it
lets the lock expire).

The composed steps are written once (``*_steps`` generators, see ``_steps``); the
plain functions drive them on a ``CachePort`` and the ``a``-prefixed ones on an
``AsyncCachePort``.
"""

from __future__ import annotations

from returns.result import Failure, Result, Success

from portside.adapters.resilience._steps import Call, Steps, arun, run
from portside.domain._cache import FillClaim
from portside.domain._errors import ServiceError
from portside.ports._cache import (
    AsyncCachePort,
    AsyncCompareAndDelete,
    AsyncLockedFill,
    CachePort,
    CompareAndDelete,
    LockedFill,
)
from portside.ports.cache_rules import check_key, check_lock, check_ttl, check_value

__all__ = [
    "aget_or_lock",
    "arelease",
    "aset_and_unlock",
    "get_or_lock",
    "get_or_lock_steps",
    "release",
    "release_steps",
    "set_and_unlock",
    "set_and_unlock_steps",
]

_HELD = Success(FillClaim())
_LOCKED = Success(FillClaim(locked=True))
_NOT_RELEASED: Result[bool, ServiceError] = Success(False)


def get_or_lock_steps(
    key: str, lock: str, token: bytes, ttl: float, *, native: bool, can_compare: bool
) -> Steps[Result[FillClaim, ServiceError]]:
    """The ``get_or_lock`` steps: the native call, or composed from ``get`` and ``add``."""
    if native:
        native_claim: Result[FillClaim, ServiceError] = yield Call(
            "get_or_lock", (key, lock, token, ttl)
        )
        return native_claim
    # Checked before any step: a lock without a TTL taken by add() would never expire.
    error = check_key(key, "get_or_lock") or check_lock(lock, token, ttl, "get_or_lock")
    if error is not None:
        return Failure(error)
    first: Result[bytes | None, ServiceError] = yield Call("get", (key,))
    if isinstance(first, Failure):
        return Failure(first.failure())
    value = first.unwrap()
    if value is not None:
        return Success(FillClaim(value=value))
    taken: Result[bool, ServiceError] = yield Call("add", (lock, token, ttl))
    if isinstance(taken, Failure):
        return Failure(taken.failure())
    if not taken.unwrap():
        return _HELD
    # Read once more under the lock: another filler may have stored its value and
    # released its lock between the read above and our lock.
    again: Result[bytes | None, ServiceError] = yield Call("get", (key,))
    if isinstance(again, Failure):
        return Failure(again.failure())
    value = again.unwrap()
    if value is None:
        return _LOCKED
    yield from release_steps(lock, token, can_compare=can_compare)
    return Success(FillClaim(value=value))


def set_and_unlock_steps(
    key: str,
    value: bytes,
    ttl: float | None,
    lock: str,
    token: bytes,
    *,
    native: bool,
    can_compare: bool,
) -> Steps[Result[bool, ServiceError]]:
    """The ``set_and_unlock`` steps: the native call, or ``set`` then an owner-only release."""
    if native:
        native_stored: Result[bool, ServiceError] = yield Call(
            "set_and_unlock", (key, value, ttl, lock, token)
        )
        return native_stored
    error = (
        check_key(key, "set_and_unlock")
        or check_value(value, "set_and_unlock")
        or check_ttl(ttl, "set_and_unlock")
        or check_lock(lock, token, 1.0, "set_and_unlock")
    )
    if error is not None:
        return Failure(error)
    stored: Result[None, ServiceError] = yield Call("set", (key, value, ttl))
    if isinstance(stored, Failure):
        return Failure(stored.failure())
    released = yield from release_steps(lock, token, can_compare=can_compare)
    return released


def release_steps(
    lock: str, token: bytes, *, can_compare: bool
) -> Steps[Result[bool, ServiceError]]:
    """Release ``lock`` if ``token`` still holds it; ``False`` when it does not.

    Without ``CompareAndDelete`` the lock is left to expire: a read then a delete could
    remove a lock another process took in between.
    """
    if not can_compare:
        return _NOT_RELEASED
    released: Result[bool, ServiceError] = yield Call("delete_if_equal", (lock, token))
    return released


def get_or_lock(
    cache: CachePort, key: str, lock: str, token: bytes, ttl: float
) -> Result[FillClaim, ServiceError]:
    """``cache.get_or_lock(...)``, or the same steps through ``get`` and ``add``."""
    if isinstance(cache, LockedFill):
        return cache.get_or_lock(key, lock, token, ttl)
    steps = get_or_lock_steps(
        key, lock, token, ttl, native=False, can_compare=isinstance(cache, CompareAndDelete)
    )
    return run(steps, cache)


def set_and_unlock(
    cache: CachePort, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
) -> Result[bool, ServiceError]:
    """``cache.set_and_unlock(...)``, or ``set`` then an owner-only release."""
    if isinstance(cache, LockedFill):
        return cache.set_and_unlock(key, value, ttl, lock, token)
    steps = set_and_unlock_steps(
        key, value, ttl, lock, token, native=False, can_compare=isinstance(cache, CompareAndDelete)
    )
    return run(steps, cache)


def release(cache: CachePort, lock: str, token: bytes) -> Result[bool, ServiceError]:
    """Release ``lock`` if ``token`` still holds it (``release_steps``)."""
    return run(release_steps(lock, token, can_compare=isinstance(cache, CompareAndDelete)), cache)


async def aget_or_lock(
    cache: AsyncCachePort, key: str, lock: str, token: bytes, ttl: float
) -> Result[FillClaim, ServiceError]:
    """``get_or_lock`` on an async cache: its native step, or the composed steps awaited."""
    if isinstance(cache, AsyncLockedFill):
        return await cache.get_or_lock(key, lock, token, ttl)
    steps = get_or_lock_steps(
        key, lock, token, ttl, native=False, can_compare=isinstance(cache, AsyncCompareAndDelete)
    )
    return await arun(steps, cache)


async def aset_and_unlock(
    cache: AsyncCachePort, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
) -> Result[bool, ServiceError]:
    """``set_and_unlock`` on an async cache: native, or the composed steps awaited."""
    if isinstance(cache, AsyncLockedFill):
        return await cache.set_and_unlock(key, value, ttl, lock, token)
    steps = set_and_unlock_steps(
        key,
        value,
        ttl,
        lock,
        token,
        native=False,
        can_compare=isinstance(cache, AsyncCompareAndDelete),
    )
    return await arun(steps, cache)


async def arelease(cache: AsyncCachePort, lock: str, token: bytes) -> Result[bool, ServiceError]:
    """``release`` on an async cache."""
    can_compare = isinstance(cache, AsyncCompareAndDelete)
    return await arun(release_steps(lock, token, can_compare=can_compare), cache)
