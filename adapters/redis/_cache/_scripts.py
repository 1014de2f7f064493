"""The cache's Lua scripts, read from the ``.lua`` files beside this module, and their replies."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Final

from returns.result import Failure, Result, Success

from portside.domain._cache import FillClaim
from portside.domain._errors import ProtocolError, ServiceError

__all__ = ["claim_from_reply", "script_text"]

_HELD: Final = FillClaim()
_LOCKED: Final = FillClaim(locked=True)


@functools.cache
def script_text(name: str) -> str:
    """The Lua text of the script ``name`` (the ``.lua`` file of that name)."""
    return (resources.files(__package__) / f"{name}.lua").read_text(encoding="utf-8")


def claim_from_reply(reply: object, service: str) -> Result[FillClaim, ServiceError]:
    """The ``FillClaim`` a ``get_or_lock`` reply names; ``ProtocolError`` for any other reply.

    Shared by the sync and async adapters: they differ only in how the reply arrives.
    """
    claim = _claim(reply)
    if claim is None:
        return Failure(
            ProtocolError(
                service=service, operation="get_or_lock", message="unexpected script reply"
            )
        )
    return Success(claim)


def _claim(reply: object) -> FillClaim | None:
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
