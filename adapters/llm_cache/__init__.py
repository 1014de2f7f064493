"""``CachingLLM``: an exact-match answer cache in front of any ``LLMPort``, on any cache."""

from portside.adapters.llm_cache._caching import CachingLLM
from portside.adapters.llm_cache._policy import (
    DEFAULT_TTL,
    CachePolicy,
    is_deterministic,
)

__all__ = [
    "DEFAULT_TTL",
    "CachePolicy",
    "CachingLLM",
    "is_deterministic",
]
