"""How one call uses the LLM cache: read, write, lifetime, and whether sampling is cached."""

from __future__ import annotations

from typing import Final

import attrs

from portside.domain._llm import ChatRequest

__all__ = ["DEFAULT_TTL", "CachePolicy", "is_deterministic"]

#: How long an answer is kept unless the policy says otherwise: a day.
DEFAULT_TTL: Final = 86_400.0


@attrs.frozen
class CachePolicy:
    """How one call uses the cache.

    ``read=False`` skips lookups (the answer is fetched and, if ``write``, stored);
    ``write=False`` reads but never stores; both ``False`` bypasses the cache. ``ttl``
    is the lifetime of what is stored (``None``: no expiry). ``cache_nondeterministic``
    opts in to caching sampled requests, whose answers would otherwise differ per call.
    Raises ``ValueError`` for a ``ttl`` that is not positive.
    """

    read: bool = True
    write: bool = True
    ttl: float | None = DEFAULT_TTL
    cache_nondeterministic: bool = False

    def __attrs_post_init__(self) -> None:
        if self.ttl is not None and not self.ttl > 0:
            raise ValueError("ttl must be positive (None means no expiry)")

    def uses_cache_for(self, request: ChatRequest) -> bool:
        """Whether a call for ``request`` under this policy looks up or stores at all."""
        # is_deterministic spelled out: this runs on every call.
        return (self.read or self.write) and (
            self.cache_nondeterministic
            or (request.n == 1 and (request.seed is not None or request.temperature == 0))
        )


def is_deterministic(request: ChatRequest) -> bool:
    """Whether ``request`` should give one answer: one choice, temperature 0 or a seed."""
    return request.n == 1 and (request.seed is not None or request.temperature == 0)
