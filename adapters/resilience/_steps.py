"""Multi-step cache work written once, run by a sync or an async driver.

A fill under a lock (``get_or_lock`` composed from plain methods, ``get_or_set``'s
claim-compute-store loop) is several cache calls with decisions between them. The
decisions are written once, as a generator that yields what it needs done (``Call`` a
cache method, ``Sleep``, ``Compute`` the caller's value) and receives the answer; ``run``
does each step with plain calls and ``arun`` awaits them. So the sync and async twins
differ only in the driver, which is where the I/O happens. An exception raised by a
step (a factory's exception; in ``arun`` also a cancellation) is thrown into the
generator, so its ``finally`` blocks (a lock release) still make their calls before it
propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import attrs

__all__ = ["Call", "Compute", "Sleep", "Steps", "arun", "run"]

R = TypeVar("R")


@attrs.frozen
class Call:
    """Call ``cache.<method>(*args)`` and send back its ``Result``."""

    method: str
    args: tuple[Any, ...]


@attrs.frozen
class Sleep:
    """Wait ``seconds`` (on the clock, or the event loop), then go on."""

    seconds: float


@attrs.frozen
class Compute:
    """Compute the caller's value (its factory) and send it back."""


#: A step generator: yields steps, receives their answers, returns its outcome.
Steps = Generator[Call | Sleep | Compute, Any, R]


def run(
    steps: Steps[R],
    cache: object,
    *,
    sleep: Callable[[float], object] | None = None,
    compute: Callable[[], object] | None = None,
) -> R:
    """Drive ``steps`` with plain calls on ``cache``; the generator's outcome."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(answer) if error is None else steps.throw(error)
        except StopIteration as stop:
            outcome: R = stop.value
            return outcome
        answer, error = None, None
        try:
            if isinstance(step, Call):
                answer = getattr(cache, step.method)(*step.args)
            elif isinstance(step, Sleep):
                assert sleep is not None, "these steps sleep: pass sleep="
                sleep(step.seconds)
            else:
                assert compute is not None, "these steps compute: pass compute="
                answer = compute()
        except Exception as exc:
            error = exc


async def arun(
    steps: Steps[R],
    cache: object,
    *,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    compute: Callable[[], Awaitable[object]] | None = None,
) -> R:
    """Drive ``steps`` awaiting each call on ``cache``; ``run`` for asyncio.

    A cancellation at an await point is thrown into the generator like a factory's
    exception, so a held lock is still released (the release is itself awaited; a
    second cancellation during it leaves the lock to its TTL).
    """
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(answer) if error is None else steps.throw(error)
        except StopIteration as stop:
            outcome: R = stop.value
            return outcome
        answer, error = None, None
        try:
            if isinstance(step, Call):
                answer = await getattr(cache, step.method)(*step.args)
            elif isinstance(step, Sleep):
                assert sleep is not None, "these steps sleep: pass sleep="
                await sleep(step.seconds)
            else:
                assert compute is not None, "these steps compute: pass compute="
                answer = await compute()
        except (Exception, asyncio.CancelledError) as exc:
            error = exc
