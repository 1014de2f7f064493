"""Typed contracts the application depends on; adapters implement them."""

from ports.cache import CachePort, CompareAndDelete
from ports.clock import Clock
from ports.llm import LLMPort
from ports.queue import QueuePort
from ports.uow import Repository, UnitOfWork

__all__ = [
    "CachePort",
    "Clock",
    "CompareAndDelete",
    "LLMPort",
    "QueuePort",
    "Repository",
    "UnitOfWork",
]
