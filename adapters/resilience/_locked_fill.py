"""Filling a missing key under a lock, on any cache: native when offered, else composed.

A cache that offers ``LockedFill`` (Redis: one Lua script per step; the memory fake:
one locked step) does each step in one round trip. Any other cache gets the same
steps from its plain methods, with the same guarantees: the value is read again after
taking the lock (another filler may have stored it and released its lock in between),
and the lock is released only by its owner (``CompareAndDelete``; a cache without it
lets the lock expire).
"""

from __future__ import annotations

from returns.result import Failure, Result, Success

from portside.domain._cache import FillClaim
from portside.domain._errors import ServiceError
from portside.ports._cache import CachePort, CompareAndDelete, LockedFill
from portside.ports.cache_rules import check_key, check_lock, check_ttl, check_value

__all__ = ["get_or_lock", "release", "set_and_unlock"]

_HELD = Success(FillClaim())
_LOCKED = Success(FillClaim(locked=True))


def get_or_lock(
    cache: CachePort, key: str, lock: str, token: bytes, ttl: float
) -> Result[FillClaim, ServiceError]:
    """``cache.get_or_lock(...)``, or the same steps through ``get`` and ``add``."""
    if isinstance(cache, LockedFill):
        return cache.get_or_lock(key, lock, token, ttl)
    # Checked before any step: a lock without a TTL taken by add() would never expire.
    error = check_key(key, "get_or_lock") or check_lock(lock, token, ttl, "get_or_lock")
    if error is not None:
        return Failure(error)
    first = cache.get(key)
    if isinstance(first, Failure):
        return Failure(first.failure())
    value = first.unwrap()
    if value is not None:
        return Success(FillClaim(value=value))
    taken = cache.add(lock, token, ttl)
    if isinstance(taken, Failure):
        return Failure(taken.failure())
    if not taken.unwrap():
        return _HELD
    # Read once more under the lock: another filler may have stored its value and
    # released its lock between the read above and our lock.
    again = cache.get(key)
    if isinstance(again, Failure):
        return Failure(again.failure())
    value = again.unwrap()
    if value is None:
        return _LOCKED
    release(cache, lock, token)
    return Success(FillClaim(value=value))


def set_and_unlock(
    cache: CachePort, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
) -> Result[bool, ServiceError]:
    """``cache.set_and_unlock(...)``, or ``set`` then an owner-only release."""
    if isinstance(cache, LockedFill):
        return cache.set_and_unlock(key, value, ttl, lock, token)
    error = (
        check_key(key, "set_and_unlock")
        or check_value(value, "set_and_unlock")
        or check_ttl(ttl, "set_and_unlock")
        or check_lock(lock, token, 1.0, "set_and_unlock")
    )
    if error is not None:
        return Failure(error)
    stored = cache.set(key, value, ttl)
    if isinstance(stored, Failure):
        return Failure(stored.failure())
    return release(cache, lock, token)


def release(cache: CachePort, lock: str, token: bytes) -> Result[bool, ServiceError]:
    """Release ``lock`` if ``token`` still holds it; ``False`` when it does not.

    Without ``CompareAndDelete`` the lock is left to expire: a read then a delete could
    remove a lock another process took in between.
    """
    if isinstance(cache, CompareAndDelete):
        return cache.delete_if_equal(lock, token)
    return Success(False)
