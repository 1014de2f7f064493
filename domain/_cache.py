"""Values of the cache port's optional capabilities."""

from __future__ import annotations

import attrs

__all__ = ["FillClaim"]


@attrs.frozen
class FillClaim:
    """What ``LockedFill.get_or_lock`` found: the value, or who fills it.

    ``value`` is the stored value when the key was present (nothing was locked then).
    Otherwise ``locked`` tells whether this caller took the fill lock (and must fill the
    key and release the lock) or another caller holds it (wait for its value).
    """

    value: bytes | None = None
    locked: bool = False
