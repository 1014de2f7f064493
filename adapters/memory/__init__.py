"""In-memory fakes of every port. For tests and the embedded defaults.

Each fake is the reference model of its port: the contract kit runs the real adapters
against it. They encode through the same codec as the real adapters, so a value that
would fail in production fails here too.
"""

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

__all__ = [
    "FAILURE_KINDS",
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
