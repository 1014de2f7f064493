"""In-memory fakes of every port. For tests and the embedded defaults.

Each fake is the reference model of its port: the contract kit runs the real adapters
against it. They encode through the same codec as the real adapters, so a value that
would fail in production fails here too.
"""

from adapters.memory.cache import MemoryCache, MemoryStore
from adapters.memory.clock import ManualClock, SystemClock
from adapters.memory.llm import FakeLLM, Reply
from adapters.memory.queue import MemoryQueue
from adapters.memory.uow import MemoryDatabase, MemoryUnitOfWork

__all__ = [
    "FakeLLM",
    "ManualClock",
    "MemoryCache",
    "MemoryDatabase",
    "MemoryQueue",
    "MemoryStore",
    "MemoryUnitOfWork",
    "Reply",
    "SystemClock",
]
