"""Gateway features over any ``LLMPort``: fallbacks, rate limits, cost and budgets.

- ``FallbackLLM``: an ordered list of models or providers behind one port, with one
  deadline and attempt budget, never replaying a stream that has yielded text.
- ``RateLimitedLLM`` over a ``RateLimiter`` (``MemoryRateLimiter`` for one process,
  ``RedisRateLimiter`` for many): requests and tokens per minute per model, wait or
  fail fast, and a 429's ``Retry-After`` pausing every caller that shares the limiter.
- ``PricedLLM`` with a ``PriceTable`` and a ``Budget``: the cost of every answer on the
  result and in metrics, and ``QuotaExceeded`` before sending once a budget is spent.

They compose like any decorator: ``PricedLLM(FallbackLLM([RateLimitedLLM(a, limiter),
b]), prices)``.
"""

from portside.adapters.llm_gateway._cost import Budget, Price, PricedLLM, PriceTable
from portside.adapters.llm_gateway._fallback import FallbackLLM
from portside.adapters.llm_gateway._limited import RateLimitedLLM, estimate_tokens
from portside.adapters.llm_gateway._limits import (
    WINDOW,
    MemoryRateLimiter,
    RateLimit,
    RateLimiter,
)
from portside.adapters.llm_gateway._redis_limiter import RedisRateLimiter

__all__ = [
    "WINDOW",
    "Budget",
    "FallbackLLM",
    "MemoryRateLimiter",
    "Price",
    "PriceTable",
    "PricedLLM",
    "RateLimit",
    "RateLimitedLLM",
    "RateLimiter",
    "RedisRateLimiter",
    "estimate_tokens",
]
