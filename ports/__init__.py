"""Typed contracts the application depends on; adapters implement them."""

from typing import TYPE_CHECKING

from portside.domain._lazy import lazy_names

if TYPE_CHECKING:
    from portside.ports._cache import (
        AsyncCachePort,
        AsyncCompareAndDelete,
        AsyncLockedFill,
        CachePort,
        CompareAndDelete,
        LockedFill,
    )
    from portside.ports._clock import Clock
    from portside.ports._llm import AsyncLLMPort, AsyncModerates, LLMPort, Moderates
    from portside.ports._query import Condition, Field, Ordering, Where, field
    from portside.ports._queue import AsyncQueuePort, QueuePort
    from portside.ports._uow import AsyncRepository, AsyncUnitOfWork, Repository, UnitOfWork

__all__ = [
    "AsyncCachePort",
    "AsyncCompareAndDelete",
    "AsyncLLMPort",
    "AsyncLockedFill",
    "AsyncModerates",
    "AsyncQueuePort",
    "AsyncRepository",
    "AsyncUnitOfWork",
    "CachePort",
    "Clock",
    "CompareAndDelete",
    "Condition",
    "Field",
    "LLMPort",
    "LockedFill",
    "Moderates",
    "Ordering",
    "QueuePort",
    "Repository",
    "UnitOfWork",
    "Where",
    "field",
]

# Each protocol module is imported when one of its names is first used.
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "AsyncCachePort": "portside.ports._cache",
        "AsyncCompareAndDelete": "portside.ports._cache",
        "AsyncLLMPort": "portside.ports._llm",
        "AsyncLockedFill": "portside.ports._cache",
        "AsyncModerates": "portside.ports._llm",
        "AsyncQueuePort": "portside.ports._queue",
        "AsyncRepository": "portside.ports._uow",
        "AsyncUnitOfWork": "portside.ports._uow",
        "CachePort": "portside.ports._cache",
        "Clock": "portside.ports._clock",
        "CompareAndDelete": "portside.ports._cache",
        "Condition": "portside.ports._query",
        "Field": "portside.ports._query",
        "LLMPort": "portside.ports._llm",
        "LockedFill": "portside.ports._cache",
        "Moderates": "portside.ports._llm",
        "Ordering": "portside.ports._query",
        "QueuePort": "portside.ports._queue",
        "Repository": "portside.ports._uow",
        "UnitOfWork": "portside.ports._uow",
        "Where": "portside.ports._query",
        "field": "portside.ports._query",
    },
)
