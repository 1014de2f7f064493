"""Resilience around any port: circuit breaker, retry policy, single-flight, fail-open.

- ``CircuitBreaker`` and ``with_breaker(port, breaker)``: stop paying a timeout on every
  call while a service is down.
- ``RetryPolicy``: retries for call paths whose adapter does not own retries already
  (each call path has one retry owner); ``retries_disabled()`` and ``set_retry_cap(n)``
  are the test mode.
- ``SingleFlight``: concurrent calls for one key share one execution (a function's
  result, or a stream through ``join``/``land``).
- ``FailOpenCache``: the application keeps working while its cache is down
  (``any_error``: fail open on every failure, not only outages).
- The asyncio twins share each one's decisions and differ only where they await:
  ``RetryPolicy.acall``, ``CircuitBreaker.acall`` and ``with_async_breaker``,
  ``AsyncSingleFlight`` (across the tasks of an event loop) and ``AsyncFailOpenCache``.
"""

from typing import TYPE_CHECKING

from portside.domain._lazy import lazy_names

if TYPE_CHECKING:
    from portside.adapters.resilience._async_breaker import with_async_breaker
    from portside.adapters.resilience._async_fail_open import AsyncFailOpenCache
    from portside.adapters.resilience._breaker import (
        BreakerState,
        CircuitBreaker,
        default_trips,
        with_breaker,
    )
    from portside.adapters.resilience._fail_open import (
        FailOpenCache,
        any_error,
    )
    from portside.adapters.resilience._retry import (
        RetryListener,
        RetryPolicy,
        retries_disabled,
        retry_cap,
        set_retry_cap,
    )
    from portside.adapters.resilience._singleflight import (
        AsyncSingleFlight,
        SingleFlight,
    )

__all__ = [
    "AsyncFailOpenCache",
    "AsyncSingleFlight",
    "BreakerState",
    "CircuitBreaker",
    "FailOpenCache",
    "RetryListener",
    "RetryPolicy",
    "SingleFlight",
    "any_error",
    "default_trips",
    "retries_disabled",
    "retry_cap",
    "set_retry_cap",
    "with_async_breaker",
    "with_breaker",
]

# Each name is imported when first used: a sync caller never loads the asyncio twins,
# and the observability module's breaker import does not load the fail-open caches.
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "with_async_breaker": "portside.adapters.resilience._async_breaker",
        "AsyncFailOpenCache": "portside.adapters.resilience._async_fail_open",
        "BreakerState": "portside.adapters.resilience._breaker",
        "CircuitBreaker": "portside.adapters.resilience._breaker",
        "default_trips": "portside.adapters.resilience._breaker",
        "with_breaker": "portside.adapters.resilience._breaker",
        "FailOpenCache": "portside.adapters.resilience._fail_open",
        "any_error": "portside.adapters.resilience._fail_open",
        "RetryListener": "portside.adapters.resilience._retry",
        "RetryPolicy": "portside.adapters.resilience._retry",
        "retries_disabled": "portside.adapters.resilience._retry",
        "retry_cap": "portside.adapters.resilience._retry",
        "set_retry_cap": "portside.adapters.resilience._retry",
        "AsyncSingleFlight": "portside.adapters.resilience._singleflight",
        "SingleFlight": "portside.adapters.resilience._singleflight",
    },
)
