"""How the method-wrapping decorators tell a stream method from a ``Result`` method."""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterator, Callable, Iterator

__all__ = ["returns_async_iterator", "returns_iterator"]


def returns_iterator(method: Callable[..., object]) -> bool:
    """Whether ``method`` is annotated to return an iterator (a stream of results).

    Decorators must know this before calling, to short-circuit a stream with an
    iterator rather than a bare ``Failure``. Annotations that cannot be resolved
    (forward references to names not importable here) are read as text.
    """
    try:
        hint = typing.get_type_hints(method).get("return")
    except (NameError, TypeError, AttributeError):
        raw = inspect.signature(method).return_annotation
        return isinstance(raw, str) and raw.startswith(("Iterator", "Generator", "Iterable"))
    origin = typing.get_origin(hint)
    return origin is not None and inspect.isclass(origin) and issubclass(origin, Iterator)


def returns_async_iterator(method: Callable[..., object]) -> bool:
    """Whether ``method`` streams for asyncio: an async generator, or annotated so.

    The async twin of ``returns_iterator`` (``AsyncLLMPort.stream`` returns an
    ``AsyncIterator`` of results).
    """
    if inspect.isasyncgenfunction(method):
        return True
    try:
        hint = typing.get_type_hints(method).get("return")
    except (NameError, TypeError, AttributeError):
        raw = inspect.signature(method).return_annotation
        return isinstance(raw, str) and raw.startswith(("AsyncIterator", "AsyncGenerator"))
    origin = typing.get_origin(hint)
    return origin is not None and inspect.isclass(origin) and issubclass(origin, AsyncIterator)
