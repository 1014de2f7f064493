"""The cache's Lua scripts, read from the ``.lua`` files beside this module, and their replies."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Final

from portside.domain._cache import FillClaim

__all__ = ["claim_from_reply", "script_text"]

_HELD: Final = FillClaim()
_LOCKED: Final = FillClaim(locked=True)


@functools.cache
def script_text(name: str) -> str:
    """The Lua text of the script ``name`` (the ``.lua`` file of that name)."""
    return (resources.files(__package__) / f"{name}.lua").read_text(encoding="utf-8")


def claim_from_reply(reply: object) -> FillClaim | None:
    """The ``FillClaim`` a ``get_or_lock`` reply names; ``None`` for any other reply."""
    if not isinstance(reply, list) or not reply:
        return None
    status = reply[0]
    if status == b"found" and len(reply) == 2 and isinstance(reply[1], bytes):
        return FillClaim(value=reply[1])
    if status == b"locked" and len(reply) == 1:
        return _LOCKED
    if status == b"held" and len(reply) == 1:
        return _HELD
    return None
