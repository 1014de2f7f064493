"""``RedisRateLimiter``: the sliding-window limits of ``MemoryRateLimiter`` for many processes.

Each admission is one ``EVALSHA`` (``admit.lua``): the script reads the server's clock
(``TIME``), drops what left the window, and admits and counts the request only if the
model's request and token counts fit, so no two processes ever both take the last slot
and every process agrees on time. Counted tokens (``settle.lua``) and pauses
(``pause.lua``) are one call each. Keys are ``<prefix>{<model>}:...``: one model's keys
share a hash slot, so the scripts run on Redis Cluster too.

When Redis cannot be reached the limiter admits (fails open) and says so in the log:
the provider still enforces its own limits, and an outage of the limiter's store must
not stop every LLM call.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

import attrs

from portside.adapters.llm_gateway._limits import WINDOW, RateLimit, RateLimiter, limit_for

__all__ = ["RedisRateLimiter"]

log = logging.getLogger("portside.llm_gateway")


@functools.cache
def _script(name: str) -> str:
    return (resources.files(__package__) / f"{name}.lua").read_text(encoding="utf-8")


def _redis_errors() -> tuple[tuple[type[BaseException], ...], type[BaseException]]:
    import redis  # the redis extra; only a RedisRateLimiter needs it

    return (redis.RedisError,), redis.exceptions.NoScriptError


@attrs.define
class RedisRateLimiter(RateLimiter):
    """Sliding-window limits per model shared through Redis, on the server's clock.

    ``client`` is a ``redis.Redis`` (or cluster) client; ``limits`` as for
    ``MemoryRateLimiter``; ``prefix`` namespaces the keys; ``window`` as for
    ``MemoryRateLimiter``. Needs ``portside[redis]``.
    """

    client: Any
    limits: Mapping[str, RateLimit]
    prefix: str = "portside:ratelimit:"
    window: float = WINDOW
    _admit_sha: str = attrs.field(init=False, repr=False)
    _static: dict[str, tuple[Any, ...]] = attrs.field(factory=dict, init=False, repr=False)
    _settle: Any = attrs.field(init=False, repr=False)
    _pause: Any = attrs.field(init=False, repr=False)
    _ids: Any = attrs.field(init=False, repr=False)
    _errors: tuple[type[BaseException], ...] = attrs.field(init=False, repr=False)
    _no_script: type[BaseException] = attrs.field(init=False, repr=False)
    _window_us: int = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # The digest is computed here, not loaded: building opens no connection, and the
        # first admission loads the script if the server does not have it.
        # SHA-1 because that is how Redis names scripts, not for security.
        self._admit_sha = hashlib.sha1(_script("admit").encode(), usedforsecurity=False).hexdigest()
        self._settle = self.client.register_script(_script("settle"))
        self._pause = self.client.register_script(_script("pause"))
        # Members must be unique across processes: a random prefix and a counter.
        self._ids = map(f"{os.urandom(6).hex()}-{{}}".format, itertools.count())
        self._errors, self._no_script = _redis_errors()
        self._window_us = int(self.window * 1_000_000)

    def _keys(self, model: str) -> list[str]:
        base = f"{self.prefix}{{{model}}}"
        return [f"{base}:requests", f"{base}:tokens", f"{base}:token_sum", f"{base}:pause"]

    def _arguments(self, model: str) -> tuple[Any, ...]:
        """``EVALSHA``'s arguments that do not change between a model's admissions."""
        static = self._static.get(model)
        if static is None:
            limit = limit_for(self.limits, model) or RateLimit()
            limits = (self._window_us, limit.requests or 0, limit.tokens or 0)
            if len(self._static) >= 4096:  # bounded: models are few, but names are input
                self._static.clear()
            static = self._static[model] = (4, *self._keys(model), *limits)
        return static

    def admit(self, model: str, tokens: int = 0) -> float:
        """0.0 and the request counted, or the seconds to wait (one round trip)."""
        # evalsha itself (not redis-py's Script wrapper) with arguments prepared once a
        # model: this call is the limiter's whole cost, measured against a raw GET.
        arguments = (*self._arguments(model), tokens, next(self._ids))
        try:
            try:
                ms = self.client.evalsha(self._admit_sha, *arguments)
            except self._no_script:
                self._admit_sha = self.client.script_load(_script("admit"))
                ms = self.client.evalsha(self._admit_sha, *arguments)
        except self._errors as exc:
            log.warning("rate limiter store unreachable, admitting: %s", type(exc).__name__)
            return 0.0
        return int(ms) / 1000.0

    def settle(self, model: str, tokens: int) -> None:
        """Count an answer's tokens (skipped when the model has no token limit)."""
        limit = limit_for(self.limits, model)
        if tokens <= 0 or limit is None or limit.tokens is None:
            return
        keys = self._keys(model)
        try:
            self._settle(keys=keys[1:3], args=[self._window_us, int(tokens), next(self._ids)])
        except self._errors as exc:
            log.warning(
                "rate limiter store unreachable, tokens not counted: %s", type(exc).__name__
            )

    def pause(self, model: str, seconds: float) -> None:
        """Every process sharing the store admits nothing for ``model`` for ``seconds``."""
        ms = max(1, int(seconds * 1000))
        try:
            self._pause(keys=self._keys(model)[3:], args=[ms])
        except self._errors as exc:
            log.warning("rate limiter store unreachable, pause lost: %s", type(exc).__name__)
