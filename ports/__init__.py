"""Typed contracts the application depends on; adapters implement them."""

from portside.ports._cache import CachePort, CompareAndDelete, LockedFill
from portside.ports._clock import Clock
from portside.ports._llm import LLMPort, Moderates
from portside.ports._queue import QueuePort
from portside.ports._uow import Repository, UnitOfWork

__all__ = [
    "CachePort",
    "Clock",
    "CompareAndDelete",
    "LLMPort",
    "LockedFill",
    "Moderates",
    "QueuePort",
    "Repository",
    "UnitOfWork",
]
