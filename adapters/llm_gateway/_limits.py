"""Client-side rate limits per model: requests and tokens per minute, and shared pauses.

A limiter answers one question before a request is sent: may it go now, and if not,
how long until it may? It counts over a **sliding** window (no 60 s stretch ever holds
more than the limit, unlike fixed minute buckets that admit twice the limit across a
boundary). Requests are counted when admitted; tokens when the answer says how many
were used (``settle``), and a request is admitted only while the tokens used in the
window plus its estimate fit. ``pause(model, seconds)`` stops every caller sharing the
limiter, which is what a 429's ``Retry-After`` means for all of them.

``MemoryRateLimiter`` serves one process, on an injected ``Clock``;
``RedisRateLimiter`` (in ``_redis_limiter``) serves many, atomically on the Redis
server's clock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Final, Protocol

import attrs

from portside.adapters.clock import SystemClock
from portside.ports._clock import Clock

__all__ = ["WINDOW", "MemoryRateLimiter", "RateLimit", "RateLimiter", "limit_for"]

#: The window the limits count over by default, in seconds.
WINDOW: Final = 60.0


def _positive_or_none(_: object, attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 10**12
    ):
        raise ValueError(f"{attribute.name} must be a positive int or None")


@attrs.frozen
class RateLimit:
    """At most ``requests`` requests and ``tokens`` tokens per minute (``None``: no limit)."""

    requests: int | None = attrs.field(default=None, validator=_positive_or_none)
    tokens: int | None = attrs.field(default=None, validator=_positive_or_none)


def limit_for(limits: Mapping[str, RateLimit], model: str) -> RateLimit | None:
    """The limit of ``model``, else the ``"*"`` entry, else ``None`` (unlimited)."""
    return limits.get(model) or limits.get("*")


class RateLimiter(Protocol):
    """What ``RateLimitedLLM`` asks of a limiter; shared by every caller of one model."""

    def admit(self, model: str, tokens: int = 0) -> float:
        """0.0 when a request of about ``tokens`` tokens may go now (and it is counted).

        Otherwise the seconds to wait before asking again; nothing is counted.
        """
        ...

    def settle(self, model: str, tokens: int) -> None:
        """Count ``tokens`` tokens an answer used (its usage) in the window."""
        ...

    def pause(self, model: str, seconds: float) -> None:
        """Admit nothing for ``model`` during the next ``seconds`` (a 429's Retry-After)."""
        ...


@attrs.define
class _Window:
    requests: deque[float] = attrs.field(factory=deque)
    tokens: deque[tuple[float, int]] = attrs.field(factory=deque)
    token_sum: int = 0
    paused_until: float = 0.0

    def expire(self, now: float, window: float) -> None:
        start = now - window
        requests, tokens = self.requests, self.tokens
        while requests and requests[0] <= start:
            requests.popleft()
        while tokens and tokens[0][0] <= start:
            self.token_sum -= tokens.popleft()[1]


@attrs.define
class MemoryRateLimiter(RateLimiter):
    """Sliding-window limits per model for one process, on ``clock``. Thread-safe.

    ``limits`` maps a model name (or ``"*"`` for any other) to its ``RateLimit``;
    ``window`` is the length of the sliding window (a minute; shorter in tests).
    """

    limits: Mapping[str, RateLimit]
    clock: Clock = attrs.field(factory=SystemClock)
    window: float = WINDOW
    _windows: dict[str, _Window] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def admit(self, model: str, tokens: int = 0) -> float:
        """0.0 and the request counted, or the seconds until it would fit."""
        limit = limit_for(self.limits, model)
        with self._lock:
            now = self.clock.monotonic()
            window = self._windows.get(model)
            if window is None:
                window = self._windows[model] = _Window()
            if window.paused_until > now:
                return window.paused_until - now
            if limit is None:
                return 0.0
            window.expire(now, self.window)
            if limit.requests is not None and len(window.requests) >= limit.requests:
                # The request leaves the window a window's length after it was admitted.
                return window.requests[0] + self.window - now
            if (
                limit.tokens is not None
                and window.tokens
                and (window.token_sum + tokens > limit.tokens)
            ):
                return _tokens_wait(window, tokens, limit.tokens, now, self.window)
            if limit.requests is not None:
                window.requests.append(now)
            return 0.0

    def settle(self, model: str, tokens: int) -> None:
        """Count an answer's tokens at the current time."""
        if tokens <= 0:
            return
        with self._lock:
            window = self._windows.setdefault(model, _Window())
            window.tokens.append((self.clock.monotonic(), tokens))
            window.token_sum += tokens

    def pause(self, model: str, seconds: float) -> None:
        """Nothing for ``model`` is admitted for ``seconds`` (a longer pause wins)."""
        with self._lock:
            window = self._windows.setdefault(model, _Window())
            window.paused_until = max(window.paused_until, self.clock.monotonic() + seconds)


def _tokens_wait(window: _Window, tokens: int, limit: int, now: float, length: float) -> float:
    """Seconds until enough of the window's tokens leave it for ``tokens`` more to fit."""
    excess = window.token_sum + tokens - limit
    for at, used in window.tokens:
        excess -= used
        if excess <= 0:
            return at + length - now
    return length  # an estimate above the whole limit: wait a window, then it fits alone
