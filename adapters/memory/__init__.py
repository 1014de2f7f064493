"""In-memory fakes of every port. For tests and the embedded defaults.

Each fake is the reference model of its port: the contract kit runs the real adapters
against it. They encode through the same codec as the real adapters, so a value that
would fail in production fails here too.
"""

from typing import TYPE_CHECKING

from portside.domain._lazy import lazy_names

if TYPE_CHECKING:
    from portside.adapters.memory._async_cache import AsyncMemoryCache
    from portside.adapters.memory._async_llm import AsyncFakeLLM
    from portside.adapters.memory._async_queue import AsyncMemoryQueue
    from portside.adapters.memory._cache import MemoryCache, MemoryStore
    from portside.adapters.memory._clock import ManualClock
    from portside.adapters.memory._llm import (
        FAILURE_KINDS,
        EmbedCall,
        FailureKind,
        FakeLLM,
        Reply,
        Responder,
    )
    from portside.adapters.memory._queue import MemoryQueue
    from portside.adapters.memory._uow import MemoryDatabase, MemoryUnitOfWork
    from portside.adapters.memory._uow_async import AsyncMemoryUnitOfWork

__all__ = [
    "FAILURE_KINDS",
    "AsyncFakeLLM",
    "AsyncMemoryCache",
    "AsyncMemoryQueue",
    "AsyncMemoryUnitOfWork",
    "EmbedCall",
    "FailureKind",
    "FakeLLM",
    "ManualClock",
    "MemoryCache",
    "MemoryDatabase",
    "MemoryQueue",
    "MemoryStore",
    "MemoryUnitOfWork",
    "Reply",
    "Responder",
]

# Each fake is imported when first used: FakeLLM or MemoryCache never load the
# in-memory unit of work (nor SQLAlchemy, which it reads entity mappings with).
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "AsyncFakeLLM": "portside.adapters.memory._async_llm",
        "AsyncMemoryCache": "portside.adapters.memory._async_cache",
        "AsyncMemoryQueue": "portside.adapters.memory._async_queue",
        "AsyncMemoryUnitOfWork": "portside.adapters.memory._uow_async",
        "FAILURE_KINDS": "portside.adapters.memory._llm",
        "EmbedCall": "portside.adapters.memory._llm",
        "FailureKind": "portside.adapters.memory._llm",
        "FakeLLM": "portside.adapters.memory._llm",
        "ManualClock": "portside.adapters.memory._clock",
        "MemoryCache": "portside.adapters.memory._cache",
        "MemoryDatabase": "portside.adapters.memory._uow",
        "MemoryQueue": "portside.adapters.memory._queue",
        "MemoryStore": "portside.adapters.memory._cache",
        "MemoryUnitOfWork": "portside.adapters.memory._uow",
        "Reply": "portside.adapters.memory._llm",
        "Responder": "portside.adapters.memory._llm",
    },
)
