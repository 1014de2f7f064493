"""``CachingLLM`` (and ``AsyncCachingLLM``): an exact-match answer cache in front of an LLM."""

from portside.adapters.llm_cache._async_caching import AsyncCachingLLM
from portside.adapters.llm_cache._caching import CachingLLM
from portside.adapters.llm_cache._policy import (
    DEFAULT_TTL,
    CachePolicy,
    is_deterministic,
)

__all__ = [
    "DEFAULT_TTL",
    "AsyncCachingLLM",
    "CachePolicy",
    "CachingLLM",
    "is_deterministic",
]
