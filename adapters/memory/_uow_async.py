"""The async in-memory unit of work: the sync fake, awaited. For tests.

It holds a ``MemoryUnitOfWork`` over the same ``MemoryDatabase`` and so shares its state
model and every rule: an async unit and a sync unit over one database see the same
committed rows, conflict with each other, and cannot disagree about any behaviour.
Each awaited call first yields to the event loop once, where a real adapter would wait
for the database, so other tasks interleave (and a cancellation lands) at the same
points as on a real database; the call itself then runs whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import attrs

from portside.adapters._async_unit import AsyncUnit

__all__ = ["AsyncMemoryUnitOfWork"]

T = TypeVar("T")
P = ParamSpec("P")


@attrs.define
class AsyncMemoryUnitOfWork(AsyncUnit):
    """An async unit of work over a ``MemoryDatabase`` (``database.async_unit_of_work()``).

    For tests. Objects it returns are its own copies, as the sync fake's are.
    """

    async def _io(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        # A cancellation delivered here means the call never happened.
        await asyncio.sleep(0)
        return fn(*args, **kwargs)
