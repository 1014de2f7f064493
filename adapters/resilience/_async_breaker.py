"""``with_async_breaker``: a ``CircuitBreaker`` around any async port.

The breaker is the sync one (its state is plain data behind a short lock, no I/O); only
the guard differs: it awaits the method it guards, and guards a stream method that
returns an async iterator (``AsyncLLMPort.stream``) as the sync guard guards an
iterator.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

from returns.result import Failure, Success

from portside.adapters._introspect import returns_async_iterator
from portside.adapters.resilience._breaker import (
    CircuitBreaker,
    Guarded,
    StreamOutcome,
    default_trips,
)
from portside.domain._errors import ServiceError

__all__ = ["with_async_breaker"]

P = TypeVar("P")


class _AsyncGuarded(Guarded):
    """``Guarded`` for async ports: coroutine methods and async-iterator streams."""

    def __repr__(self) -> str:
        return f"with_async_breaker({self._port!r}, {self._breaker.name or 'breaker'!r})"

    def _is_stream(self, method: Callable[..., Any]) -> bool:
        return returns_async_iterator(method)

    def _guard_call(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        breaker, trips = self._breaker, self._trips

        @functools.wraps(method)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            if not breaker.allow():
                return Failure(breaker.open_error(name))
            result = await method(*args, **kwargs)
            if isinstance(result, Success | Failure):
                breaker.record(result, trips)
            return result

        return guarded

    def _guard_stream(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        breaker, trips = self._breaker, self._trips

        @functools.wraps(method)
        async def guarded(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            if not breaker.allow():
                yield Failure(breaker.open_error(name))
                return
            outcome = StreamOutcome(breaker, trips)
            try:
                async for item in method(*args, **kwargs):
                    outcome.saw(item)
                    yield item
            finally:
                outcome.record()

        return guarded


def with_async_breaker(
    port: P, breaker: CircuitBreaker, *, trips: Callable[[ServiceError], bool] = default_trips
) -> P:
    """``port`` (an async port) with every I/O method guarded by ``breaker``.

    ``with_breaker`` for asyncio, with the same rules: while the breaker is open an
    awaited method returns ``Failure(Unavailable)`` without touching the service and a
    stream method yields that one failure; failures for which ``trips`` is true count
    towards opening it, every other outcome is a success. ``aclose``, ``close``,
    ``namespace`` and ``identity`` pass straight through.
    """
    return cast(P, _AsyncGuarded(port, breaker, trips))
